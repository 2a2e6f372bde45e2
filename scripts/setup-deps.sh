#!/bin/bash
# Install everything intellicache needs on Debian 12 (bookworm), as root.
#
# bookworm-backports (meson >= 1.5, python3-pycotap, qemu-system-x86 for
# qemu-iotests) and deb-src (QEMU's source package) come from the same mirror
# as the machine's existing apt entry: we derive the extra entry from it so no
# host name is written anywhere by this project.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "setup-deps: must run as root (apt-get install)" >&2
    exit 1
fi

src=/etc/apt/sources.list.d/debian.sources
extra=/etc/apt/sources.list.d/intellicache-backports.sources
if [ ! -f "$extra" ]; then
    if [ ! -f "$src" ]; then
        echo "setup-deps: $src not found; need a deb822 Debian entry to derive from" >&2
        exit 1
    fi
    # First stanza of the existing entry (the main archive), with suite and
    # types replaced.
    awk 'BEGIN { RS=""; ORS="\n\n" } NR == 1 { print; exit }' "$src" |
        sed -e 's/^Types:.*/Types: deb deb-src/' \
            -e 's/^Suites:.*/Suites: bookworm-backports/' > "$extra.tmp"
    mv "$extra.tmp" "$extra"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q

# Build tools and libraries for QEMU and the core.
pkgs_build="build-essential pkg-config ninja-build flex bison python3 python3-venv
  libglib2.0-dev libnfs-dev libaio-dev liburing-dev libzstd-dev zlib1g-dev
  libfuse3-dev libjson-c-dev libgtest-dev libgmock-dev dpkg-dev xz-utils
  clang clang-format clang-tidy cppcheck libclang-rt-14-dev valgrind
  libcpp-httplib-dev libnbd-dev"
# Servers and clients for the tests and the demo (all used on loopback);
# iproute2 and nftables for the outage tests' network namespaces and their
# blackhole (tests/e2e/test_outage_e2e.py); docutils checks the docs' markup
# (scripts/lint.sh).
pkgs_test="nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils nbdkit fio
  libnbd-bin python3-pycotap python3-matplotlib iproute2 nftables
  python3-docutils"
# promtool, which checks intellicache-ctl's metrics (tests/e2e/test_ctl_e2e.py).
# Without recommends: the package's recommends pull in node_exporter and
# its collectors, which the tests do not use.
pkgs_test="$pkgs_test prometheus"
# The TCG guest of tests/guest: busybox-static and cpio make its initramfs
# (scripts/guest-image.sh; its kernel is fetched with 'apt-get download'
# into build/guest/cache, not installed); its firmware is seabios and
# qemu-system-data's option ROMs, which qemu-system-x86 below depends on.
pkgs_guest="busybox-static cpio"
# tests/libvirt: libvirtd with its QEMU driver, virsh, virt-xml-validate
# (which runs xmllint).  Not libvirt-daemon-system: it pulls in
# systemd-sysv, which replaces the machine's init; the test runs a libvirtd
# of its own.
pkgs_libvirt="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxml2-utils"

# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $pkgs_build $pkgs_test $pkgs_guest \
    $pkgs_libvirt
apt-get install -y -q --no-install-recommends -t bookworm-backports \
    meson python3-pycotap qemu-system-x86

# libvirt's QEMU driver needs its default user to exist even when
# qemu.conf runs QEMU as root (libvirt-daemon-system would create it).
if ! getent passwd libvirt-qemu >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /var/lib/libvirt \
        --shell /usr/sbin/nologin libvirt-qemu
fi
