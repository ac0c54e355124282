#!/usr/bin/env bash
# Produce the expected outputs of the render fixtures with the reference renderer, ibek 4.8.2
# (with pvi 0.14.4): tests/fixtures/render/NAME/expected/{st.cmd,ioc.subst,wait_list.yaml,
# ioc.schema.json}, or expected/error.txt for an instance ibek rejects. Never run iocrun here: goldens come only from
# the reference (tests/it/render_fixtures.rs compares iocrun with them).
#
# usage: scripts/make-render-goldens.sh [NAME...]      (default: every fixture)
#
# A fixture folder holds:
#   config/ioc.yaml (+ config/runtime.yaml)   the instance, written for these tests
#   defs.txt    support YAML, one per line, in --definitions order. Prefixes:
#                 shared:PATH   ../shared/conformance/PATH (real ibek-support modules)
#                 samples:PATH  $IOCRUN_IBEK_SAMPLES/PATH (the ibek 4.8.2 sdist tests/samples)
#                 repo:PATH     this repository (e.g. support-yaml/epics.ibek.support.yaml)
#                 PATH          the fixture folder itself (support YAML written for the fixture)
#   pvi.txt     optional: PVI device files or folders (same prefixes), served as $EPICS_ROOT/pvi-defs
#   env.txt     KEY=VALUE lines exported for the run (IOC, RUNTIME_DIR, IOC_NAME, ...)
#   message.txt optional, error fixtures only: a text iocrun's error message must contain
# For fixtures ibek renders, expected/ioc.schema.json is `ibek ioc generate-schema` of defs.txt.
# expected/MADE.txt records the tool versions, the command and the checksum of every input.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
FIXTURES=$REPO/tests/fixtures/render
SHARED=${IOCRUN_SHARED:-$REPO/../shared}
# shellcheck disable=SC1091
source "${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}/env.sh"
IBEK=${IOCRUN_IBEK:?run scripts/install-test-deps.sh first}

resolve() { # resolve PREFIXED_PATH FIXTURE_DIR
  case "$1" in
    shared:*) echo "$SHARED/conformance/${1#shared:}" ;;
    samples:*) echo "$IOCRUN_IBEK_SAMPLES/${1#samples:}" ;;
    repo:*) echo "$REPO/${1#repo:}" ;;
    *) echo "$2/$1" ;;
  esac
}

make_one() {
  local dir=$FIXTURES/$1 er defs=() line path rc
  er=$(mktemp -d)/epics
  mkdir -p "$er/runtime" "$er/opi" "$er/pvi-defs"
  while read -r line; do
    [ -n "$line" ] || continue
    path=$(resolve "$line" "$dir"); [ -f "$path" ] || { echo "$1: missing $path" >&2; return 1; }
    defs+=(--definitions "$path")
  done < "$dir/defs.txt"
  if [ -f "$dir/pvi.txt" ]; then
    while read -r line; do
      [ -n "$line" ] || continue
      path=$(resolve "$line" "$dir")
      if [ -d "$path" ]; then ln -sf "$path"/* "$er/pvi-defs/"; else ln -sf "$path" "$er/pvi-defs/"; fi
    done < "$dir/pvi.txt"
  fi
  local envs=()
  [ -f "$dir/env.txt" ] && mapfile -t envs < <(grep -v '^$' "$dir/env.txt")
  rc=0
  (cd "$dir" && env EPICS_ROOT="$er" "${envs[@]}" "$IBEK" runtime generate2 config "${defs[@]}" -o "$er/runtime") \
    >"$er/../stdout" 2>"$er/../stderr" || rc=$?
  rm -rf "$dir/expected"; mkdir -p "$dir/expected"
  if [ $rc -eq 0 ]; then
    for f in st.cmd ioc.subst wait_list.yaml; do
      [ -f "$er/runtime/$f" ] && cp "$er/runtime/$f" "$dir/expected/$f"
    done
    # the JSON schema of ioc.yaml for the same definitions (tests/it/schema.rs)
    local files=()
    for ((i = 1; i < ${#defs[@]}; i += 2)); do files+=("${defs[$i]}"); done
    "$IBEK" ioc generate-schema --no-ibek-defs "${files[@]}" --output "$dir/expected/ioc.schema.json" >/dev/null
  else
    # ibek prints a Python traceback; keep the exit code and the exception (from the last
    # unindented line after the traceback's frames to the end)
    { echo "exit $rc"; awk '/^Traceback/ {tb=NR; start=0} /^[^ \t]/ && !/^Traceback/ && !start {start=NR} {line[NR]=$0} END {if (!start) start=1; for (i=start; i<=NR; i++) print line[i]}' "$er/../stderr"; } > "$dir/expected/error.txt"
  fi
  {
    echo "made by scripts/make-render-goldens.sh on $(date -u +%Y-%m-%d)"
    echo "reference: $("$IBEK" --version 2>&1 | tail -n 1), pvi $("$(dirname "$IBEK")/python" -c 'import importlib.metadata as m; print(m.version("pvi"))')"
    echo "command: (cd tests/fixtures/render/$1 && env EPICS_ROOT=<tmp> ${envs[*]} ibek runtime generate2 config ${defs[*]//$REPO\//} -o <tmp>/runtime)"
    echo "exit: $rc"
    echo "inputs (sha256):"
    (cd "$dir" && find config -type f | sort | xargs sha256sum)
    while read -r line; do [ -n "$line" ] && echo "$(sha256sum < "$(resolve "$line" "$dir")" | cut -c1-64)  $line"; done < "$dir/defs.txt"
  } | sed "s#$SHARED/conformance/#shared:#g; s#$IOCRUN_IBEK_SAMPLES/#samples:#g" > "$dir/expected/MADE.txt"
  rm -rf "$(dirname "$er")"
  echo "$1: exit $rc, $(ls "$dir/expected" | tr '\n' ' ')"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || mapfile -t names < <(ls "$FIXTURES")
for n in "${names[@]}"; do make_one "$n"; done
