#!/usr/bin/env bash
# The whole test suite: the core's C++ unit tests (plain CMake build, no Node), then the Jest suites
# against a throwaway PostgreSQL started by the Jest global setup.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-native -G Ninja -DCMAKE_BUILD_TYPE=Release -DPGADAPTER_NATIVE_TESTS=ON >/dev/null
cmake --build build-native
for t in build-native/*_test; do
  echo "== $t"
  "$t"
done
exec node node_modules/.bin/jest --runInBand "$@"
