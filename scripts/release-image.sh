#!/usr/bin/env bash
# Builds the iocrun artefact image locally, without any registry: the static binary (built
# here as the release workflow builds it, unless IOCRUN_STATIC_BIN names one) in a FROM
# scratch image tagged with the crate version.
#
#   bash scripts/release-image.sh [IMAGE]      # default localhost/iocrun:<version>
#
# A Generic IOC Dockerfile then copies it: COPY --from=IMAGE /iocrun /usr/bin/iocrun
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
image=${1:-localhost/iocrun:$version}
bin=${IOCRUN_STATIC_BIN:-}
if [ -z "$bin" ]; then
  bin=$(bash scripts/build-static.sh --locked)
fi
# a static binary or nothing: FROM scratch has no loader and no libc
if ldd "$bin" 2>&1 | grep -q '=>'; then
  echo "release-image: $bin is dynamically linked" >&2
  exit 1
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
install -m 0755 "$bin" "$ctx/iocrun"
podman build -q -f release/Dockerfile --build-arg VERSION="$version" -t "$image" "$ctx" >/dev/null
echo "$image"
