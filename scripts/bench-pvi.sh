#!/usr/bin/env bash
# Benchmark `iocrun pvi` against pvi 0.14.4 (the Python library ibek drives) side by side: one
# device's screens and template, as ibek does it per device (deserialize, resolve parents,
# format_template, DLSFormatter.format). Devices: simDetector (parents ADDriver, NDArrayBase)
# and ADGenICam (the largest screen). Prints median wall time (hyperfine), peak RSS
# (/usr/bin/time -v) and the ratios, and checks the outputs are identical apart from the
# documented write-button fix. Usage: scripts/bench-pvi.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
# shellcheck disable=SC1091
source "${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}/env.sh"
command -v hyperfine >/dev/null && [ -x /usr/bin/time ] || {
  echo "bench-pvi: needs hyperfine and /usr/bin/time (scripts/install-test-deps.sh)" >&2; exit 1; }
cargo build --release -q
iocrun=$PWD/target/release/iocrun
python=$(dirname "$IOCRUN_IBEK")/python
defs=$PWD/../shared/conformance/pvi/defs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/pvi_ref.py" <<'PY'
import sys
from pathlib import Path
from pvi._format.dls import DLSFormatter
from pvi._format.template import format_template
from pvi.device import Device
device, defs, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
name = device.name.split(".")[0]
d = Device.deserialize(device)
d.deserialize_parents([defs])
format_template(d, "$(P)$(R)", out / f"{name}.pvi.template")
DLSFormatter().format(d, out / f"{name}.pvi.bob")
PY

rss_kb() { # peak RSS in kB of one run of "$@"
  /usr/bin/time -v "$@" 2>&1 >/dev/null | sed -n 's/.*Maximum resident set size (kbytes): //p'
}

printf '%-12s %-8s %12s %12s\n' device tool "median (s)" "peak RSS MB"
for dev in simDetector ADGenICam; do
  mkdir -p "$work/$dev/ref" "$work/$dev/ioc"
  ref=("$python" "$work/pvi_ref.py" "$defs/$dev.pvi.device.yaml" "$defs" "$work/$dev/ref")
  ioc=("$iocrun" pvi "$defs/$dev.pvi.device.yaml" --search "$defs" -o "$work/$dev/ioc" --pv-prefix '$(P)$(R)')
  hyperfine -N -w 1 -r "$runs" --export-json "$work/$dev/h.json" \
    -n pvi "${ref[*]}" -n iocrun "${ioc[*]}" >/dev/null
  diff -r "$work/$dev/ref" "$work/$dev/ioc" | grep -v -e '^[<>] *<pv_name>' -e '^---' -e '^[0-9]' -q && {
    echo "bench-pvi: outputs differ for $dev" >&2; exit 1; }
  read -r t_ref t_ioc < <(python3 -c '
import json,sys
r={x["command"]:x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(r["pvi"], r["iocrun"])' "$work/$dev/h.json")
  m_ref=$(rss_kb "${ref[@]}")
  m_ioc=$(rss_kb "${ioc[@]}")
  awk -v c="$dev" -v a="$t_ref" -v b="$t_ioc" -v ma="$m_ref" -v mb="$m_ioc" 'BEGIN {
    printf "%-12s %-8s %12.4f %12.1f\n", c, "pvi", a, ma/1024
    printf "%-12s %-8s %12.4f %12.1f\n", c, "iocrun", b, mb/1024
    printf "%-12s %-8s %11.3fx %11.2fx   (iocrun/pvi; < 1 is better)\n", c, "ratio", b/a, mb/ma }'
done
