# Shared by the bench scripts (source it after `cd` to the repository):
#   - IOCRUN_BIN: the binary under test (the release build unless already set);
#   - work: a scratch folder, and pids: background processes; both cleaned up on exit.
if [ -z "${IOCRUN_BIN:-}" ]; then
  cargo build --release -q
  IOCRUN_BIN=target/release/iocrun
fi
work=$(mktemp -d)
pids=()
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap bench_cleanup EXIT
