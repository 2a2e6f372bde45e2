#!/bin/sh
# intellicache demo: NFS golden image read cold, then warm after a daemon
# restart, through qemu-storage-daemon + intellicache over NBD.  No
# arguments; IC_DEMO_SIZE (default 256M) and IC_QEMU_BUILD are honoured.
# See scripts/demo.py and docs/e2e.rst.
exec /usr/bin/python3 "$(dirname "$0")/demo.py" "$@"
