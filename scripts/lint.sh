#!/bin/bash
# Style and static checks: QEMU's checkpatch on the C glue, clang-format on
# the C++ core and its tests, clang-tidy and cppcheck on the core and on
# intellicache-ctl, docutils on the documentation.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
src=build/qemu/src
status=0

mapfile -t glue < <(git ls-files ':(glob)block/intellicache*.c' \
    ':(glob)block/intellicache*.h')
echo "lint: checkpatch (${#glue[@]} files: ${glue[*]})"
# checkpatch exits 0 on warnings; clean means no warnings either.
for f in "${glue[@]}"; do
    if ! out=$("$src/scripts/checkpatch.pl" --no-tree -q -f "$f") \
            || [ -n "$out" ]; then
        echo "$out"
        status=1
    fi
done

mapfile -t cxx < <(git ls-files 'block/intellicache/*.cpp' \
    'block/intellicache/*.hpp' 'block/intellicache/*.h' 'tests/unit/*.cpp' \
    'tests/fuzz/*.cpp' 'tests/fuzz/*.hpp' 'tools/ctl/*.cpp' 'tools/ctl/*.hpp' \
    'tests/unit/ctl/*.cpp' 'tests/unit/ctl/*.hpp')
echo "lint: clang-format (${#cxx[@]} files)"
if ! clang-format --dry-run --Werror "${cxx[@]}"; then
    status=1
fi

mapfile -t core < <(git ls-files 'block/intellicache/*.cpp')
echo "lint: clang-tidy (${#core[@]} files)"
if ! clang-tidy -p build --quiet --warnings-as-errors='*' "${core[@]}" \
        2>/dev/null; then
    status=1
fi
echo "lint: cppcheck (${#core[@]} files)"
if ! cppcheck --std=c++20 --language=c++ --quiet --error-exitcode=1 \
        --enable=warning,style,performance,portability --inline-suppr \
        -I block/intellicache "${core[@]}"; then
    status=1
fi

# intellicache-ctl (tools/ctl): its headers too.
mapfile -t ctl < <(git ls-files 'tools/ctl/*.cpp')
echo "lint: clang-tidy, cppcheck of intellicache-ctl (${#ctl[@]} files)"
if ! clang-tidy -p build --quiet --warnings-as-errors='*' \
        --header-filter='tools/ctl/.*\.hpp' "${ctl[@]}" 2>/dev/null; then
    status=1
fi
if ! cppcheck --std=c++20 --language=c++ --quiet --error-exitcode=1 \
        --enable=warning,style,performance,portability --inline-suppr \
        -I block/intellicache -I tools/ctl "${ctl[@]}"; then
    status=1
fi
# The documentation: reStructuredText that docutils reads without a
# warning (a malformed table renders as an error message).
mapfile -t docs < <(git ls-files 'README.rst' 'docs/*.rst')
echo "lint: docutils (${#docs[@]} files)"
for f in "${docs[@]}"; do
    if ! /usr/bin/python3 -m docutils --halt=warning --report=warning \
            "$f" /dev/null; then
        status=1
    fi
done
exit $status
