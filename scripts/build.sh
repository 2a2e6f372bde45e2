#!/bin/bash
# Configure (once) and build everything: the core, its unit tests, and QEMU
# with the intellicache module, in ./build.  Incremental after the first run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f build/build.ninja ]; then
    meson setup build
fi
ninja -C build
