"""Many short processes: a shell loop starting N /bin/true, plain and under
memcreep, for two values of N. memcreep's memory must depend on what is
alive, not on how many processes came and went: its peak RSS (the largest
process of the run, as wait4 reports it; memcreep itself here) at N and at
10 N shows it. Wall time gives the cost of starting a preloaded process.
usage: run_processes.py --memcreep PATH [--reps N] [--markdown]"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def measure(argv):
    """Runs argv once; returns (wall seconds, peak RSS in KiB)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"run_processes: {argv} failed with status {status}")
    return time.monotonic() - t0, ru.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    out = tempfile.mkdtemp(prefix="mc-bench-")
    rows = []
    for n in (1000, 10000):
        loop = f"i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done"
        runs = [("plain", ["sh", "-c", loop]),
                ("memcreep", [a.memcreep, "run", "-q", "-o", out, "--", "sh", "-c", loop])]
        res = {}
        for _ in range(a.reps):
            for name, argv in runs:
                res.setdefault(name, []).append(measure(argv))
        base = statistics.median(w for w, _ in res["plain"])
        for name, _ in runs:
            w = statistics.median(x for x, _ in res[name])
            m = statistics.median(x for _, x in res[name])
            size = os.path.getsize(os.path.join(out, "result.json")) if name == "memcreep" else 0
            rows.append((n, name, w, w / base, m / 1024, size / 1024))
    shutil.rmtree(out, ignore_errors=True)
    if a.markdown:
        print("| processes | run | wall (s) | × plain | peak RSS (MiB) | result.json (KiB) |")
        print("| ---: | --- | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.1f} | "
                  f"{r[5]:.0f} |" if r[1] == "memcreep" else
                  f"| {r[0]} | {r[1]} | {r[2]:.2f} | 1.00 | {r[4]:.1f} | - |")
    else:
        for r in rows:
            print(f"{r[0]:>6} {r[1]:10} {r[2]:8.2f} s {r[3]:6.2f}x {r[4]:8.1f} MiB "
                  f"{r[5]:8.0f} KiB")


if __name__ == "__main__":
    main()
