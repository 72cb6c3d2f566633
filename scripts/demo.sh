#!/usr/bin/env bash
# Builds memcreep on a fresh Debian 12 machine (installing what is missing)
# and lets it hunt the bundled leaky service for 10 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build build/demo -j"$(nproc)" >/dev/null
echo "== memcreep run --duration 10s -- leaky_service" >&2
./build/demo/src/memcreep run --duration 10s --output build/demo/run -- \
  ./build/demo/demo/leaky_service
echo "== saved in build/demo/run: result.json, report.txt, report.html (open it in a browser)," >&2
echo "   growth.folded (flamegraph.pl) and growth.pb.gz (go tool pprof)" >&2
