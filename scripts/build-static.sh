#!/usr/bin/env bash
# Builds the binary images ship: the release profile, glibc linked in statically
# (`+crt-static`: no dynamic loader, runs FROM scratch), for the host's target, and prints its
# path relative to the repository. Extra arguments go to cargo (e.g. --locked).
#
#   bin=$(bash scripts/build-static.sh [CARGO_ARG...])
#
# The release workflow (.github/workflows/release.yml) builds it the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build -q --release --target "$target" --bin iocrun "$@" >&2
echo "target/$target/release/iocrun"
