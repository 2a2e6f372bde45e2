#!/bin/bash
# Build QEMU and the intellicache module with AddressSanitizer and
# UndefinedBehaviorSanitizer (in build-asan-qemu/, a few minutes the first
# time) and run the intellicache iotests against that build.
#
# ASan prints notices about QEMU's coroutine stacks ("ASan doesn't fully
# support makecontext/swapcontext", "False positive error reports may
# follow") into the daemons' output, which check reports as an output
# mismatch.  A test passes here if its output equals the reference once
# those notices are removed and no sanitizer error was printed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/build-qemu.sh --source-root . --build-root build-asan-qemu \
    --configure-args "--enable-asan --enable-ubsan" || exit 1
bld=$root/build-asan-qemu/build
export UBSAN_OPTIONS=print_stacktrace=1
IC_QEMU_BUILD=$bld scripts/run-iotests.sh "$@" >/dev/null 2>&1

# Remove each notice with its line break (they can follow unittest's dots).
strip_notices() {
    perl -0pe 's/==\d+==WARNING: ASan [^\n]*\n//g;
               s/False positive error reports may follow\n//g;
               s/For details see https:\S+sanitizers\S+\n//g' "$1"
}
passed=0
failed=0
for t in tests/qemu-iotests/tests/intellicache-*.out; do
    name=$(basename "$t" .out)
    bad=$bld/tests/qemu-iotests/scratch/raw-file-$name/$name.out.bad
    if [ ! -f "$bad" ]; then
        if [ -d "$bld/tests/qemu-iotests/scratch/raw-file-$name" ]; then
            echo "asan: $name pass"
            passed=$((passed + 1))
        fi
        continue
    fi
    if grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$bad" ||
       ! diff -q <(strip_notices "$bad") "$t" >/dev/null; then
        echo "asan: $name FAIL (see $bad)"
        failed=$((failed + 1))
    else
        echo "asan: $name pass (sanitizer notices only)"
        passed=$((passed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
