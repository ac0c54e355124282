#!/usr/bin/env bash
# Build the fuzz corpora from the shared conformance data. corpus/render/: one seed per case, the
# instance followed by its support files, each after a line `#%support` (the layout
# fuzz_targets/render.rs splits). corpus/yaml/: every instance and support YAML file.
# corpus/subst/, corpus/template/: the msi vectors' substitution files and templates. The
# corpora are generated, never committed.
set -euo pipefail
cd "$(dirname "$0")"
SHARED=${IOCRUN_SHARED:-$PWD/../../shared}
out=corpus/render
mkdir -p "$out"
for case in "$SHARED"/conformance/ibek/cases/* "$SHARED"/conformance/ibek-probes/*; do
  [ -f "$case/input/config/ioc.yaml" ] || continue
  {
    cat "$case/input/config/ioc.yaml"
    while read -r d; do
      [ -n "$d" ] || continue
      printf '\n#%%support\n'
      cat "$case/input/$d"
    done < "$case/defs.txt"
  } > "$out/$(basename "$case")"
done
for fx in ../tests/fixtures/render/*/; do
  [ -f "$fx/config/ioc.yaml" ] && [ -f "$fx/lab.ibek.support.yaml" ] || continue
  { cat "$fx/config/ioc.yaml"; printf '\n#%%support\n'; cat "$fx/lab.ibek.support.yaml"; } > "$out/fixture-$(basename "$fx")"
done
echo "$(ls "$out" | wc -l) seeds in fuzz/$out"
# the runtime targets: one valid message or request each (the fuzzer grows the rest)
mkdir -p corpus/console_proto corpus/control corpus/ca_decode corpus/http
printf '\001\000iocrun-console/1\n\001\000\004dbl\r\002\000\004\000\030\000\120' > corpus/console_proto/framed
printf '\003dbl\r\n' > corpus/console_proto/raw
printf 'ready\n' > corpus/control/ready
printf '\000\022\000\000\000\006\000\001\000\000\000\001\000\000\000\007' > corpus/ca_decode/create
printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n' > corpus/http/metrics
# the input targets: every instance and support YAML file, the msi vectors' files
mkdir -p corpus/yaml corpus/subst corpus/template
n=0
for f in "$SHARED"/conformance/ibek/cases/*/input/config/*.yaml "$SHARED"/conformance/ibek-support/*.yaml \
         ../support-yaml/*.yaml; do
  [ -f "$f" ] || continue
  n=$((n + 1)); cp "$f" "corpus/yaml/seed-$n"
done
for f in "$SHARED"/conformance/msi/*/*; do
  case "$f" in
    *.subst|*.substitutions) cp "$f" "corpus/subst/$(basename "$(dirname "$f")")-$(basename "$f")" ;;
    *.template) cp "$f" "corpus/template/$(basename "$(dirname "$f")")-$(basename "$f")" ;;
  esac
done
for t in yaml subst template; do echo "$(ls corpus/$t | wc -l) seeds in fuzz/corpus/$t"; done
