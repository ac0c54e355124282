#!/usr/bin/env bash
# PV metrics benchmark: what monitoring the IOC's own PVs costs iocrun.
#   A softIoc serves N calc records processed at 10 Hz each (SCAN ".1 second"); one iocrun
#   supervises it with --pv-metrics naming all N, another iocrun supervises `sleep` with no
#   PV metrics (idle). Over a window of W seconds: each iocrun's CPU share (utime+stime from
#   /proc) and RSS, the monitor updates received per second; then the /metrics latency of both
#   (200 sequential GETs each over keep-alive-free HTTP/1.1 from Python: request to last byte),
#   and how long after `caput` returns a new value shows in /metrics (20 puts, polled).
# Usage: scripts/bench-pvmetrics.sh [N=1000] [W=20]   (IOCRUN_BIN overrides the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source "${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}/env.sh"
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

n=${1:-1000}
window=${2:-20}
port=$(( 20000 + RANDOM % 20000 ))
export EPICS_CA_SERVER_PORT=$port EPICS_CA_REPEATER_PORT=$((port + 1))
export EPICS_CA_ADDR_LIST=127.0.0.1 EPICS_CA_AUTO_ADDR_LIST=NO EPICS_CAS_INTF_ADDR_LIST=127.0.0.1
export IOCRUN_CONSOLE_SOCKET=none IOCRUN_CONTROL_SOCKET=none IOCRUN_CA_CHECK_PV=none
export RUNTIME_DIR=$work/runtime

for i in $(seq "$n"); do
  printf 'record(calc, "BENCH:C%d") { field(SCAN, ".1 second") field(CALC, "A+1") field(INPA, "BENCH:C%d") }\n' "$i" "$i"
done > "$work/bench.db"
echo 'record(ao, "BENCH:SET") { field(VAL, "0") }' >> "$work/bench.db"
for i in $(seq "$n"); do
  printf -- '- {pv: "BENCH:C%d", metric: bench_counter, labels: {n: "%d"}}\n' "$i" "$i"
done > "$work/pv-metrics.yaml"
echo '- {pv: "BENCH:SET", metric: bench_setpoint}' >> "$work/pv-metrics.yaml"

free_port() { "$IOCRUN_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
busy_http=127.0.0.1:$(free_port)
idle_http=127.0.0.1:$(free_port)

"$IOCRUN_BIN" start --http "$busy_http" --pv-metrics "$work/pv-metrics.yaml" \
  -- "$IOCRUN_EPICS_BIN/softIoc" -d "$work/bench.db" > "$work/busy.log" 2>&1 < /dev/null &
busy=$!
pids+=($busy)
"$IOCRUN_BIN" start --http "$idle_http" -- sleep 3600 > "$work/idle.log" 2>&1 < /dev/null &
idle=$!
pids+=($idle)

metric() { curl -sf "http://$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
connected() { curl -sf "http://$busy_http/metrics" | grep -c '^epics_pv_connected{.*} 1.0$' || true; }
for _ in $(seq 300); do
  [ "$(connected)" = "$((n + 1))" ] && break
  sleep 0.2
done
[ "$(connected)" = "$((n + 1))" ] || { echo "only $(connected) of $((n + 1)) PVs connected" >&2; cat "$work/busy.log" >&2; exit 1; }
sleep 2

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
b0=$(ticks "$busy"); i0=$(ticks "$idle"); u0=$(metric "$busy_http" epics_pv_updates_total)
s0=$(metric "$busy_http" epics_ioc_ca_messages_sent_total)
t0=$(date +%s.%N)
sleep "$window"
b1=$(ticks "$busy"); i1=$(ticks "$idle"); u1=$(metric "$busy_http" epics_pv_updates_total)
s1=$(metric "$busy_http" epics_ioc_ca_messages_sent_total)
t1=$(date +%s.%N)

bytes=$(curl -sf "http://$busy_http/metrics" | wc -c)

"$IOCRUN_PYTHON" - <<PY
import http.client, statistics, time
def lat(addr, n=200):
    host, port = addr.split(":")
    out = []
    for _ in range(n + 10):
        t = time.perf_counter()
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        c.request("GET", "/metrics")
        c.getresponse().read()
        c.close()
        out.append((time.perf_counter() - t) * 1000)
    out = sorted(out[10:])
    return statistics.median(out), out[int(len(out) * 0.95)]
busy_ms, idle_ms = lat("$busy_http"), lat("$idle_http")
import subprocess
def get(addr):
    host, port = addr.split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    c.close()
    return body
seen = []
for k in range(1, 21):
    subprocess.run(["$IOCRUN_EPICS_BIN/caput", "BENCH:SET", str(k)], check=True, capture_output=True)
    t = time.perf_counter()
    while f"bench_setpoint {k}.0\n" not in get("$busy_http"):
        if time.perf_counter() - t > 10:
            raise SystemExit(f"BENCH:SET={k} never showed in /metrics")
    seen.append((time.perf_counter() - t) * 1000)
dt = $t1 - $t0
cpu = lambda a, b: (b - a) / $hz / dt * 100
print(f"PVs monitored            {$n} at 10 Hz (calc, SCAN .1 second), window {dt:.1f} s")
print(f"updates received         {($u1 - $u0) / dt:9.0f} /s   (expected {$n * 10})")
print(f"CA messages sent         {$s1 - $s0:9.0f}      in the window")
print(f"iocrun CPU, monitoring   {cpu($b0, $b1):9.2f} %  of one core ({($b1 - $b0) / $hz:.2f} s CPU)")
print(f"iocrun CPU, idle         {cpu($i0, $i1):9.2f} %")
print(f"iocrun RSS, monitoring   {$(rss_kib "$busy") / 1024:9.1f} MiB")
print(f"iocrun RSS, idle         {$(rss_kib "$idle") / 1024:9.1f} MiB")
print(f"/metrics, monitoring     median {busy_ms[0]:6.2f} ms  p95 {busy_ms[1]:6.2f} ms  ({$bytes} bytes)")
print(f"/metrics, idle           median {idle_ms[0]:6.2f} ms  p95 {idle_ms[1]:6.2f} ms")
print(f"caput to /metrics        median {statistics.median(seen):6.2f} ms  max {max(seen):6.2f} ms"
      " (one scrape of the loaded iocrun included)")
PY
