#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs every test dependency, then runs
# fmt, clippy and all tests (unit, integration, conformance against ../shared).
# Ends with one summary line over every test binary, `Summary: N passed, M failed, K skipped`
# (CI parses it), after the reasons of the skipped tests, grouped. A test that cannot run here
# (a tool or ../shared missing) records why through util::skip in $IOCRUN_SKIP_LOG; cargo
# counts it as passed, so it is moved from passed to skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh >/dev/null
# shellcheck disable=SC1091
source "${IOCRUN_TOOLS:-$HOME/.cache/iocrun/tools}/env.sh"
cargo fmt --check
cargo clippy --all-targets -q -- -D warnings

# The static binary images ship; the container test (tests/it/container.rs) runs it as a
# podman container's PID 1.
IOCRUN_STATIC_BIN=$PWD/$(bash scripts/build-static.sh)
export IOCRUN_STATIC_BIN

log=$(mktemp)
export IOCRUN_SKIP_LOG
IOCRUN_SKIP_LOG=$(mktemp)
trap 'rm -f "$log" "$IOCRUN_SKIP_LOG"' EXIT
status=0
cargo test --no-fail-fast 2>&1 | tee "$log" || status=$?
# cargo prints one `test result:` line per test binary (the last one is often the doc-tests
# binary with 0 tests); add them up so the closing line speaks for the whole suite. A test
# that recorded several reasons is one skipped test.
awk -v skiplog="$IOCRUN_SKIP_LOG" '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END {
    while ((getline line < skiplog) > 0) {
      split(line, parts, ": "); name = parts[1]; reason = substr(line, length(name) + 3)
      if (!(name in skipped)) { skipped[name] = 1; k++ }
      if (!((reason, name) in seen)) { seen[reason, name] = 1; by[reason] = by[reason] (by[reason] == "" ? "" : ", ") name }
    }
    if (k > 0) { print "Skipped tests, by reason:"; for (r in by) printf "  %s: %s\n", r, by[r] }
    printf "Summary: %d passed, %d failed, %d skipped\n", p - k, f, k
  }' "$log"
# the container test's images (one per run)
podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep '^localhost/iocrun-it:' |
  xargs -r podman rmi -f >/dev/null 2>&1 || true
exit "$status"
