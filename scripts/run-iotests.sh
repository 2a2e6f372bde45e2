#!/bin/bash
# Run intellicache's qemu-iotests (tests/qemu-iotests/tests/intellicache-*)
# with QEMU's own harness, 'check', against our QEMU build.
#
#   scripts/run-iotests.sh [check arguments, e.g. a test name]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bld=${IC_QEMU_BUILD:-$root/build/qemu/build}

if [ ! -x "$bld/storage-daemon/qemu-storage-daemon" ]; then
    echo "run-iotests: no QEMU build in $bld; run scripts/build.sh first" >&2
    exit 1
fi
# check wants a system emulator even for tests that never start one; the
# tests here only use qemu-storage-daemon, qemu-img and qemu-io.  Ours is
# built with the module.
export QEMU_PROG=${QEMU_PROG:-$bld/qemu-system-x86_64}
export QEMU_MODULE_DIR=$bld
cd "$bld/tests/qemu-iotests"
if [ $# -eq 0 ]; then
    set -- -g intellicache
fi
exec ./check -raw "$@"
