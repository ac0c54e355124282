#!/usr/bin/env bash
# Console benchmark (issue 4, "Must show"):
#   1. the IOC's output rate through iocrun with 0 and with 20 console clients attached
#      (target: unchanged), beside procServ with 0 and 20 clients when it is installed;
#   2. attach-to-first-byte latency on the console socket (target: under 10 ms), beside
#      procServ's (its connect banner).
# The "IOC" is a shell that waits for a go file, then pushes MB megabytes of 99-column lines (yes)
# through its PTY and reports how long that took: the rate the supervisor lets the IOC print.
# Usage: scripts/bench-console.sh [MB]   (IOCRUN_BIN overrides the binary; default release build)
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-32}
PACED_MB=4   # the paced run: 4 MB at 2 MB/s
PACED_RATE=2
CLIENTS=20
PY=${IOCRUN_PYTHON:-python3}
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

# a paced IOC: RATE MB/s of 99-column lines in 10 ms slices, for MB megabytes (the rate a
# busy IOC might reach, far above a real one); it reports the elapsed time like the flood
cat > "$work/paced.py" <<'PY'
import os, sys, time
mb, rate, go, out = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
while not os.path.exists(go):
    time.sleep(0.05)
line = b"y" * 98 + b"\n"
per_slice = int(rate * 1e6 / 100 / len(line)) or 1
total = int(mb * 1e6 / len(line))
t0 = time.perf_counter()
sent = 0
while sent < total:
    os.write(1, line * min(per_slice, total - sent))
    sent += per_slice
    time.sleep(max(0.0, t0 + sent / per_slice / 100 - time.perf_counter()))
with open(out, "w") as f:
    f.write("ELAPSED_NS=%d\n" % int((time.perf_counter() - t0) * 1e9))
time.sleep(600)
PY

# the flooding IOC: wait for $work/go, print, then report the elapsed nanoseconds
cat > "$work/ioc.sh" <<SH
if [ -n "\${PACED:-}" ]; then exec "$PY" "$work/paced.py" $PACED_MB \$PACED "$work/go" "$work/elapsed"; fi
while [ ! -f "$work/go" ]; do sleep 0.05; done
t0=\$(date +%s%N)
yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | head -c $((MB * 1000000))
t1=\$(date +%s%N)
echo "ELAPSED_NS=\$((t1 - t0))" > "$work/elapsed"
sleep 600
SH

# CLIENTS readers on one socket, each counting bytes until told to stop
cat > "$work/readers.py" <<'PY'
import selectors, socket, sys, time
path, n, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sel = selectors.DefaultSelector()
for _ in range(n):
    if kind == "tcp":
        host, port = path.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    else:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, [0])
print("ready", flush=True)
open_ = n
deadline = time.time() + 600
while open_ and time.time() < deadline:
    for key, _ in sel.select(timeout=1):
        try:
            data = key.fileobj.recv(1 << 16)
        except BlockingIOError:
            continue
        if not data:
            sel.unregister(key.fileobj)
            open_ -= 1
        else:
            key.data[0] += len(data)
PY

# median/p95/max of N connect-to-first-byte times, in ms
cat > "$work/latency.py" <<'PY'
import socket, statistics, sys, time
path, n = sys.argv[1], int(sys.argv[2])
ts = []
for _ in range(n):
    t0 = time.perf_counter()
    if ":" in path:
        host, port = path.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    else:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
    s.recv(1)
    ts.append((time.perf_counter() - t0) * 1000)
    s.close()
ts.sort()
print(f"median {statistics.median(ts):.2f} ms  p95 {ts[int(len(ts) * 0.95)]:.2f} ms  max {ts[-1]:.2f} ms")
PY

wait_for() { for _ in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.05; done; echo "timeout waiting for $1" >&2; return 1; }

# run_one SUPERVISOR NCLIENTS [PACED_RATE] -> prints MB/s
run_one() {
  local sup=$1 n=$2 sock mb=$MB
  export PACED=${3:-}
  [ -n "$PACED" ] && mb=$PACED_MB
  rm -f "$work/go" "$work/elapsed"
  case $sup in
    iocrun)
      sock="$work/console.sock"
      "$IOCRUN_BIN" start --restart never --console-stdin off --console-socket "$sock" \
        -- sh "$work/ioc.sh" >"$work/stdout" 2>&1 </dev/null &
      pids+=($!); wait_for "$sock" ;;
    procserv)
      sock="127.0.0.1:$((20000 + RANDOM % 20000))"
      procServ -f -q -n bench -L - "${sock##*:}" /bin/sh "$work/ioc.sh" >/dev/null 2>&1 </dev/null &
      pids+=($!); sleep 0.5 ;;
  esac
  local sup_pid=$! readers_pid=""
  if [ "$n" -gt 0 ]; then
    local kind=unix; [ "$sup" = procserv ] && kind=tcp
    "$PY" "$work/readers.py" "$sock" "$n" "$kind" > "$work/readers.out" &
    readers_pid=$!; pids+=($readers_pid)
    for _ in $(seq 200); do grep -q ready "$work/readers.out" 2>/dev/null && break; sleep 0.05; done
  fi
  touch "$work/go"
  wait_for "$work/elapsed"
  local ns; ns=$(sed 's/ELAPSED_NS=//' "$work/elapsed")
  if [ "$sup" = iocrun ]; then
    # a client that could not keep up is dropped (and announced); say how many were
    grep -ao 'dropped: too slow' "$work/stdout" | wc -l > "$work/drops" || true
  fi
  kill "$sup_pid" 2>/dev/null || true; wait "$sup_pid" 2>/dev/null || true
  [ -n "$readers_pid" ] && { kill "$readers_pid" 2>/dev/null || true; wait "$readers_pid" 2>/dev/null || true; }
  echo "$ns" | awk -v mb="$mb" '{ printf "%.2f", mb / ($1 / 1e9) }'
}

latency_of() {
  local sup=$1 sock
  rm -f "$work/go"
  case $sup in
    iocrun)
      sock="$work/lat.sock"
      "$IOCRUN_BIN" start --restart never --console-stdin off --console-socket "$sock" \
        -- sh -c 'echo boot; sleep 600' >/dev/null 2>&1 </dev/null &
      pids+=($!); wait_for "$sock"; sleep 0.2 ;;
    procserv)
      sock="127.0.0.1:$((20000 + RANDOM % 20000))"
      procServ -f -q -n lat -L - "${sock##*:}" /bin/sh -c 'echo boot; sleep 600' >/dev/null 2>&1 </dev/null &
      pids+=($!); sleep 0.5 ;;
  esac
  local sup_pid=$!
  "$PY" "$work/latency.py" "$sock" 200
  kill "$sup_pid" 2>/dev/null || true; wait "$sup_pid" 2>/dev/null || true
}

echo "flood: the IOC prints ${MB} MB through its PTY as fast as it can (CPU-bound on this machine)"
r0=$(run_one iocrun 0)
r20=$(run_one iocrun "$CLIENTS")
echo "  iocrun    0 clients: ${r0} MB/s   ${CLIENTS} clients: ${r20} MB/s   ratio $(awk -v a="$r20" -v b="$r0" 'BEGIN{printf "%.2f", a/b}')   slow clients dropped: $(cat "$work/drops")"
if command -v procServ >/dev/null; then
  p0=$(run_one procserv 0)
  p20=$(run_one procserv "$CLIENTS")
  echo "  procServ  0 clients: ${p0} MB/s   ${CLIENTS} clients: ${p20} MB/s   ratio $(awk -v a="$p20" -v b="$p0" 'BEGIN{printf "%.2f", a/b}')"
fi
echo "paced IOC: ${PACED_MB} MB at ${PACED_RATE} MB/s (achieved rate; unchanged means the console costs the IOC nothing)"
q0=$(run_one iocrun 0 "$PACED_RATE")
q20=$(run_one iocrun "$CLIENTS" "$PACED_RATE")
echo "  iocrun    0 clients: ${q0} MB/s   ${CLIENTS} clients: ${q20} MB/s   ratio $(awk -v a="$q20" -v b="$q0" 'BEGIN{printf "%.2f", a/b}')   slow clients dropped: $(cat "$work/drops")"
if command -v procServ >/dev/null; then
  s0=$(run_one procserv 0 "$PACED_RATE")
  s20=$(run_one procserv "$CLIENTS" "$PACED_RATE")
  echo "  procServ  0 clients: ${s0} MB/s   ${CLIENTS} clients: ${s20} MB/s   ratio $(awk -v a="$s20" -v b="$s0" 'BEGIN{printf "%.2f", a/b}')"
fi
echo "attach-to-first-byte latency (200 connections, scrollback replay / banner)"
echo "  iocrun    $(latency_of iocrun)"
if command -v procServ >/dev/null; then
  echo "  procServ  $(latency_of procserv)"
fi
