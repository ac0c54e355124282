#!/usr/bin/env bash
# Idle memory of iocrun supervising softIoc, beside procServ and tini (Debian packages) in the
# same run, measured the same way for each: each init runs softIoc on the same
# st.cmd, as PID 1 of a fresh PID namespace when root (`unshare --pid --fork --mount-proc`),
# else as a plain child; after a settling time, VmRSS/VmHWM from /proc/PID/status and
# Pss/Anonymous from /proc/PID/smaps_rollup of the init (not of softIoc). Anonymous is the
# init's own heap and stacks; the rest of RSS is file-backed code pages of the binary, which
# containers started from the same image share.
#
#   bash scripts/bench-supervise.sh [SETTLE_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
settle=${1:-3}
TOOLS=${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}
if [ -z "${IOCRUN_EPICS_BIN:-}" ]; then
  bash scripts/install-test-deps.sh >/dev/null
  # shellcheck disable=SC1091
  source "$TOOLS/env.sh"
fi
softioc=$IOCRUN_EPICS_BIN/softIoc
for tool in procServ tini; do
  command -v "$tool" >/dev/null || { echo "bench-supervise: $tool missing (install-test-deps.sh)" >&2; exit 1; }
done
# the binary images ship (static); the dynamic build for contrast
iocrun=$PWD/$(bash scripts/build-static.sh)
cargo build --release -q --bin iocrun
iocrun_dyn=$PWD/target/release/iocrun

work=$(mktemp -d)
keeper=
cleanup() {
  [ -n "$keeper" ] && kill "$keeper" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
printf 'record(ai, "BENCH:X") { field(VAL, "1") }\n' >"$work/bench.db"
printf 'dbLoadRecords("%s/bench.db")\niocInit\n' "$work" >"$work/st.cmd"
export EPICS_CAS_INTF_ADDR_LIST=127.0.0.1 EPICS_CA_AUTO_ADDR_LIST=NO EPICS_CA_ADDR_LIST=127.0.0.1
export IOCRUN_CONSOLE_SOCKET=$work/console.sock IOCRUN_CONTROL_SOCKET=$work/control.sock

if [ "$(id -u)" = 0 ] && unshare --pid --fork --mount-proc true 2>/dev/null; then
  wrap=(unshare --pid --fork --mount-proc --)
  how="PID 1 in a PID namespace"
else
  wrap=()
  how="plain child (not root: no PID namespace)"
fi

# softIoc under tini reads iocsh commands from stdin: keep a stdin open that never sends EOF
mkfifo "$work/stdin"
sleep 100000 >"$work/stdin" &
keeper=$!

field() { awk -v k="$1" '$1 == k":" { print $2 }' "$2" 2>/dev/null || echo "-"; }

# measure NAME CMD...: start, settle, read the init's memory, stop it
measure() {
  local name=$1
  shift
  "${wrap[@]}" "$@" <"$work/stdin" >"$work/$name.out" 2>&1 &
  local outer=$! init
  sleep 0.3
  if [ ${#wrap[@]} -gt 0 ]; then init=$(pgrep -P "$outer" | head -1); else init=$outer; fi
  sleep "$settle"
  local ioc
  ioc=$(pgrep -P "$init" | head -1 || true)
  printf '%-10s %10s %10s %10s %12s %14s\n' "$name" \
    "$(field VmRSS "/proc/$init/status")" "$(field VmHWM "/proc/$init/status")" \
    "$(field Pss "/proc/$init/smaps_rollup")" \
    "$(field Anonymous "/proc/$init/smaps_rollup")" \
    "$(field VmRSS "/proc/${ioc:-0}/status")"
  kill -TERM "$init" 2>/dev/null || true
  sleep 0.5
  kill -KILL "$init" 2>/dev/null || true
  wait "$outer" 2>/dev/null || true
}

echo "idle memory supervising softIoc ($how), after ${settle}s; kB"
printf '%-10s %10s %10s %10s %12s %14s\n' init VmRSS VmHWM Pss Anonymous "softIoc VmRSS"
measure iocrun "$iocrun" --restart never -- "$softioc" "$work/st.cmd" | tee "$work/iocrun.row"
measure iocrun-dyn "$iocrun_dyn" --restart never -- "$softioc" "$work/st.cmd"
measure procServ procServ -f -q -n softioc --noautorestart "unix:$work/ps.sock" "$softioc" "$work/st.cmd" | tee "$work/procServ.row"
measure tini tini -s -- "$softioc" "$work/st.cmd" | tee "$work/tini.row"

rss() { awk 'NR==1 { print $2 }' "$work/$1.row"; }
awk -v a="$(rss iocrun)" -v p="$(rss procServ)" -v t="$(rss tini)" 'BEGIN {
  if (p > 0 && t > 0) printf "iocrun RSS = %.2f x procServ, %.2f x tini (target: under 5 MB = 5120 kB)\n", a / p, a / t }'
ls -l "$iocrun" | awk '{ printf "iocrun binary: %d bytes (static release; iocrun row)\n", $5 }'
ls -l "$iocrun_dyn" | awk '{ printf "iocrun binary: %d bytes (dynamic release; iocrun-dyn row)\n", $5 }'
