"""Overhead benchmark: the allocation-heavy workload run plain, under
memcreep and under Debian's heaptrack in one run, each several times;
prints median wall time and peak RSS (the largest process of the run, as
wait4 reports it) and the ratios to plain.
With --baseline, a second memcreep (another build, say the one before a
change) is measured in the same interleaved run, with its ratio to this
one's.
usage: run_overhead.py --memcreep PATH --workload PATH [--baseline PATH]
                       [--reps N] [--markdown]"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def measure(argv, env=None):
    """Runs argv once; returns (wall seconds, peak RSS in KiB)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"run_overhead: {argv[0]} failed with status {status}")
    return wall, ru.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--workload", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--baseline", help="another memcreep build to measure beside")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mc-bench-")
    runs = [("plain", [a.workload])]
    runs.append(("memcreep", [a.memcreep, "run", "-q", "--", a.workload]))
    if a.baseline:
        runs.append(("memcreep (baseline build)", [a.baseline, "run", "-q", "--", a.workload]))
    for extra, label in ((["--sample-bytes", "512k"], "memcreep --sample-bytes 512k"),):
        runs.append((label, [a.memcreep, "run", "-q"] + extra + ["--", a.workload]))
    heaptrack = shutil.which("heaptrack")
    if heaptrack:
        runs.append(("heaptrack", [heaptrack, "-o", os.path.join(tmp, "ht"), a.workload]))
    else:
        print("heaptrack not installed (scripts/deps.sh bench): peer column missing")
    results = {}
    # Interleaved repetitions: a slow spell of the machine hits every tool.
    for rep in range(a.reps):
        for name, argv in runs:
            results.setdefault(name, []).append(measure(argv))
            for f in os.listdir(tmp):
                os.unlink(os.path.join(tmp, f))
    base_t = statistics.median(w for w, _ in results["plain"])
    base_m = statistics.median(m for _, m in results["plain"])
    rows = []
    for name, _ in runs:
        t = statistics.median(w for w, _ in results[name])
        m = statistics.median(m for _, m in results[name])
        rows.append((name, t, t / base_t, m / 1024, m / base_m))
    if a.markdown:
        print("| run | wall (s) | × plain | peak RSS (MiB) | × plain |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r[0]} | {r[1]:.2f} | {r[2]:.2f} | {r[3]:.1f} | {r[4]:.2f} |")
    else:
        print(f"{'run':32} {'wall s':>8} {'x plain':>8} {'peak MiB':>9} {'x plain':>8}")
        for r in rows:
            print(f"{r[0]:32} {r[1]:8.2f} {r[2]:8.2f} {r[3]:9.1f} {r[4]:8.2f}")
    if a.baseline:
        mc = statistics.median(w for w, _ in results["memcreep"])
        bl = statistics.median(w for w, _ in results["memcreep (baseline build)"])
        mcm = statistics.median(m for _, m in results["memcreep"])
        blm = statistics.median(m for _, m in results["memcreep (baseline build)"])
        # Paired too: each repetition's two builds ran back to back.
        pairs = [x[0] / y[0] for x, y in zip(results["memcreep"],
                                            results["memcreep (baseline build)"])]
        print(f"memcreep / baseline build: wall {mc / bl:.3f} (median of paired "
              f"{statistics.median(pairs):.3f}), peak RSS {mcm / blm:.3f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
