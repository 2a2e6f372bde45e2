# The devices of the x86_64 system emulator that intellicache builds.
#
# The emulator exists for one test, tests/guest: a TCG guest on the 'pc'
# machine (i440fx), its console on the ISA serial port the machine selects,
# and its disk a virtio-blk-pci device on the intellicache node.  QEMU is
# configured with --without-default-devices, so nothing else is compiled:
# the full default set doubles the emulator's build time for devices no
# test uses.  scripts/build-qemu.sh links this file into QEMU's
# configs/devices/x86_64-softmmu/ and passes --with-devices-x86_64.
CONFIG_I440FX=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
