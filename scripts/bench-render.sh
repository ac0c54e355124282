#!/usr/bin/env bash
# Benchmark `iocrun generate` (release build) against the reference `ibek runtime generate2`
# on the same instances: median wall time and mean CPU time (hyperfine) and peak RSS
# (/usr/bin/time -v) of each, side by side, with the ratios. Target (issue 2): iocrun >= 100x faster and < 10 MB peak RSS
# on a typical instance.
#
# usage: scripts/bench-render.sh [CASE...]
#   CASE is a conformance case (../shared/conformance/ibek/cases/NAME) or a render fixture
#   (tests/fixtures/render/NAME). Default: a few of each, small to large.
# env: BENCH_RUNS (hyperfine runs per command, default 10), BENCH_PVI ("on off" by default).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SHARED=${IOCRUN_SHARED:-$REPO/../shared}
CASES=$SHARED/conformance/ibek/cases
FIXTURES=$REPO/tests/fixtures/render
# shellcheck disable=SC1091
source "${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}/env.sh"
IBEK=${IOCRUN_IBEK:?run scripts/install-test-deps.sh first}
RUNS=${BENCH_RUNS:-10}
PVI_MODES=${BENCH_PVI:-on off}
command -v hyperfine >/dev/null || { echo "hyperfine missing: run scripts/install-test-deps.sh" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time missing: run scripts/install-test-deps.sh" >&2; exit 1; }

cargo build --release --quiet
IOCRUN=$REPO/target/release/iocrun

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(ibek-utils es-bl01t-mo-sim-01 syn-lakeshore340 p47-sr03c-va-ioc-01-derived adsim-bl01t-ea-ioc-02 lab-quirks terminalserver-repeat)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Prepare one case: sets CFG (config dir), DEFS (array of --definitions args), ENVS, ROOT.
prepare() {
  local name=$1 line path
  ROOT=$WORK/$name/epics; rm -rf "$WORK/$name"; mkdir -p "$ROOT/runtime" "$ROOT/opi" "$ROOT/pvi-defs"
  DEFS=(); ENVS=()
  if [ -d "$CASES/$name" ]; then
    CFG=$CASES/$name/input/config
    while read -r line; do [ -n "$line" ] && DEFS+=(--definitions "$CASES/$name/input/$line"); done < "$CASES/$name/defs.txt"
    [ -d "$CASES/$name/input/pvi-defs" ] && ln -s "$CASES/$name/input/pvi-defs"/* "$ROOT/pvi-defs/"
    mapfile -t ENVS < <(grep -v '^$' "$CASES/$name/env.txt")
  elif [ -d "$FIXTURES/$name" ]; then
    local dir=$FIXTURES/$name
    CFG=$dir/config
    resolve() { case "$1" in shared:*) echo "$SHARED/conformance/${1#shared:}";; samples:*) echo "$IOCRUN_IBEK_SAMPLES/${1#samples:}";; repo:*) echo "$REPO/${1#repo:}";; *) echo "$dir/$1";; esac; }
    while read -r line; do [ -n "$line" ] && DEFS+=(--definitions "$(resolve "$line")"); done < "$dir/defs.txt"
    if [ -f "$dir/pvi.txt" ]; then
      while read -r line; do
        [ -n "$line" ] || continue; path=$(resolve "$line")
        if [ -d "$path" ]; then ln -sf "$path"/* "$ROOT/pvi-defs/"; else ln -sf "$path" "$ROOT/pvi-defs/"; fi
      done < "$dir/pvi.txt"
    fi
    mapfile -t ENVS < <(grep -v '^$' "$dir/env.txt")
  else
    echo "unknown case $name" >&2; return 1
  fi
}

# peak RSS in kB of one run of "$@"
peak_rss() {
  /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}'
}

median_ms() { # hyperfine JSON -> "median_wall_ms cpu_ms" (cpu = mean user + system)
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.2f %.2f" % (r["median"]*1000, (r["user"]+r["system"])*1000))' "$1"
}

printf '%-28s %-3s %10s %10s %8s %9s %9s %8s %9s %8s %6s\n' instance pvi "iocrun ms" "ibek ms" "wall x" "iocrun cpu" "ibek cpu" "cpu x" "iocrun MB" "ibek MB" "mem x"
for name in "${names[@]}"; do
  prepare "$name"
  for pvi in $PVI_MODES; do
    flag=""; [ "$pvi" = off ] && flag="--no-pvi"
    ioc_cmd="$IOCRUN generate $CFG ${DEFS[*]} -o $ROOT/runtime --opi $ROOT/opi $flag"
    ibek_cmd="$IBEK runtime generate2 $CFG ${DEFS[*]} -o $ROOT/runtime $flag"
    if ! env EPICS_ROOT="$ROOT" "${ENVS[@]}" bash -c "$ioc_cmd" >/dev/null 2>"$WORK/err"; then
      printf '%-30s %-4s iocrun failed: %s\n' "$name" "$pvi" "$(tail -n1 "$WORK/err" | cut -c1-80)"; continue
    fi
    export EPICS_ROOT=$ROOT
    for kv in "${ENVS[@]}"; do export "$kv"; done
    hyperfine -N --style none --warmup 2 --runs "$RUNS" --export-json "$WORK/ioc.json" "$ioc_cmd" >/dev/null 2>&1
    hyperfine -N --style none --warmup 1 --runs "$(( RUNS < 5 ? RUNS : 5 ))" --export-json "$WORK/ibek.json" "$ibek_cmd" >/dev/null 2>&1
    # shellcheck disable=SC2086
    rss_ioc=$(peak_rss $ioc_cmd); rss_ibek=$(peak_rss $ibek_cmd)
    read -r t_ioc c_ioc < <(median_ms "$WORK/ioc.json"); read -r t_ibek c_ibek < <(median_ms "$WORK/ibek.json")
    awk -v n="$name" -v p="$pvi" -v a="$t_ioc" -v b="$t_ibek" -v ca="$c_ioc" -v cb="$c_ibek" -v ra="$rss_ioc" -v rb="$rss_ibek" 'BEGIN {
      printf "%-28s %-3s %10.2f %10.2f %7.0fx %9.2f %9.1f %7.0fx %9.1f %8.1f %5.1fx\n", n, p, a, b, b/a, ca, cb, cb/ca, ra/1024, rb/1024, rb/ra }'
    for kv in "${ENVS[@]}"; do unset "${kv%%=*}"; done
  done
done
echo "(ms: median wall time of $RUNS iocrun runs and up to 5 ibek runs; cpu: mean user+system ms,"
echo " which a loaded machine disturbs less; MB: peak RSS of one run; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
