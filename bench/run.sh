#!/usr/bin/env bash
# Runs the overhead benchmark (bench/README.md): installs the peers if
# missing, builds in Release, prints the table for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build bench
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build/bench -j"$(nproc)" >/dev/null
echo "== allocation-heavy workload: plain vs memcreep vs heaptrack (median of ${REPS:-5})"
/usr/bin/python3 bench/run_overhead.py --memcreep build/bench/src/memcreep \
  --workload build/bench/bench/alloc_workload --reps "${REPS:-5}" "$@"
