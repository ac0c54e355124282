#!/usr/bin/env bash
# Benchmark `iocrun generate` against the reference `ibek runtime generate2`, screens on, pairwise
# per instance in one run: CPU time (user+sys, mean of hyperfine runs; a loaded machine disturbs it
# less than wall time), median wall time, and peak RSS (/usr/bin/time -v) of each, with the ratio.
# Target (issue 10): iocrun >= 100x faster (CPU) and < 10 MB peak RSS on every instance.
#
# Instances: every case of ../shared/conformance/ibek/cases that ibek renders (the error cases are
# listed as skipped), plus a generated large quadEM instance built at run time from the
# ../shared/conformance/ibek-support models (BENCH_QUADEM_PAIRS TetrAMM + Plugins pairs, 4 by
# default = 8 entities), whose screens use the device files of ../shared/conformance.
#
# usage: scripts/bench-render.sh [INSTANCE...]     (INSTANCE: a case name or "quadem-generated")
# env: BENCH_RUNS (iocrun runs, default 20), BENCH_IBEK_RUNS (default 3), BENCH_PROFILE (cargo
#      profile of a dynamic build; default: the static release binary images ship), BENCH_QUADEM_PAIRS (default 4), BENCH_TMPDIR
#      (where outputs go, default /dev/shm).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SHARED=${IOCRUN_SHARED:-$REPO/../shared}
CASES=$SHARED/conformance/ibek/cases
# shellcheck disable=SC1091
source "${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}/env.sh"
IBEK=${IOCRUN_IBEK:?run scripts/install-test-deps.sh first}
RUNS=${BENCH_RUNS:-20}
IBEK_RUNS=${BENCH_IBEK_RUNS:-3}
PAIRS=${BENCH_QUADEM_PAIRS:-4}
command -v hyperfine >/dev/null || { echo "hyperfine missing: run scripts/install-test-deps.sh" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time missing: run scripts/install-test-deps.sh" >&2; exit 1; }
if [ -n "${BENCH_PROFILE:-}" ] && [ -z "${IOCRUN_BIN:-}" ]; then
  cargo build -q --profile "$BENCH_PROFILE"
  IOCRUN_BIN=target/$BENCH_PROFILE/iocrun
fi
# outputs go to tmpfs by default: both tools write the same files there, and the disk's journal
# (shared with whatever else the machine runs) stays out of the comparison
if [ -z "${BENCH_TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then BENCH_TMPDIR=/dev/shm; fi
export TMPDIR=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
IOCRUN=$REPO/$IOCRUN_BIN
[ -x "$IOCRUN" ] || IOCRUN=$IOCRUN_BIN

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for c in "$CASES"/*/; do names+=("$(basename "$c")"); done
  names+=(quadem-generated)
fi

# The generated instance: PAIRS TetrAMM + Plugins pairs of the ibek-support quadEM models.
make_quadem() {
  local dir=$1 i
  mkdir -p "$dir/config" "$dir/pvi-defs"
  {
    echo "ioc_name: \"{{ _global.get_env('IOC_NAME') }}\""
    echo "description: generated quadEM instance for scripts/bench-render.sh"
    echo "entities:"
    for i in $(seq 1 "$PAIRS"); do
      cat <<EOF
  - type: quadEM.TetrAMM
    PORT: XBPM$i.DRV
    P: BL03I-EA-XBPM-0$i
    R: ":DRV:"
    QSIZE: 20
    IP: 172.23.103.$((80 + i)):10001
  - type: quadEM.Plugins
    NDARRAY_PORT: XBPM$i.DRV
    PORTPREFIX: XBPM$i
    STAT_NCHAN: 1000
    STAT_XSIZE: 10000
EOF
    done
  } > "$dir/config/ioc.yaml"
  ln -sf "$SHARED"/conformance/pvi/defs/*.pvi.device.yaml "$dir/pvi-defs/"
  ln -sf "$CASES"/ibek-quadem/input/pvi-defs/*.pvi.device.yaml "$dir/pvi-defs/"
}

# Prepare one instance: sets CFG (config dir), DEFS (--definitions args), ENVS, ROOT.
prepare() {
  local name=$1 line
  ROOT=$work/$name/epics; rm -rf "${work:?}/$name"; mkdir -p "$ROOT/runtime" "$ROOT/opi"
  DEFS=(); ENVS=()
  if [ "$name" = quadem-generated ]; then
    make_quadem "$work/$name/gen"
    CFG=$work/$name/gen/config
    ln -s "$work/$name/gen/pvi-defs" "$ROOT/pvi-defs"
    for f in quadem ADCore; do DEFS+=(--definitions "$SHARED/conformance/ibek-support/$f.ibek.support.yaml"); done
    ENVS=(IOC=/epics/ioc RUNTIME_DIR=/epics/runtime IOC_NAME=bl03i-ea-xbpm-01)
  elif [ -d "$CASES/$name" ]; then
    CFG=$CASES/$name/input/config
    while read -r line; do [ -n "$line" ] && DEFS+=(--definitions "$CASES/$name/input/$line"); done < "$CASES/$name/defs.txt"
    if [ -d "$CASES/$name/input/pvi-defs" ]; then ln -s "$CASES/$name/input/pvi-defs" "$ROOT/pvi-defs"; else mkdir -p "$ROOT/pvi-defs"; fi
    mapfile -t ENVS < <(grep -v '^$' "$CASES/$name/env.txt")
  else
    echo "unknown instance $name" >&2; return 1
  fi
}

times_ms() { # hyperfine JSON -> "cpu_ms median_wall_ms" (cpu = mean user + system)
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.2f %.2f" % ((r["user"]+r["system"])*1000, r["median"]*1000))' "$1"
}

printf '%-30s %9s %9s %7s %9s %9s %9s %9s\n' instance "iocrun ms" "ibek ms" ratio "iocrun MB" "ibek MB" "ioc wall" "ibek wall"
worst_ratio=""; worst_rss=0; n=0
for name in "${names[@]}"; do
  prepare "$name"
  ioc_cmd="$IOCRUN generate $CFG ${DEFS[*]} -o $ROOT/runtime --opi $ROOT/opi"
  ibek_cmd="$IBEK runtime generate2 $CFG ${DEFS[*]} -o $ROOT/runtime"
  export EPICS_ROOT=$ROOT
  for kv in "${ENVS[@]}"; do export "${kv?}"; done
  # the first run of each tool checks that it renders, measures its peak RSS and warms caches
  # shellcheck disable=SC2086
  if ! rss_ibek=$(/usr/bin/time -o "$work/rss" -f %M $ibek_cmd 2>"$work/err" >/dev/null && cat "$work/rss"); then
    printf '%-30s skipped: ibek fails (%s)\n' "$name" "$(grep -v '^\s*$' "$work/err" | tail -n1 | cut -c1-70)"
  # shellcheck disable=SC2086
  elif ! rss_ioc=$(/usr/bin/time -o "$work/rss" -f %M $ioc_cmd 2>"$work/err" >/dev/null && cat "$work/rss"); then
    printf '%-30s iocrun FAILED: %s\n' "$name" "$(tail -n1 "$work/err" | cut -c1-80)"; worst_ratio=0
  else
    hyperfine -N --style none --warmup 3 --runs "$RUNS" --export-json "$work/ioc.json" "$ioc_cmd" >/dev/null 2>&1
    hyperfine -N --style none --runs "$IBEK_RUNS" --export-json "$work/ibek.json" "$ibek_cmd" >/dev/null 2>&1
    read -r c_ioc w_ioc < <(times_ms "$work/ioc.json"); read -r c_ibek w_ibek < <(times_ms "$work/ibek.json")
    ratio=$(awk -v a="$c_ioc" -v b="$c_ibek" 'BEGIN { printf "%.0f", b / a }')
    printf '%-30s %9.1f %9.0f %6sx %9.1f %9.1f %9.1f %9.0f\n' "$name" "$c_ioc" "$c_ibek" "$ratio" \
      "$(awk -v k="$rss_ioc" 'BEGIN { print k / 1024 }')" "$(awk -v k="$rss_ibek" 'BEGIN { print k / 1024 }')" "$w_ioc" "$w_ibek"
    n=$((n + 1))
    if [ -z "$worst_ratio" ] || [ "$ratio" -lt "$worst_ratio" ]; then worst_ratio=$ratio; fi
    [ "$rss_ioc" -gt "$worst_rss" ] && worst_rss=$rss_ioc
  fi
  for kv in "${ENVS[@]}"; do unset "${kv%%=*}"; done
done
echo "($n instances; ms: mean CPU time user+sys of $RUNS iocrun and $IBEK_RUNS ibek runs; wall: median ms;"
echo " MB: peak RSS of one run; binary $(basename "$(dirname "$IOCRUN")") $(bench_linkage "$IOCRUN") $(( $(stat -c %s "$IOCRUN") / 1024 )) kB;"
echo " outputs in $TMPDIR ($(stat -f -c %T "$TMPDIR")); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
awk -v r="${worst_ratio:-0}" -v m="$worst_rss" 'BEGIN {
  printf "lowest ratio %sx (target >= 100x): %s; highest iocrun peak RSS %.1f MB (target < 10 MB): %s\n",
    r, (r >= 100 ? "met" : "NOT met"), m / 1024, (m < 10240 ? "met" : "NOT met") }'
