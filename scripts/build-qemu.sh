#!/bin/bash
# Fetch, verify, patch, configure and build QEMU with the intellicache module.
#
# Called by the top-level meson build (the 'qemu' target); safe to run by
# hand.  Every step is skipped when its result is up to date, so after a
# change to our sources only block-intellicache.so is rebuilt.
#
#   build-qemu.sh --source-root DIR --build-root DIR [--stamp FILE]
#                 [--configure-args "ARGS"]
#
# Layout under the build root:
#   download/  the orig tarball (checksum-verified)
#   src/       the extracted, patched QEMU tree (our sources symlinked in)
#   build/     QEMU's build directory (binaries and modules)
set -euo pipefail

src_root=
build_root=
stamp=
extra_configure=${IC_QEMU_CONFIGURE_ARGS:-}
while [ $# -gt 0 ]; do
    case "$1" in
    --source-root) src_root=$2; shift 2 ;;
    --build-root) build_root=$2; shift 2 ;;
    --stamp) stamp=$2; shift 2 ;;
    --configure-args) extra_configure=$2; shift 2 ;;
    *) echo "build-qemu: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
if [ -z "$src_root" ] || [ -z "$build_root" ]; then
    echo "build-qemu: --source-root and --build-root are required" >&2
    exit 2
fi
src_root=$(cd "$src_root" && pwd)
mkdir -p "$build_root"
build_root=$(cd "$build_root" && pwd)

# shellcheck source=../qemu/source.conf
. "$src_root/qemu/source.conf"

log() { echo "build-qemu: $*"; }

# 1. The pinned source tarball, verified.
dl="$build_root/download"
tarball="$dl/$QEMU_TARBALL"
mkdir -p "$dl"
if [ ! -f "$tarball" ]; then
    log "fetching Debian source package qemu=$QEMU_DEB_VERSION (orig tarball)"
    if ! (cd "$dl" && apt-get source --download-only --tar-only \
              "qemu=$QEMU_DEB_VERSION" >/dev/null); then
        echo "build-qemu: could not fetch qemu=$QEMU_DEB_VERSION;" \
             "run scripts/setup-deps.sh first (it adds the deb-src entry)" >&2
        exit 1
    fi
fi
if ! echo "$QEMU_SHA256  $tarball" | sha256sum --check --status; then
    echo "build-qemu: $tarball does not match sha256 $QEMU_SHA256;" \
         "removed it, run again to fetch it anew" >&2
    rm -f "$tarball"
    exit 1
fi

# 2. The patched source tree.  Re-extracted whenever the tarball or the
# patch series changes.
series_id=$( (echo "$QEMU_SHA256"; cat "$src_root"/qemu/patches/*.patch) |
             sha256sum | cut -d' ' -f1)
src="$build_root/src"
if [ "$(cat "$src/.intellicache-series" 2>/dev/null)" != "$series_id" ]; then
    log "extracting and patching QEMU $QEMU_VERSION"
    rm -rf "$src" "$build_root/build"
    mkdir -p "$src"
    tar -xJf "$tarball" -C "$src" --strip-components=1
    for p in "$src_root"/qemu/patches/*.patch; do
        log "applying $(basename "$p")"
        patch -d "$src" -p1 --batch --quiet < "$p"
    done
    echo "$series_id" > "$src/.intellicache-series"
fi
# Our sources stay in our tree; QEMU's build sees them through symlinks:
# every block/intellicache*.c and *.h (the glue and its private header;
# QEMU's block/meson.build, patched by 0002, lists the C files), the core
# in block/intellicache/, and the driver's QAPI schema, which
# qapi/block-core.json includes (0001).  A link whose file left our tree
# is removed first, so a renamed file is not left behind.
for l in "$src"/block/intellicache*; do
    if [ -L "$l" ] && [ ! -e "$l" ]; then
        rm -f "$l"
    fi
done
for f in "$src_root"/block/intellicache*.c "$src_root"/block/intellicache*.h; do
    [ -e "$f" ] || continue
    ln -sfn "$f" "$src/block/$(basename "$f")"
done
ln -sfn "$src_root/block/intellicache" "$src/block/intellicache"
ln -sfn "$src_root/qapi/intellicache.json" "$src/qapi/intellicache.json"
ln -sfn "$src_root/qemu/devices-x86_64.mak" \
    "$src/configs/devices/x86_64-softmmu/intellicache.mak"
mkdir -p "$src/tests/qemu-iotests/tests"
for t in "$src_root"/tests/qemu-iotests/tests/*; do
    [ -e "$t" ] || continue
    ln -sfn "$t" "$src/tests/qemu-iotests/tests/$(basename "$t")"
done

# 3. Configure (QEMU's meson regenerates itself when its inputs change).
# The tools, and the x86_64 system emulator for the TCG guest of
# tests/guest with only the devices that guest uses (qemu/devices-x86_64.mak;
# its firmware comes from Debian's packages, hence no blobs; x86_64 needs no
# libfdt; nothing is downloaded for a missing library; no D-Bus display).
# The arguments are recorded in the build directory: a build directory
# configured with other arguments (or by an older version of this script)
# is configured again.
bld="$build_root/build"
# shellcheck disable=SC2206
configure_args=(--python=/usr/bin/python3 --target-list=x86_64-softmmu
    --disable-user --enable-tools --enable-modules --enable-libnfs
    --disable-docs --enable-linux-aio --enable-linux-io-uring
    --disable-werror --disable-install-blobs --disable-fdt --disable-download
    --without-default-devices --with-devices-x86_64=intellicache
    --disable-dbus-display --audio-drv-list=
    $extra_configure)
configure_stamp="$bld/.intellicache-configure"
if [ ! -f "$bld/build.ninja" ] ||
   [ "$(cat "$configure_stamp" 2>/dev/null)" != "${configure_args[*]}" ]; then
    log "configuring"
    mkdir -p "$bld"
    rm -f "$configure_stamp"
    (cd "$bld" && "$src/configure" "${configure_args[@]}" \
        >"$build_root/configure.log" 2>&1) || {
        tail -n 30 "$build_root/configure.log" >&2
        echo "build-qemu: configure failed, see $build_root/configure.log" >&2
        exit 1
    }
    echo "${configure_args[*]}" > "$configure_stamp"
fi

# 4. Build what intellicache needs.
log "building"
ninja -C "$bld" storage-daemon/qemu-storage-daemon qemu-img qemu-io qemu-nbd \
    qemu-system-x86_64 block-nfs.so block-intellicache.so

if [ -n "$stamp" ]; then
    touch "$stamp"
fi
