#!/bin/bash
# Install the systemd unit that runs qemu-storage-daemon with the
# intellicache module for the host (docs/libvirt.rst, "The systemd unit").
#
#   scripts/install-unit.sh [--destdir DIR] [--prefix DIR] [--qsd PATH]
#                           [--module-dir DIR] [--ctl PATH] [--no-reload]
#
#   --destdir DIR     install under DIR (a staging or test root; also
#                     $DESTDIR); the paths written into the unit are not
#                     prefixed with it
#   --prefix DIR      the unit goes to DIR/lib/systemd/system (default:
#                     /etc/systemd/system, the administrator's directory)
#   --qsd PATH        qemu-storage-daemon to run (default: this tree's
#                     build/qemu/build/storage-daemon/qemu-storage-daemon)
#   --module-dir DIR  where QEMU finds block-intellicache.so (default:
#                     this tree's build/qemu/build)
#   --ctl PATH        intellicache-ctl, which applies /etc/intellicache/
#                     host.json after each start when that file exists
#                     (default: this tree's build/tools/ctl/intellicache-ctl)
#   --no-reload       do not run 'systemctl daemon-reload' (it is never run
#                     with --destdir, nor when systemd is not running)
#
# Also installs the example host file as /etc/intellicache/host.json.example
# (docs/ctl.rst); /etc/intellicache/host.json itself, which the unit applies
# after each start, is the administrator's and never written.
#
# Prints the installed unit's path.  Enabling and starting it is left to
# the administrator: systemctl enable --now intellicache.service
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
destdir=${DESTDIR:-}
prefix=
qsd=$root/build/qemu/build/storage-daemon/qemu-storage-daemon
moddir=$root/build/qemu/build
ctl=$root/build/tools/ctl/intellicache-ctl
reload=yes
while [ $# -gt 0 ]; do
    case "$1" in
    --destdir) destdir=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --qsd) qsd=$2; shift 2 ;;
    --module-dir) moddir=$2; shift 2 ;;
    --ctl) ctl=$2; shift 2 ;;
    --no-reload) reload=no; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-unit: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

for p in "$qsd" "$moddir" "$ctl" "$prefix"; do
    case "$p" in
    ""|/*) ;;
    *) echo "install-unit: '$p' is not an absolute path" >&2; exit 2 ;;
    esac
done
# systemd unit files: no spaces or specifiers in the paths we write
for p in "$qsd" "$moddir" "$ctl" "$root"; do
    case "$p" in
    *[[:space:]%\\]*) echo "install-unit: unusable path for a unit: '$p'" >&2; exit 2 ;;
    esac
done
if [ ! -x "$qsd" ]; then
    echo "install-unit: warning: $qsd is not (yet) an executable" >&2
fi

if [ -n "$prefix" ]; then
    unitdir=$prefix/lib/systemd/system
else
    unitdir=/etc/systemd/system
fi
dest=$destdir$unitdir/intellicache.service
mkdir -p "$destdir$unitdir"
sed -e "s|@QSD@|$qsd|g" -e "s|@MODULE_DIR@|$moddir|g" -e "s|@DOCDIR@|$root/docs|g" \
    -e "s|@CTL@|$ctl|g" \
    "$root/scripts/systemd/intellicache.service.in" > "$dest.tmp"
if grep -q '@[A-Z_]*@' "$dest.tmp"; then
    echo "install-unit: unfilled placeholder in the unit" >&2
    rm -f "$dest.tmp"
    exit 1
fi
chmod 0644 "$dest.tmp"
mv "$dest.tmp" "$dest"

etc=$destdir/etc/intellicache
mkdir -p "$etc"
install -m 0644 "$root/scripts/systemd/host.json.example" "$etc/host.json.example"
if [ ! -e "$etc/host.json" ]; then
    echo "install-unit: $etc/host.json.example installed; copy it to" \
         "host.json and edit it for the unit to apply it" >&2
fi
echo "$dest"

if [ -z "$destdir" ] && [ "$reload" = yes ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
