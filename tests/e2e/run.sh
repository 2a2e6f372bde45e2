#!/bin/bash
# Run the end-to-end suite (real nfs-ganesha, nbdkit, qemu-storage-daemon,
# nbdcopy, fio on loopback) and print a last line "N passed, N failed[, N
# skipped]".  Exits non-zero if any test failed or errored.
#
#   tests/e2e/run.sh [unittest discover arguments, e.g. -k restart]
#
# IC_QEMU_BUILD selects QEMU's build directory (default build/qemu/build),
# IC_QEMU_SRC QEMU's source tree (default: src/ next to the build
# directory), whose python/ directory holds QEMU's QMP library.
#
# The tests import the harness package intellicache_harness (tests/pylib)
# and QEMU's qemu.qmp; this script puts both on PYTHONPATH (docs/e2e.rst).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
qemu_build=${IC_QEMU_BUILD:-$repo/build/qemu/build}
qemu_src=${IC_QEMU_SRC:-$(dirname "$qemu_build")/src}
export PYTHONPATH="$repo/tests/pylib:$qemu_src/python${PYTHONPATH:+:$PYTHONPATH}"
log=$(mktemp "${TMPDIR:-/tmp}/ic-e2e-XXXXXX.log")
trap 'rm -f "$log"' EXIT

cd "$repo" || exit 1
/usr/bin/python3 -m unittest discover -s tests/e2e -p 'test_*.py' -v "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# unittest -v prints one line per test ending in "... ok", "... FAIL",
# "... ERROR", "... skipped '<reason>'", "... expected failure" or
# "... unexpected success"; a class whose setUpClass fails or skips gets one
# line "setUpClass (module.Class) ... ERROR" or "... skipped '<reason>'".
passed=$(grep -cE ' \.\.\. (ok|expected failure)$' "$log")
failed=$(grep -cE ' \.\.\. (FAIL|ERROR|unexpected success)$' "$log")
skipped=$(grep -cE ' \.\.\. skipped ' "$log")
class_skipped=$(grep -cE '^setUpClass \(.*\) \.\.\. skipped ' "$log")

line="$passed passed, $failed failed"
if [ "$skipped" -gt 0 ]; then
    line="$line, $skipped skipped"
fi
echo "$line"
if [ "$class_skipped" -gt 0 ]; then
    echo "note: $class_skipped test class(es) skipped as a whole (see above)" >&2
fi

if [ "$status" -ne 0 ] || [ "$failed" -gt 0 ]; then
    exit 1
fi
exit 0
