#!/usr/bin/env bash
# Runs the whole Jest suite against an AddressSanitizer build of the addon.
#
#   npm run test:asan                 (or: bash scripts/test-asan.sh [extra jest args])
#
# Builds the addon into build-asan/ (cmake-js, -DPGADAPTER_ASAN=ON), then runs Jest in band with libasan
# preloaded into node (an ASan-instrumented addon needs the ASan runtime to come first). Leak detection is
# off: under Jest, LSan reports V8's and Jest's own allocations. The throwaway PostgreSQL started by the
# tests does not inherit the preload (test/helpers/pg-tmp.sh unsets LD_PRELOAD and ASAN_OPTIONS).
# Exits non-zero if the build fails, a test fails, or ASan reports an error (which aborts the process).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
echo "test:asan: building the addon with AddressSanitizer into $BUILD_DIR"
./node_modules/.bin/cmake-js compile -O "$BUILD_DIR" --CDPGADAPTER_ASAN=ON

BINARY="$ROOT/$BUILD_DIR/Release/pgadapter.node"
[[ -f "$BINARY" ]] || { echo "test:asan: $BINARY was not built" >&2; exit 1; }
if [[ $(nm -D "$BINARY" 2>/dev/null | grep -c '__asan_' || true) -eq 0 ]]; then
  echo "test:asan: $BINARY is not instrumented (was $BUILD_DIR configured without PGADAPTER_ASAN? remove it and retry)" >&2
  exit 1
fi

LIBASAN=$(g++ -print-file-name=libasan.so)
[[ -f "$LIBASAN" ]] || { echo "test:asan: libasan not found ($LIBASAN); install g++ (libasan8)" >&2; exit 1; }

# ASan's redzones make each frame of the message converter's recursion about 3 KB (under 700 bytes in a normal
# build), so 512 levels of nesting (the limit the suite tests) would pass V8's default stack limit (about 984 KB)
# before our own depth check: V8's limit is raised to 4 MB, within the main thread's stack (ulimit -s, 8 MB).
STACK_KB=4000
if [[ $(ulimit -s) != unlimited && $(ulimit -s) -lt 8192 ]]; then
  echo "test:asan: the stack limit (ulimit -s) is $(ulimit -s) KB; 8192 or more is needed" >&2
  exit 1
fi

LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pgadapter-asan.XXXXXX")
echo "test:asan: running Jest with $LIBASAN preloaded (ASan reports also go to $LOG_DIR)"
status=0
LD_PRELOAD="$LIBASAN" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$LOG_DIR/asan:${ASAN_EXTRA_OPTIONS:-}" \
PGADAPTER_BINARY="$BINARY" \
  timeout "${ASAN_TIMEOUT:-1800}" node --stack-size=$STACK_KB node_modules/.bin/jest --runInBand "$@" || status=$?

if compgen -G "$LOG_DIR/asan*" >/dev/null; then
  echo "test:asan: AddressSanitizer reported errors:" >&2
  cat "$LOG_DIR"/asan* >&2
  [[ $status -eq 0 ]] && status=1
else
  rm -rf "$LOG_DIR"
fi
exit $status
