#!/bin/bash
# Run the guest suite (docs/guest.rst): a TCG guest reading its virtio-blk
# disk from several iothreads at once, over a raw file and over the
# intellicache node.  Prints a last line "N passed, N failed[, N skipped]"
# and exits non-zero if any test failed.
#
#   tests/guest/run.sh [unittest arguments, e.g. -k Intellicache]
#
# IC_QEMU_BUILD selects QEMU's build directory (default build/qemu/build;
# build-asan-qemu/build for the ASan + UBSan build), IC_QEMU_SRC QEMU's
# source tree (default: src/ next to the build directory), whose python/
# directory holds QEMU's QMP library.  The guest's kernel and initramfs are
# made (or found up to date) by scripts/guest-image.sh in build/guest.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export IC_QEMU_BUILD=${IC_QEMU_BUILD:-$repo/build/qemu/build}
qemu_src=${IC_QEMU_SRC:-$(dirname "$IC_QEMU_BUILD")/src}
export IC_GUEST_DIR=${IC_GUEST_DIR:-$repo/build/guest}
export PYTHONPATH="$here:$qemu_src/python${PYTHONPATH:+:$PYTHONPATH}"
# Sanitizer builds: reports go to stderr (checked by the tests); leaks are
# reported at exit.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

if ! "$repo/scripts/guest-image.sh" --out "$IC_GUEST_DIR"; then
    echo "0 passed, 1 failed"
    exit 1
fi

log=$(mktemp "${TMPDIR:-/tmp}/ic-guest-XXXXXX.log")
trap 'rm -f "$log"' EXIT
cd "$repo" || exit 1
# The whole suite is bounded: a guest that hangs is killed by the tests'
# own timeouts, this is the last resort.
timeout -k 30 1800 /usr/bin/python3 -m unittest discover -s tests/guest -p 'test_*.py' \
    -v "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

passed=$(grep -cE ' \.\.\. (ok|expected failure)$' "$log")
failed=$(grep -cE ' \.\.\. (FAIL|ERROR|unexpected success)$' "$log")
skipped=$(grep -cE ' \.\.\. skipped ' "$log")
# A class whose setUpClass fails (the scenario itself failed) prints one
# line "setUpClass (module.Class) ... ERROR", counted above, and runs none
# of its tests.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
fi

line="$passed passed, $failed failed"
if [ "$skipped" -gt 0 ]; then
    line="$line, $skipped skipped"
fi
echo "$line"
[ "$failed" -eq 0 ]
