#!/usr/bin/env bash
# Benchmark `iocrun expand` against the real msi (EPICS base 7.0.8.1) side by side, on the
# conformance generator's ioc.subst: 2,000 rows over 10 templates, and 20,000 rows.
# Prints per case: median wall time (hyperfine), peak RSS (/usr/bin/time -v) and the ratios,
# and checks both outputs are identical. Wall time suffers on a busy machine, so the mean CPU
# time (user + system) is printed too.
# Usage: scripts/bench-expand.sh [RUNS]   (IOCRUN=path skips the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
# shellcheck disable=SC1091
source "${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}/env.sh"
command -v hyperfine >/dev/null && [ -x /usr/bin/time ] || {
  echo "bench-expand: needs hyperfine and /usr/bin/time (scripts/install-test-deps.sh)" >&2; exit 1; }
if [ -z "${IOCRUN:-}" ]; then
  cargo build --release -q
  IOCRUN=$PWD/target/release/iocrun
fi
iocrun=$(cd "$(dirname "$IOCRUN")" && pwd)/$(basename "$IOCRUN")
msi=$IOCRUN_EPICS_BIN/msi
gen=$PWD/../shared/conformance/msi/gen_big.py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rss_kb() { # peak RSS in kB of one run of "$@"
  /usr/bin/time -v "$@" 2>&1 >/dev/null | sed -n 's/.*Maximum resident set size (kbytes): //p'
}

printf '%-12s %-8s %11s %11s %12s %8s\n' case tool "median (s)" "CPU (s)" "peak RSS MB" output
for rows in 2000 20000; do
  dir=$work/rows$rows
  python3 "$gen" "$dir" "$rows" >/dev/null
  cd "$dir"
  hyperfine -N -w 1 -r "$runs" --export-json "$dir/h.json" \
    -n msi "$msi -o msi.db -I . -S ioc.subst" \
    -n iocrun "$iocrun expand -o iocrun.db -I . -S ioc.subst" >/dev/null
  cmp -s msi.db iocrun.db || { echo "bench-expand: outputs differ for $rows rows" >&2; exit 1; }
  size=$(du -h msi.db | cut -f1)
  read -r t_msi t_ioc c_msi c_ioc < <(python3 -c '
import json,sys
r={x["command"]:x for x in json.load(open(sys.argv[1]))["results"]}
cpu=lambda x: x["user"]+x["system"]
print(r["msi"]["median"], r["iocrun"]["median"], cpu(r["msi"]), cpu(r["iocrun"]))' "$dir/h.json")
  m_msi=$(rss_kb "$msi" -o msi.db -I . -S ioc.subst)
  m_ioc=$(rss_kb "$iocrun" expand -o iocrun.db -I . -S ioc.subst)
  awk -v c="$rows rows" -v a="$t_msi" -v b="$t_ioc" -v ca="$c_msi" -v cb="$c_ioc" \
      -v ma="$m_msi" -v mb="$m_ioc" -v s="$size" 'BEGIN {
    printf "%-12s %-8s %11.4f %11.4f %12.1f %8s\n", c, "msi", a, ca, ma/1024, s
    printf "%-12s %-8s %11.4f %11.4f %12.1f %8s\n", c, "iocrun", b, cb, mb/1024, s
    printf "%-12s %-8s %10.2fx %10.2fx %11.2fx   (iocrun/msi; < 1 is better)\n", c, "ratio", b/a, cb/ca, mb/ma }'
  cd - >/dev/null
done
