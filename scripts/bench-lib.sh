# Shared by the bench scripts (source it after `cd` to the repository):
#   - IOCRUN_BIN: the binary under test, unless already set the one images ship
#     (scripts/build-static.sh: no dynamic loader at start);
#   - work: a scratch folder, and pids: background processes; both cleaned up on exit.
if [ -z "${IOCRUN_BIN:-}" ]; then
  IOCRUN_BIN=$(bash scripts/build-static.sh)
fi
# how the binary under test is linked, for the benches' closing lines
bench_linkage() {
  if ldd "$1" 2>&1 | grep -qE 'statically linked|not a dynamic'; then echo static; else echo dynamic; fi
}
work=$(mktemp -d)
pids=()
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap bench_cleanup EXIT
