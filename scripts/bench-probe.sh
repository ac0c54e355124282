#!/usr/bin/env bash
# Probe and caget benchmark: what a Kubernetes exec probe costs.
#   1. `caget PV` (EPICS base, what liveness.sh runs) beside `iocrun caget PV`, against a
#      softIoc on loopback: median wall time and ratio (hyperfine);
#   2. `iocrun probe live` against a control socket (answered by socat with a canned verdict,
#      so this measures the client side: process start, connect, one line each way).
# Usage: scripts/bench-probe.sh   (IOCRUN_BIN overrides the binary; default release build)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source "${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}/env.sh"
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

port=$(( 20000 + RANDOM % 20000 ))
export EPICS_CA_SERVER_PORT=$port EPICS_CA_REPEATER_PORT=$((port + 1))
export EPICS_CA_ADDR_LIST=127.0.0.1 EPICS_CA_AUTO_ADDR_LIST=NO EPICS_CAS_INTF_ADDR_LIST=127.0.0.1
echo 'record(stringin, "BENCH:UPTIME") { field(VAL, "00:01:02") }' > "$work/b.db"
sleep 600 | "$IOCRUN_EPICS_BIN/softIoc" -d "$work/b.db" > "$work/ioc.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do "$IOCRUN_EPICS_BIN/caget" -w 0.2 BENCH:UPTIME >/dev/null 2>&1 && break; sleep 0.1; done

hyperfine -N --warmup 5 --runs 100 --export-json "$work/caget.json" \
  -n caget "$IOCRUN_EPICS_BIN/caget BENCH:UPTIME" \
  -n "iocrun caget" "$IOCRUN_BIN caget BENCH:UPTIME" >&2

sock="$work/control.sock"
socat UNIX-LISTEN:"$sock",fork SYSTEM:'read w; echo "ok bench"' &
pids+=($!)
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.05; done
hyperfine -N --warmup 5 --runs 200 --export-json "$work/probe.json" \
  -n "iocrun probe live" "$IOCRUN_BIN probe live --socket $sock" >&2

"$IOCRUN_PYTHON" - "$work/caget.json" "$work/probe.json" <<'PY'
import json, sys
caget = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
probe = json.load(open(sys.argv[2]))["results"][0]
ms = lambda r: r["median"] * 1000
print(f"caget (EPICS base)     median {ms(caget['caget']):7.2f} ms")
print(f"iocrun caget           median {ms(caget['iocrun caget']):7.2f} ms"
      f"   ratio {caget['caget']['median'] / caget['iocrun caget']['median']:.1f}x faster")
print(f"iocrun probe live      median {ms(probe):7.2f} ms")
PY
