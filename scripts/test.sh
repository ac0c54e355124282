#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs every test dependency, then runs
# fmt, clippy and all tests (unit, integration, conformance against ../shared).
# Ends with one summary line, `Summary: N passed, M failed`, over every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh >/dev/null
# shellcheck disable=SC1091
source "${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}/env.sh"
cargo fmt --check
cargo clippy --all-targets -q -- -D warnings

# The release build as the static binary images ship (`+crt-static`); the container test
# (tests/it/container.rs) runs it as a podman container's PID 1.
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build -q --release --target x86_64-unknown-linux-gnu --bin iocrun
export IOCRUN_STATIC_BIN=$PWD/target/x86_64-unknown-linux-gnu/release/iocrun

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --no-fail-fast 2>&1 | tee "$log" || status=$?
# cargo prints one `test result:` line per test binary (the last one is often the doc-tests
# binary with 0 tests); add them up so the closing line speaks for the whole suite.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "Summary: %d passed, %d failed\n", p, f }' "$log"
# the container test's images (one per run)
podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep '^localhost/iocrun-it:' |
  xargs -r podman rmi -f >/dev/null 2>&1 || true
exit "$status"
