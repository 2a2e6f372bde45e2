#!/bin/bash
# Build the core's libFuzzer targets with clang (AddressSanitizer and
# UndefinedBehaviorSanitizer) in build-fuzz/ and run each for a bounded time.
#
#   scripts/fuzz.sh [--seconds N]     # default 20 per target (CI)
#   scripts/fuzz.sh --seconds 3600    # a long run
#
# Crashes are written to build-fuzz/artifacts/ and fail the run; each one
# found becomes a regression test in tests/unit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

seconds=20
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    *) echo "fuzz: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

san=-fsanitize=address,undefined
if [ ! -f build-fuzz/build.ninja ]; then
    # The core is instrumented for coverage; the targets link libFuzzer.
    CC=clang CXX=clang++ meson setup build-fuzz -Dqemu=disabled \
        -Dtests=disabled -Dfuzz=enabled -Db_lundef=false \
        -Dcpp_args="-fsanitize=fuzzer-no-link $san" \
        -Dcpp_link_args="$san" >/dev/null
fi
ninja -C build-fuzz >/dev/null

mkdir -p build-fuzz/artifacts
status=0
for target in fuzz_meta_decoder fuzz_planner; do
    corpus=build-fuzz/corpus/$target
    mkdir -p "$corpus"
    echo "fuzz: $target for ${seconds}s"
    if ! "build-fuzz/tests/fuzz/$target" -max_total_time="$seconds" \
            -max_len=65536 -print_final_stats=1 \
            -artifact_prefix=build-fuzz/artifacts/"$target"- \
            "$corpus" tests/fuzz/corpus/"$target" \
            2> "build-fuzz/$target.log"; then
        tail -n 30 "build-fuzz/$target.log"
        status=1
    fi
    grep -E '^stat::number_of_executed_units|^Done' "build-fuzz/$target.log" |
        sed "s/^/fuzz: $target: /"
done
exit $status
