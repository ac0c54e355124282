#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs every test dependency, then runs
# fmt, clippy and all tests (unit, integration, conformance against ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh >/dev/null
# shellcheck disable=SC1091
source "${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}/env.sh"
cargo fmt --check
cargo clippy --all-targets -q -- -D warnings
cargo test --no-fail-fast 2>&1
