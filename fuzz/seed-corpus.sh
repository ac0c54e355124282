#!/usr/bin/env bash
# Build the fuzz corpus (fuzz/corpus/render/) from the shared conformance cases: one seed per
# case, the instance followed by its support files, each after a line `#%support` (the layout
# fuzz_targets/render.rs splits). The corpus is generated, never committed.
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
