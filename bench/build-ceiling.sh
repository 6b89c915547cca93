#!/usr/bin/env bash
# Builds bench/notify_ceiling.cc into build-bench/notify_ceiling (or $1) and bench/notify_latency.cc
# next to it: PostgreSQL's own NOTIFY throughput and latency, without Node.js.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../build-bench/notify_ceiling}
mkdir -p "$(dirname "$out")"
inc=$(pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
g++ -O2 -std=c++17 -Wall -Wextra "$here/notify_ceiling.cc" -I"$inc" -lpq -pthread -o "$out"
g++ -O2 -std=c++17 -Wall -Wextra "$here/notify_latency.cc" -I"$inc" -lpq -pthread -o "$(dirname "$out")/notify_latency"
echo "$out"
