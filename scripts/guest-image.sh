#!/bin/bash
# Build the tiny guest of tests/guest: a Debian 6.1 kernel and a
# busybox-static initramfs whose init (tests/guest/init) loads the virtio
# modules and reads the virtio disk on command.
#
#   scripts/guest-image.sh [--out DIR]      (default: build/guest)
#
# The kernel comes from Debian's linux-image-*-amd64 package, fetched once
# with 'apt-get download' into DIR/cache/ (the package that
# linux-image-amd64 depends on, unless IC_GUEST_KERNEL_PKG names one; a
# package already in the cache is reused without asking apt).  busybox is
# the host's static one (package busybox-static, scripts/setup-deps.sh).
#
# Results, rebuilt only when an input changed:
#   DIR/vmlinuz           the kernel
#   DIR/initramfs.gz      busybox, tests/guest/init, the virtio modules
#   DIR/kernel-release    e.g. 6.1.0-57-amd64
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/build/guest
while [ $# -gt 0 ]; do
    case "$1" in
    --out) out=$2; shift 2 ;;
    *) echo "guest-image: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
mkdir -p "$out/cache"
out=$(cd "$out" && pwd)
log() { echo "guest-image: $*"; }

init=$root/tests/guest/init
busybox=/bin/busybox
# Static: ldd fails on a static executable ("not a dynamic executable").
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
    echo "guest-image: $busybox is not a static busybox;" \
         "install busybox-static (scripts/setup-deps.sh)" >&2
    exit 1
fi
for p in cpio gzip dpkg-deb; do
    if ! command -v "$p" >/dev/null; then
        echo "guest-image: $p is missing (scripts/setup-deps.sh)" >&2
        exit 1
    fi
done

# 1. The kernel package.
deb=
if [ -n "${IC_GUEST_KERNEL_PKG:-}" ]; then
    deb=$(ls "$out"/cache/"${IC_GUEST_KERNEL_PKG}"_*_amd64.deb 2>/dev/null | tail -n1 || true)
    pkg=$IC_GUEST_KERNEL_PKG
else
    deb=$(ls "$out"/cache/linux-image-6.1*-amd64_*_amd64.deb 2>/dev/null | sort -V |
          tail -n1 || true)
    pkg=
fi
if [ -z "$deb" ]; then
    if [ -z "$pkg" ]; then
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
              sed -n 's/^ *Depends: \(linux-image-6\.1[^ ]*-amd64\)$/\1/p' | head -n1)
        if [ -z "$pkg" ]; then
            echo "guest-image: apt knows no linux-image-6.1*-amd64 behind" \
                 "linux-image-amd64 (apt-get update?)" >&2
            exit 1
        fi
    fi
    log "fetching $pkg"
    (cd "$out/cache" && apt-get download "$pkg" >/dev/null 2>&1) || {
        echo "guest-image: apt-get download $pkg failed" >&2
        exit 1
    }
    deb=$(ls "$out"/cache/"$pkg"_*_amd64.deb | tail -n1)
fi

# 2. Rebuild only when the kernel package, busybox or init changed.
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
virtio_pci virtio_blk"
inputs_id=$( (basename "$deb"; sha256sum "$busybox" "$init" "$0" | cut -d' ' -f1;
              echo "$modules") | sha256sum | cut -d' ' -f1)
if [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.gz" ] &&
   [ "$(cat "$out/.inputs" 2>/dev/null)" = "$inputs_id" ]; then
    log "up to date ($(cat "$out/kernel-release"))"
    exit 0
fi
rm -f "$out/.inputs"

work=$out/work
rm -rf "$work"
mkdir -p "$work/pkg"
dpkg-deb -x "$deb" "$work/pkg"
vmlinuz=$(ls "$work"/pkg/boot/vmlinuz-* | head -n1)
release=${vmlinuz##*/vmlinuz-}
moddir=$work/pkg/lib/modules/$release

# 3. The initramfs: busybox (applets linked by init), init, the modules in
# load order.  The order above is checked against each module's own
# 'depends=' list (its .modinfo section; the package has no modules.dep).
rd=$work/rd
mkdir -p "$rd"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,modules}
cp "$busybox" "$rd/bin/busybox"
cp "$init" "$rd/init"
chmod 755 "$rd/init" "$rd/bin/busybox"
ln -s busybox "$rd/bin/sh"
loaded=" "
for m in $modules; do
    ko=$(find "$moddir/kernel" -name "$m.ko" -o -name "$m.ko.xz" | head -n1)
    if [ -z "$ko" ]; then
        echo "guest-image: module $m not in $(basename "$deb")" >&2
        exit 1
    fi
    case "$ko" in
    *.xz) xz -dc "$ko" > "$rd/modules/$m.ko" ;;
    *) cp "$ko" "$rd/modules/$m.ko" ;;
    esac
    deps=$(grep -a -o 'depends=[^[:cntrl:]]*' "$rd/modules/$m.ko" | head -n1 |
           sed 's/^depends=//; s/,/ /g')
    for d in $deps; do
        case "$loaded" in
        *" $d "*) ;;
        *) echo "guest-image: $m needs $d, which is not loaded before it" >&2
           exit 1 ;;
        esac
    done
    loaded="$loaded$m "
    echo "$m" >> "$rd/modules/order"
done
(cd "$rd" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
    gzip -9 > "$work/initramfs.gz"

mv "$work/initramfs.gz" "$out/initramfs.gz"
cp "$vmlinuz" "$out/vmlinuz"
echo "$release" > "$out/kernel-release"
rm -rf "$work"
echo "$inputs_id" > "$out/.inputs"
log "kernel $release, initramfs $(stat -c %s "$out/initramfs.gz") bytes in $out"
