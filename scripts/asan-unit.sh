#!/bin/bash
# The core's unit tests built with AddressSanitizer and
# UndefinedBehaviorSanitizer (in build-asan/), then run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan -Dqemu=disabled -Db_sanitize=address,undefined \
        -Db_lundef=false >/dev/null
fi
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
exec meson test -C build-asan --print-errorlogs
