#!/usr/bin/env bash
# Builds memcreep and runs the whole test suite on a fresh Debian 12 machine
# (installing what is missing): the normal build with -Werror, then the
# same tests built with AddressSanitizer and UndefinedBehaviorSanitizer
# (all but the preloaded library, which must not carry a sanitizer runtime
# into its targets), then the formatting check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
jobs=$(nproc)

echo "== build (RelWithDebInfo, -Werror)"
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMC_WERROR=ON >/dev/null
cmake --build build/test -j"$jobs" >/dev/null
echo "== build (ASan + UBSan)"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DMC_WERROR=ON -DMC_SANITIZE=ON >/dev/null
cmake --build build/asan -j"$jobs" >/dev/null

echo "== format check"
files=$(git ls-files '*.c' '*.h' '*.cc' 2>/dev/null || find src include tests bench demo -name '*.[ch]' -o -name '*.cc')
clang-format --dry-run --Werror $files

echo "== tests (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir build/asan --output-on-failure -j"$jobs"
echo "== tests"
ctest --test-dir build/test --output-on-failure -j"$jobs"
