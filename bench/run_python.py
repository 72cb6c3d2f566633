"""Python benchmark: an allocation-heavy Python program (py_workload.py,
pymalloc on) run plain, under memcreep run (native tracking and the Python
bridge), with byte sampling, under python3 -X tracemalloc=1, and under
heaptrack (pymalloc on, and PYTHONMALLOC=malloc so that it sees the
objects), each several times, interleaved; prints median wall time, peak
RSS and the ratios to plain.
With --long S, instead: the same program sized to run S seconds plain, run
plain and under memcreep run with its defaults (Python lines traced 2 s
every 60 s, the first window at 10 s): the cost of the tracing windows
over a long run.
usage: run_python.py --memcreep PATH [--reps N] [--markdown] [--long S]"""
import argparse
import os
import shutil
import statistics
import tempfile

from run_overhead import measure

PYTHON = "/usr/bin/python3"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--long", type=float, default=0)
    a = ap.parse_args()
    work = [PYTHON, os.path.join(os.path.dirname(os.path.abspath(__file__)), "py_workload.py")]
    if a.long:
        # 300000 iterations take about 2 s plain here; scale to the length.
        n = str(int(300000 * a.long / 2))
        work.append(n)
        runs = [("plain", work, None),
                ("memcreep run (Python lines every 60 s)", [a.memcreep, "run", "-q", "--"] + work,
                 None)]
        res = {name: [measure(argv, env) for _ in range(a.reps)] for name, argv, env in runs}
        base = statistics.median(w for w, _ in res["plain"])
        for name, _, _ in runs:
            t = statistics.median(w for w, _ in res[name])
            print(f"| {name} | {t:.1f} | {t / base:.2f}× |" if a.markdown else
                  f"{name:40} {t:7.1f} s {t / base:6.2f}x")
        return
    tmp = tempfile.mkdtemp(prefix="mc-bench-py-")
    env_malloc = dict(os.environ, PYTHONMALLOC="malloc")
    runs = [("plain", work, None),
            ("memcreep run", [a.memcreep, "run", "-q", "--"] + work, None),
            ("memcreep run --sample-bytes 512k",
             [a.memcreep, "run", "-q", "--sample-bytes", "512k", "--"] + work, None),
            ("python3 -X tracemalloc=1", [PYTHON, "-X", "tracemalloc=1"] + work[1:], None)]
    heaptrack = shutil.which("heaptrack")
    if heaptrack:
        runs.append(("heaptrack (pymalloc on)", [heaptrack, "-o", os.path.join(tmp, "ht")] + work,
                     None))
        runs.append(("heaptrack, PYTHONMALLOC=malloc",
                     [heaptrack, "-o", os.path.join(tmp, "ht")] + work, env_malloc))
    results = {}
    for _ in range(a.reps):
        for name, argv, env in runs:
            results.setdefault(name, []).append(measure(argv, env))
            for f in os.listdir(tmp):
                os.unlink(os.path.join(tmp, f))
    base_t = statistics.median(w for w, _ in results["plain"])
    base_m = statistics.median(m for _, m in results["plain"])
    if a.markdown:
        print("| run | wall (s) | × plain | peak RSS (MiB) | × plain |")
        print("| --- | ---: | ---: | ---: | ---: |")
    for name, _, _ in runs:
        t = statistics.median(w for w, _ in results[name])
        m = statistics.median(m for _, m in results[name])
        if a.markdown:
            print(f"| {name} | {t:.2f} | {t / base_t:.2f}× | {m / 1024:.0f} | {m / base_m:.2f}× |")
        else:
            print(f"{name:34} {t:7.2f} s {t / base_t:6.2f}x {m / 1024:8.0f} MiB {m / base_m:6.2f}x")


if __name__ == "__main__":
    main()
