#!/usr/bin/env bash
# Builds the libFuzzer targets over the core codecs and the table name reader, and runs each for a
# bounded time.
#
#   bash fuzz/run.sh [seconds-per-target]     (default 30)
#
# Needs clang with libFuzzer (Debian 12: apt-get install -y clang libclang-rt-14-dev) and
# libmsgpack-cxx-dev. Exits non-zero when a target crashes (the reproducer is left in the build dir).
# Each target also checks that re-encoding what it decoded is stable (encode(decode(encode(x))) ==
# encode(x)); PGADAPTER_FUZZ_ROUNDTRIP=0 turns that off and looks for crashes and sanitizer reports only.
set -euo pipefail
unset LD_PRELOAD ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS

SECONDS_PER_TARGET=${1:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
CXX=${FUZZ_CXX:-clang++}

command -v "$CXX" >/dev/null || { echo "fuzz: $CXX not found (apt-get install -y clang libclang-rt-14-dev)" >&2; exit 2; }
mkdir -p "$BUILD"

FLAGS=(-std=c++17 -g -O1 -fno-omit-frame-pointer
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I "$ROOT/binding" -DMSGPACK_NO_BOOST -DMSGPACK_DEFAULT_API_VERSION=3)

echo "fuzz: building with $CXX into $BUILD"
"$CXX" "${FLAGS[@]}" "$ROOT/fuzz/json_fuzz.cc" "$ROOT/binding/core/json_codec.cc" -o "$BUILD/json_fuzz"
"$CXX" "${FLAGS[@]}" "$ROOT/fuzz/msgpack_fuzz.cc" "$ROOT/binding/core/msgpack_codec.cc" \
  "$ROOT/binding/core/json_codec.cc" "$ROOT/binding/core/broadcast_relay.cc" "$ROOT/binding/core/utf8.cc" -o "$BUILD/msgpack_fuzz"
"$CXX" "${FLAGS[@]}" "$ROOT/fuzz/table_name_fuzz.cc" "$ROOT/binding/core/table_name.cc" -o "$BUILD/table_name_fuzz"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgadapter-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/json" "$WORK/msgpack" "$WORK/table_name"

# Seed corpus: a few valid cluster messages, as the pure-JS adapter writes them (JSON notifications,
# msgpack attachments), plus some edge cases.
(cd "$ROOT" && node - "$WORK" <<'JS'
const fs = require('fs');
const path = require('path');
const { encode } = require('@msgpack/msgpack');
const dir = process.argv[2];
const opts = { rooms: ['room1'], except: [], flags: {} };
const messages = [
  { uid: '0123456789abcdef', nsp: '/', type: 3, data: { packet: { type: 2, data: ['hello', 'world', 1, 2.5, null, true] }, opts } },
  { uid: 'abc', nsp: '/chat', type: 1 },
  { uid: 'abc', type: 2, attachmentId: '42' },
  { uid: 'abc', nsp: '/', type: 6, data: { requestId: 'r1', opts: { rooms: [], except: [], flags: {} } } },
  { uid: 'abc', nsp: '/', type: 3, data: { packet: { type: 2, data: ['unicode', 'héllo ☃ 😀', '\u0000\n"\\'] }, opts } },
  { a: [1, -1, 1e21, 1.5e-7, -0, 9007199254740991, 9007199254740993, { b: {} }, []] },
  { type: 3, data: { packet: { type: 2, data: ['ev', { data: { packet: 1 } }] }, packet: { data: [2] } }, uid: 'u' },
];
let n = 0;
for (const m of messages) fs.writeFileSync(path.join(dir, 'json', `seed${n++}`), JSON.stringify(m));
fs.writeFileSync(path.join(dir, 'json', `seed${n++}`), '[1,"\\ud83d\\ude00","\\ud800",{"x":{"x":[[[]]]}}]');
fs.writeFileSync(path.join(dir, 'json', `seed${n++}`), '{"data":{"packet":{"data": [ -0, 1e400 ] ,"data":[-1e-400]}}}');
const binary = [
  ...messages,
  { uid: 'abc', nsp: '/', type: 3, data: { packet: { type: 5, data: ['bin', new Uint8Array([1, 2, 3, 255])] }, opts } },
  { uid: 'abc', nsp: '/', type: 3, data: { packet: { type: 2, data: ['bin', new Uint8Array([1, 255]), { b: [new Uint8Array(0)], _x: 1 }] }, opts } },
  { when: new Date(1700000000123), old: new Date(-1), far: new Date(8640000000000000) },
  { big: 2 ** 60, neg: -(2 ** 40), f: 0.1, s: 'x'.repeat(300), arr: new Array(20).fill(7) },
  { type: 3, data: { packet: { type: 2, data: ['ev', 1.5, { 1: 'a', b: [null, '\u2028\ud800'] }] }, opts }, uid: 'u', nsp: '/' },
];
n = 0;
for (const m of binary) fs.writeFileSync(path.join(dir, 'msgpack', `seed${n++}`), encode(m));
n = 0;
for (const name of ['socket_io_attachments', 'public.Events', '"My Schema"."My ""Table"""', ' a . "b.c" . d ', '"x', 'a..b'])
  fs.writeFileSync(path.join(dir, 'table_name', `seed${n++}`), name);
JS
)

status=0
for target in json msgpack table_name; do
  echo "fuzz: running ${target}_fuzz for ${SECONDS_PER_TARGET}s"
  mkdir -p "$WORK/$target-corpus"
  if ! (cd "$BUILD" && "./${target}_fuzz" -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -timeout=10 \
          -rss_limit_mb=2048 -print_final_stats=1 "$WORK/$target-corpus" "$WORK/$target" 2>&1 \
          | tee "$BUILD/${target}_fuzz.log" | grep -E '^#[0-9]+ +DONE|^(stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY|==[0-9]+==|runtime error|round trip|rejects' ; exit "${PIPESTATUS[0]}"); then
    echo "fuzz: ${target}_fuzz FAILED (log: $BUILD/${target}_fuzz.log, reproducer: $BUILD/crash-*)" >&2
    status=1
  else
    echo "fuzz: ${target}_fuzz ok ($(ls "$WORK/$target-corpus" | wc -l) corpus entries)"
  fi
done
exit $status
