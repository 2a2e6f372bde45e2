#!/bin/sh
# intellicache demo: NFS golden image read cold, then warm after a daemon
# restart, through qemu-storage-daemon + intellicache over NBD.  No
# arguments; IC_DEMO_SIZE (default 256M), IC_QEMU_BUILD and IC_QEMU_SRC
# are honoured.  See scripts/demo.py and docs/e2e.rst.
#
# Puts the harness package (tests/pylib) and QEMU's QMP library (python/
# of QEMU's source tree) on PYTHONPATH for demo.py.
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
qemu_build=${IC_QEMU_BUILD:-$repo/build/qemu/build}
qemu_src=${IC_QEMU_SRC:-$(dirname "$qemu_build")/src}
PYTHONPATH="$repo/tests/pylib:$qemu_src/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
exec /usr/bin/python3 "$here/demo.py" "$@"
