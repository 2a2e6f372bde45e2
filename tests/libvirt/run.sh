#!/bin/bash
# Run the libvirt suite (docs/libvirt.rst): a libvirt of its own defines
# and starts TCG domains whose disk is the intellicache node, served by
# qemu-storage-daemon over vhost-user-blk and over NBD; the domain XML and
# the daemon's command line come from docs/libvirt.rst.  Also verifies
# the systemd unit.  Prints a last line "N passed, N failed[, N skipped]"
# and exits non-zero if any test failed.
#
#   tests/libvirt/run.sh [unittest arguments, e.g. -k Nbd]
#
# IC_QEMU_BUILD selects QEMU's build directory (default build/qemu/build,
# for qemu-storage-daemon and the module), IC_QEMU_SRC QEMU's source tree
# (default: src/ next to the build directory), whose python/ directory
# holds QEMU's QMP library.  The guest's kernel and initramfs are made (or
# found up to date) by scripts/guest-image.sh in build/guest.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export IC_QEMU_BUILD=${IC_QEMU_BUILD:-$repo/build/qemu/build}
qemu_src=${IC_QEMU_SRC:-$(dirname "$IC_QEMU_BUILD")/src}
export IC_GUEST_DIR=${IC_GUEST_DIR:-$repo/build/guest}
export PYTHONPATH="$here:$repo/tests/pylib:$qemu_src/python${PYTHONPATH:+:$PYTHONPATH}"

if ! "$repo/scripts/guest-image.sh" --out "$IC_GUEST_DIR"; then
    echo "0 passed, 1 failed"
    exit 1
fi

# libvirt's QEMU driver resolves its default user, libvirt-qemu, even when
# qemu.conf says root; libvirt-daemon-system would create it, but that
# package is not installed (it replaces the machine's init).
if [ "$(id -u)" = 0 ] && ! getent passwd libvirt-qemu >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /var/lib/libvirt \
        --shell /usr/sbin/nologin libvirt-qemu
fi

log=$(mktemp "${TMPDIR:-/tmp}/ic-libvirt-XXXXXX.log")
trap 'rm -f "$log"' EXIT
cd "$repo" || exit 1
# The tests bound every wait; this is the last resort.
timeout -k 30 600 /usr/bin/python3 -m unittest discover -s tests/libvirt -p 'test_*.py' \
    -v "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

passed=$(grep -cE ' \.\.\. (ok|expected failure)$' "$log")
failed=$(grep -cE ' \.\.\. (FAIL|ERROR|unexpected success)$' "$log")
skipped=$(grep -cE ' \.\.\. skipped ' "$log")
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
fi

line="$passed passed, $failed failed"
if [ "$skipped" -gt 0 ]; then
    line="$line, $skipped skipped"
fi
echo "$line"
[ "$failed" -eq 0 ]
