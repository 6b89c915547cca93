#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages needed to build the addon from source, run the tests and the demo.
# As root (containers) it runs apt-get itself; as another user it uses sudo. Installs only what is missing,
# after an `apt-get update` (a fresh container has no package lists). ninja-build is the build program:
# with --no-install-recommends, cmake alone brings none ("CMake was unable to find a build program").
set -euo pipefail
PACKAGES=(cmake ninja-build g++ pkg-config libpq-dev libmsgpack-cxx-dev postgresql openssl)  # openssl: test/tls.test.js
command -v apt-get >/dev/null || { echo "install-deps: apt-get not found (this script is for Debian/Ubuntu)" >&2; exit 1; }
missing=()
for p in "${PACKAGES[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all system packages present"
  exit 0
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root, or install sudo (missing: ${missing[*]})" >&2; exit 1; }
  SUDO=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
