#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages needed to build the addon, run the tests and the demo.
# Run as root (or with sudo). Installs only what is missing.
set -euo pipefail
PACKAGES=(cmake ninja-build g++ pkg-config libpq-dev libmsgpack-cxx-dev postgresql openssl)  # openssl: test/tls.test.js
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all system packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
