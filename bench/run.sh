#!/usr/bin/env bash
# Runs the benchmarks (bench/README.md): installs the peers if missing,
# builds in Release, prints the tables for docs/benchmarks.md.
# usage: bench/run.sh [overhead|load|fdhooks|tls|memory|python|reports|processes|attach|all] [--markdown]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
[ $# -gt 0 ] && shift
scripts/deps.sh build bench
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build/bench -j"$(nproc)" >/dev/null
if [ "$which" = overhead ] || [ "$which" = all ]; then
  echo "== allocation-heavy workload: plain vs memcreep vs heaptrack (median of ${REPS:-5})"
  /usr/bin/python3 bench/run_overhead.py --memcreep build/bench/src/memcreep \
    --workload build/bench/bench/alloc_workload --reps "${REPS:-5}" "$@"
fi
if [ "$which" = python ] || [ "$which" = all ]; then
  echo "== Python workload: plain vs memcreep vs tracemalloc vs heaptrack (median of ${REPS:-3})"
  /usr/bin/python3 bench/run_python.py --memcreep build/bench/src/memcreep --reps "${REPS:-3}" "$@"
fi
if [ "$which" = fdhooks ] || [ "$which" = all ]; then
  echo "== descriptor hooks: nginx plain vs under memcreep, a connection per request (median of ${REPS:-3})"
  /usr/bin/python3 bench/run_fdhooks.py --memcreep build/bench/src/memcreep \
    --reps "${REPS:-3}" --seconds "${SECONDS_PER_RUN:-5}" "$@"
fi
if [ "$which" = tls ] || [ "$which" = all ]; then
  echo "== nginx https, a full handshake per request: plain vs memcreep vs heaptrack (median of ${REPS:-5})"
  /usr/bin/python3 bench/run_tls.py --memcreep build/bench/src/memcreep \
    --reps "${REPS:-5}" --seconds "${SECONDS_PER_RUN:-5}" "$@"
fi
if [ "$which" = memory ] || [ "$which" = all ]; then
  echo "== memcreep's memory in the target: per live block, per stack, fixed (median of ${REPS:-3})"
  /usr/bin/python3 bench/run_memory.py --memcreep build/bench/src/memcreep \
    --bench-dir build/bench/bench --reps "${REPS:-3}" --seconds "${SECONDS_PER_RUN:-5}" "$@"
fi
if [ "$which" = load ] || [ "$which" = all ]; then
  echo "== memcreep load vs wrk and h2load against nginx (median of ${REPS:-3})"
  /usr/bin/python3 bench/run_load.py --memcreep build/bench/src/memcreep \
    --reps "${REPS:-3}" --seconds "${SECONDS_PER_RUN:-5}" "$@"
fi
if [ "$which" = processes ] || [ "$which" = all ]; then
  echo "== many short processes: a shell loop of /bin/true plain vs under memcreep (median of ${REPS:-3})"
  /usr/bin/python3 bench/run_processes.py --memcreep build/bench/src/memcreep --reps "${REPS:-3}" "$@"
fi
if [ "$which" = reports ] || [ "$which" = all ]; then
  echo "== reports: rendering vs heaptrack_print; --metrics scraped 10/s (median of ${REPS:-5})"
  /usr/bin/python3 bench/run_reports.py --memcreep build/bench/src/memcreep \
    --workload build/bench/bench/alloc_workload --service build/bench/demo/leaky_service \
    --reps "${REPS:-5}" --seconds "${SECONDS_PER_RUN:-8}" "$@"
fi
if [ "$which" = attach ] || [ "$which" = all ]; then
  echo "== attaching to a running nginx: memcreep attach vs heaptrack -p (median of ${REPS:-5})"
  /usr/bin/python3 bench/run_attach.py --memcreep build/bench/src/memcreep \
    --workload build/bench/bench/alloc_workload \
    --reps "${REPS:-5}" --seconds "${SECONDS_PER_RUN:-5}" "$@"
fi
