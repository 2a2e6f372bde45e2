#!/bin/bash
# Run every test of intellicache, building first if needed:
#   unit     GoogleTest tests of the C++ core, also under ASan + UBSan
#   fuzz     libFuzzer targets of the core, 20 s each
#   iotests  qemu-iotests of the driver, run by QEMU's 'check', also
#            against a build of QEMU and the module with ASan + UBSan
#   e2e      end to end against real servers (nfs-ganesha, nbdkit, NBD clients)
#   guest    a TCG guest whose virtio-blk disk is the node, read from two
#            iothreads at once while QMP queries run; also against the
#            ASan + UBSan build
#   libvirt  a libvirt of its own starts TCG domains whose disk is the node,
#            over vhost-user-blk and over NBD (docs/libvirt.rst's XML);
#            verifies the systemd unit
#   bench    the benchmark harness in --smoke mode: that it still runs end
#            to end and writes its report (nothing timed is asserted)
#   lint     checkpatch, clang-format, clang-tidy, cppcheck
# Ends with one line "N passed, N failed" counting individual tests.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

start=$SECONDS
scripts/build.sh || { echo "0 passed, 1 failed"; exit 1; }
echo "=== build: $((SECONDS - start)) s"

passed=0
failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# Each suite's output is kept for counting; its wall time is printed after
# it, and all of them again at the end, so a slow run shows where it went.
times=
suite() {
    local name=$1 start rc
    shift
    echo "=== $name: $*"
    start=$SECONDS
    "$@" 2>&1 | tee "$log/$name"
    rc=${PIPESTATUS[0]}
    echo "=== $name: $((SECONDS - start)) s"
    times="$times $name=$((SECONDS - start))s"
    return "$rc"
}

# A meson test suite: meson prints "Ok: N" and "Fail: N".
meson_suite() {
    local name=$1 rc ok bad
    shift
    suite "$name" "$@"
    rc=$?
    ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log/$name" | tail -n1)
    bad=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$log/$name" | tail -n1)
    passed=$((passed + ${ok:-0}))
    failed=$((failed + ${bad:-0}))
    if [ $rc -ne 0 ] && [ "${bad:-0}" -eq 0 ]; then
        failed=$((failed + 1))
    fi
}

meson_suite unit meson test -C build --print-errorlogs
# again under AddressSanitizer + UndefinedBehaviorSanitizer
meson_suite unit-asan scripts/asan-unit.sh

# fuzz: a bounded libFuzzer run of each target (one test each)
if suite fuzz scripts/fuzz.sh --seconds 20; then
    passed=$((passed + 2))
else
    failed=$((failed + 1))
fi

# iotests: check prints one line per test with its result, "pass", "fail"
# or "not run", followed by its times in brackets
suite iotests scripts/run-iotests.sh
rc=$?
ok=$(grep -cE '[[:space:]]pass[[:space:]]+\[' "$log/iotests")
bad=$(grep -cE '[[:space:]]fail[[:space:]]+\[' "$log/iotests")
passed=$((passed + ok))
failed=$((failed + bad))
[ $rc -ne 0 ] && [ "$bad" -eq 0 ] && failed=$((failed + 1))

# A suite whose runner ends with a line "N passed, N failed".
summary_suite() {
    local name=$1 rc line ok=0 bad=0
    shift
    suite "$name" "$@"
    rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log/$name" | tail -n1)
    if [ -n "$line" ]; then
        ok=$(echo "$line" | cut -d' ' -f1)
        bad=$(echo "$line" | cut -d' ' -f3)
    fi
    passed=$((passed + ok))
    failed=$((failed + bad))
    if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then
        failed=$((failed + 1))
    fi
}

# iotests again, against QEMU and the module built with ASan + UBSan
summary_suite iotests-asan scripts/asan-iotests.sh
summary_suite e2e tests/e2e/run.sh
summary_suite guest tests/guest/run.sh
# asan-iotests.sh built QEMU and the module with the sanitizers
summary_suite guest-asan env IC_QEMU_BUILD="$root/build-asan-qemu/build" \
    tests/guest/run.sh
summary_suite libvirt tests/libvirt/run.sh

# bench: one test; the harness's figures are not checked here
if suite bench python3 scripts/bench.py --smoke \
        --baseline docs/benchmarks/results.json; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi

# lint: one test
if suite lint scripts/lint.sh; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi

echo "=== times:$times"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
