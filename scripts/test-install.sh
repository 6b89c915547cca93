#!/usr/bin/env bash
# Installs the package as a user would and checks what they see (CI runs it; needs root or unshare -r).
#
#   bash scripts/test-install.sh
#
# 1. `npm pack` (prepack builds the prebuilt binary). Prints the tarball size.
# 2. Bare machine: in a private mount namespace where cmake, the compilers, make/ninja, pkg-config,
#    pg_config and the libpq, msgpack and Node headers are hidden, a fresh consumer project installs
#    `socket.io pg socket.io-adapter socket.io-client <tarball>` from the npm cache; the install must not
#    build, and a two-server broadcast (small, 20 KB, Buffer) must pass against a throwaway PostgreSQL.
#    Then, still bare: without libpq.so.5 the require fails with one line naming libpq5; without the
#    prebuilt folder the require fails with one line naming `npm rebuild`, and that rebuild fails with
#    one line naming the packages and the apt-get command.
# 3. Source fallback: a tarball without the prebuilt folder, toolchain present. With --ignore-scripts the
#    require fails with one line naming `npm rebuild`; a normal install builds from source, leaves only
#    build/Release/pgadapter.node, and the broadcast passes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKG=socket.io-postgres-native
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgadapter-install.XXXXXX")
PGDIR=""
cleanup() {
  [[ -n "$PGDIR" ]] && bash "$ROOT/test/helpers/pg-tmp.sh" stop "$PGDIR" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "test-install: FAIL: $*" >&2; exit 1; }
say() { echo "test-install: $*"; }

# --- 1. pack -------------------------------------------------------------------------------------
(cd "$ROOT" && npm pack --silent --pack-destination "$WORK" >/dev/null)
TARBALL=$(ls "$WORK"/$PKG-*.tgz)
FILES=$(tar tzf "$TARBALL")
grep -qx "package/prebuilds/linux-x64/pgadapter.napi.glibc.node" <<<"$FILES" || fail "the tarball has no prebuilt binary"
say "tarball $(basename "$TARBALL"): $(stat -c %s "$TARBALL") bytes, $(wc -l <<<"$FILES") files"

eval "$(bash "$ROOT/test/helpers/pg-tmp.sh" start)"
PGDIR=$PGTMP_DIR
export DATABASE_URL

new_consumer() {
  mkdir -p "$1"
  (cd "$1" && npm init -y >/dev/null && cp "$ROOT/scripts/install-test/broadcast.js" .)
}

# --- 2. bare machine -----------------------------------------------------------------------------
new_consumer "$WORK/bare"
UNSHARE=(unshare --mount)
[[ $(id -u) -eq 0 ]] || UNSHARE=(unshare --mount --map-root-user)
"${UNSHARE[@]}" bash -s "$WORK" "$TARBALL" "$PKG" <<'BARE'
set -euo pipefail
WORK=$1 TARBALL=$2 PKG=$3
fail() { echo "test-install: FAIL (bare): $*" >&2; exit 1; }
say() { echo "test-install (bare): $*"; }
mount --make-rprivate /
EMPTY_FILE=$WORK/empty-file EMPTY_DIR=$WORK/empty-dir
: >"$EMPTY_FILE"; chmod 644 "$EMPTY_FILE"; mkdir -p "$EMPTY_DIR"
# The first executable named $1 on PATH (bash's `command -v` also reports non-executable files).
find_exe() {
  local dir
  IFS=: read -ra dirs <<<"$PATH"
  for dir in "${dirs[@]}"; do [[ -f $dir/$1 && -x $dir/$1 ]] && { echo "$dir/$1"; return 0; }; done
  return 1
}
# Hide every program of the toolchain: bind a non-executable empty file over each one PATH finds.
for tool in cmake make gmake ninja pkg-config pkgconf pg_config cc c++ gcc g++ cpp clang clang++; do
  for _ in 1 2 3 4 5; do
    p=$(find_exe "$tool") || break
    mount --bind "$EMPTY_FILE" "$(realpath "$p")"
  done
  find_exe "$tool" >/dev/null && fail "could not hide $tool"
done
# No headers at all (libpq, msgpack, Node's, libc's) and no compiler internals.
for d in /usr/lib/gcc /usr/include /usr/local/include; do
  [[ -d $d ]] && mount --bind "$EMPTY_DIR" "$d"
done
[[ -e /usr/include/msgpack.hpp || -e /usr/include/node/uv.h || -e /usr/include/postgresql/libpq-fe.h ]] && fail "headers still visible"
say "toolchain hidden (cmake, compilers, make, ninja, pkg-config, pg_config, libpq/msgpack/Node headers)"

cd "$WORK/bare"
start=$(date +%s%N)
npm install --no-audit --no-fund --loglevel=error socket.io pg socket.io-adapter socket.io-client "$TARBALL" >"$WORK/bare-install.log" 2>&1 \
  || { cat "$WORK/bare-install.log"; fail "npm install failed on the bare machine"; }
say "npm install (prebuilt): $(( ($(date +%s%N) - start) / 1000000 )) ms"
[[ -e node_modules/$PKG/build ]] && fail "the install built something although the prebuilt binary fits"
node broadcast.js || fail "broadcast with the prebuilt binary"

# Without libpq.so.5: one line naming libpq5.
LIBPQ=$(node -e 'console.log(require("fs").realpathSync("/usr/lib/x86_64-linux-gnu/libpq.so.5"))')
mount --bind "$EMPTY_FILE" "$LIBPQ"
out=$(node -e 'try { require("socket.io-postgres-native") } catch (e) { console.log(e.message); process.exit(3) }' 2>&1) && fail "loaded without libpq"
umount "$LIBPQ"
[[ $(printf '%s\n' "$out" | wc -l) -eq 1 && $out == *"apt-get install -y libpq5"* ]] || fail "libpq missing, got: $out"
say "without libpq.so.5: $out"

# No prebuilt binary and no build (e.g. --ignore-scripts on another platform): one line naming npm rebuild.
rm -rf "node_modules/$PKG/prebuilds"
out=$(node -e 'try { require("socket.io-postgres-native") } catch (e) { console.log(e.message); process.exit(3) }' 2>&1) && fail "loaded without any binary"
[[ $(printf '%s\n' "$out" | wc -l) -eq 1 && $out == *"npm rebuild $PKG"* ]] || fail "no binary, got: $out"
say "no binary: $out"

# The rebuild without a toolchain: one line naming the missing parts and the apt-get command.
npm rebuild "$PKG" >"$WORK/rebuild.log" 2>&1 && fail "npm rebuild succeeded without a toolchain"
line=$(grep -c "cannot build the native addon from source" "$WORK/rebuild.log" || true)
[[ $line -eq 1 ]] || { cat "$WORK/rebuild.log"; fail "npm rebuild without a toolchain: expected one explanatory line"; }
grep -q "missing cmake, a C++17 compiler, make or ninja, libpq headers, msgpack-cxx headers, Node's headers" "$WORK/rebuild.log" \
  || { cat "$WORK/rebuild.log"; fail "the line does not name every missing part"; }
grep -q "apt-get install -y --no-install-recommends cmake g++ ninja-build libpq-dev libmsgpack-cxx-dev libnode-dev" "$WORK/rebuild.log" \
  || { cat "$WORK/rebuild.log"; fail "the line does not give the apt-get command"; }
say "npm rebuild without a toolchain ($(wc -l <"$WORK/rebuild.log") lines of npm output): $(grep "cannot build" "$WORK/rebuild.log" | sed 's/^npm error //')"
BARE

# --- 3. source fallback --------------------------------------------------------------------------
mkdir "$WORK/src-pkg"
tar xzf "$TARBALL" -C "$WORK/src-pkg"
rm -rf "$WORK/src-pkg/package/prebuilds"
SRC_TARBALL=$WORK/src-pkg/$PKG-source.tgz
tar czf "$SRC_TARBALL" -C "$WORK/src-pkg" package
new_consumer "$WORK/src"
cd "$WORK/src"
# Install scripts skipped (npm --ignore-scripts, pnpm 10): the first require says what to run, in one line.
npm install --no-audit --no-fund --loglevel=error --ignore-scripts "$SRC_TARBALL" >"$WORK/ignore.log" 2>&1 \
  || { cat "$WORK/ignore.log"; fail "npm install --ignore-scripts failed"; }
out=$(node -e 'try { require("socket.io-postgres-native") } catch (e) { console.log(e.message); process.exit(3) }' 2>&1) && fail "loaded without any binary"
[[ $(printf '%s\n' "$out" | wc -l) -eq 1 && $out == *"run \`npm rebuild $PKG\`"* ]] || fail "--ignore-scripts, got: $out"
say "--ignore-scripts, no prebuilt binary: $out"
rm -rf node_modules package-lock.json
start=$(date +%s%N)
npm install --no-audit --no-fund --loglevel=error socket.io pg socket.io-adapter socket.io-client "$SRC_TARBALL" >"$WORK/src-install.log" 2>&1 \
  || { cat "$WORK/src-install.log"; fail "npm install with a source build failed"; }
say "npm install (source build): $(( ($(date +%s%N) - start) / 1000000 )) ms"
built=$(cd "node_modules/$PKG" && find build -mindepth 1 | sort | tr '\n' ' ')
[[ $built == "build/Release build/Release/pgadapter.node " ]] || fail "the source build left more than the addon: $built"
node broadcast.js || fail "broadcast with the source build"
say "PASS"
