#!/bin/bash
# Take a fresh Debian 12 machine to a working intellicache build, then run
# the demo: a local NFS server, a generated base image, qemu-storage-daemon
# with the intellicache filter, a cold and a warm read, the result printed.
#
#   sudo scripts/setup.sh            # everything, then the demo
#   sudo scripts/setup.sh --no-demo  # install and build only
set -euo pipefail
cd "$(dirname "$0")/.."

demo=yes
for a in "$@"; do
    case "$a" in
    --no-demo) demo=no ;;
    *) echo "setup: unknown argument '$a'" >&2; exit 2 ;;
    esac
done

scripts/setup-deps.sh
scripts/build.sh
if [ "$demo" = yes ]; then
    scripts/demo.sh
fi
