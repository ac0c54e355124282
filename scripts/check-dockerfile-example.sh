#!/usr/bin/env bash
# Checks docs/adopting.md's diff against the real ioc-template, without any registry:
#   1. copies TEMPLATE/template (an ioc-template checkout) and replaces its Dockerfile with
#      Dockerfile.example, after checking that the two differ only by the documented diff,
#      and its ioc/start.sh with the shim (examples/adopt/start.sh);
#   2. builds the three images the Dockerfile pulls as local stand-ins: the developer image
#      (busybox with stand-ins for uv, ansible.sh, ibek, python3 that log their arguments and
#      do the minimum), the runtime image (scripts/container-image.sh: softIoc, busybox, a
#      broken /usr/bin/iocrun the COPY must replace) and the iocrun artefact
#      (scripts/release-image.sh, tagged with the name the Dockerfile uses);
#   3. builds the Dockerfile (`--target runtime`, as the template's `build` does) and runs the
#      template's own tests/run-tests.sh on the image, with tests/fixtures/smoke/config as its
#      config (the template's uses devIocStats, which a plain softIoc lacks).
#
#   bash scripts/check-dockerfile-example.sh TEMPLATE_CHECKOUT [STATIC_IOCRUN]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
template=${1:?usage: check-dockerfile-example.sh IOC_TEMPLATE_CHECKOUT [STATIC_IOCRUN]}
: "${IOCRUN_EPICS_BIN:?source the tools env.sh first (scripts/install-test-deps.sh)}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ctx=$work/ctx dev=$work/dev
cp -a "$template/template" "$ctx"

# 1. the documented diff, and nothing else
expected=$(sed -n '/^```diff$/,/^```$/p' docs/adopting.md | sed '1d;$d' | sed -n '/^@@/,$p')
actual=$(diff -u "$ctx/Dockerfile" Dockerfile.example | sed -n '/^@@/,$p' || true)
[ "$expected" = "$actual" ] || { echo "Dockerfile.example is not the template plus the documented diff:"; diff <(echo "$expected") <(echo "$actual"); exit 1; }
cp Dockerfile.example "$ctx/Dockerfile"
cp examples/adopt/start.sh "$ctx/ioc/start.sh"
mkdir -p "$ctx"/ibek-support/{_ansible,iocStats,pvlogging,autosave}  # a git submodule
rm -rf "$ctx/tests/config" && cp -r tests/fixtures/smoke/config "$ctx/tests/config"

# 2. stand-ins for the three pulled images
mkdir -p "$dev"/{bin,usr/bin,epics,tmp,standin}
install -m 0755 "$(command -v busybox)" "$dev/bin/busybox"
for a in sh ln cp mkdir cat echo ls rm true; do ln -s busybox "$dev/bin/$a"; done
cp examples/demo/bin/ioc "$dev/standin/ioc"
standin() { printf '#!/bin/sh\necho "stand-in %s $*"\n%s\n' "$1" "${2:-}" >"$dev/usr/bin/$1"; chmod +x "$dev/usr/bin/$1"; }
standin uv
standin python3
standin ansible.sh 'if [ "$1" = ioc ]; then mkdir -p "$IOC/bin/linux-x86_64" && cp /standin/ioc "$IOC/bin/linux-x86_64/ioc"; fi'
standin ibek 'if [ "$1 $2" = "ioc extract-runtime-assets" ]; then mkdir -p "$3/epics" "$4" && cp -rL "$IOC" "$3/epics/ioc"; fi'
tar -C "$dev" -c . | podman import --change 'ENV IOC=/epics/ioc' --change 'ENV EPICS_ROOT=/epics' \
  --change 'ENV PATH=/usr/bin:/bin' - localhost/standin/epics-base-developer:7.0.9ec5 >/dev/null
bash scripts/container-image.sh /bin/false localhost/standin/runtime-base:7.0.9ec5 >/dev/null
mkdir -p "$work/rt" && cp "$dev/usr/bin/ibek" "$work/rt/ibek"
printf 'FROM localhost/standin/runtime-base:7.0.9ec5\nCOPY ibek /usr/bin/ibek\n' >"$work/rt/Containerfile"
podman build -q --runtime runc --pull=never -t localhost/standin/epics-base-runtime:7.0.9ec5 "$work/rt" >/dev/null
artefact=$(sed -n 's/^COPY --from=\([^ ]*iocrun[^ ]*\) .*/\1/p' Dockerfile.example)
IOCRUN_STATIC_BIN=${2:-${IOCRUN_STATIC_BIN:-}} bash scripts/release-image.sh "$artefact" >/dev/null

# 3. build, then the template's smoke test (podman with runc, this kernel's limits)
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]\n[engine]\nruntime = "runc"\n' >"$work/containers.conf"
export CONTAINERS_CONF=$work/containers.conf
(cd "$ctx" && podman build --pull=never --build-arg REGISTRY=localhost/standin --build-arg IMAGE_EXT= \
  --target runtime -t localhost/adopted-generic-ioc:check .)
(cd "$ctx" && USE_PODMAN=1 bash tests/run-tests.sh localhost/adopted-generic-ioc:check)
podman rmi -f localhost/adopted-generic-ioc:check localhost/standin/epics-base-runtime:7.0.9ec5 \
  localhost/standin/runtime-base:7.0.9ec5 localhost/standin/epics-base-developer:7.0.9ec5 >/dev/null 2>&1 || true
echo "check-dockerfile-example: Dockerfile.example built and passed the template's smoke test"
