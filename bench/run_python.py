"""Python benchmark: an allocation-heavy Python program (py_workload.py,
pymalloc on), and a client that opens an httpx.Client per request against
a local server (py_client_workload.py: OpenSSL's allocations under a deep
Python stack), each run plain, under memcreep run (native tracking with
Python stacks, and the Python bridge), with byte sampling, under python3
-X tracemalloc=1, and under heaptrack (pymalloc on, and for the first one
PYTHONMALLOC=malloc so that it sees the objects), several times,
interleaved; prints median wall time, peak RSS and the ratios to plain.
The wall-time ratio is the median of each run's ratio to a plain run made
just before it: the shared machine here switches between a fast and a slow
state for seconds at a time, and a ratio of medians then depends on how
many runs of each kind fell in the slow state.
With --long S, instead: the same program sized to run S seconds plain, run
plain and under memcreep run --py-trace 60s (Python lines traced 2 s
every 60 s, the first window at 10 s): the cost of the tracing windows
over a long run.
usage: run_python.py --memcreep PATH [--reps N] [--markdown] [--long S] [--requests N]
                     [--only objects|client] [--snapshots]"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

from run_overhead import measure

PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--long", type=float, default=0)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--only", choices=["objects", "client"],
                    help="one of the two workloads (py_workload.py, py_client_workload.py)")
    ap.add_argument("--snapshots", action="store_true",
                    help="instead: what one Python snapshot costs at 10^5..10^7 objects")
    a = ap.parse_args()
    if a.snapshots:
        snapshots(a)
        return
    work = [PYTHON, os.path.join(os.path.dirname(os.path.abspath(__file__)), "py_workload.py")]
    if a.long:
        # 300000 iterations take about 2 s plain here; scale to the length.
        n = str(int(300000 * a.long / 2))
        work.append(n)
        runs = [("plain", work, None),
                ("memcreep run --py-trace 60s",
                 [a.memcreep, "run", "-q", "--py-trace", "60s", "--"] + work,
                 None)]
        res = {name: [measure(argv, env) for _ in range(a.reps)] for name, argv, env in runs}
        base = statistics.median(w for w, _ in res["plain"])
        for name, _, _ in runs:
            t = statistics.median(w for w, _ in res[name])
            print(f"| {name} | {t:.1f} | {t / base:.2f}× |" if a.markdown else
                  f"{name:40} {t:7.1f} s {t / base:6.2f}x")
        return
    tmp = tempfile.mkdtemp(prefix="mc-bench-py-")
    if a.only != "client":
        print("py_workload.py (300000 requests-like objects)")
        table(a, tmp, work, malloc_variant=True)
    if a.only == "objects":
        return
    # A stdlib HTTP server in its own process, a 1000-byte file.
    with open(os.path.join(tmp, "index.html"), "wb") as f:
        f.write(b"x" * 1000)
    port = free_port()
    srv = subprocess.Popen([PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(port),
                            "--directory", tmp], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        client = [PYTHON, os.path.join(HERE, "py_client_workload.py"),
                  f"http://127.0.0.1:{port}/index.html", str(a.requests)]
        print(f"py_client_workload.py ({a.requests} requests, an httpx.Client each)")
        table(a, os.path.join(tmp, "ht"), client, malloc_variant=False)
    finally:
        srv.terminate()
        srv.wait(timeout=10)


def snapshots(a):
    """py_snapshot.py at 10^5, 10^6 and 10^7 tracked objects: the last
    snapshot's length under memcreep run (median of the runs), and a full
    collection and gc.get_objects() of the same heap in a plain run."""
    tmp = tempfile.mkdtemp(prefix="mc-bench-snap-")
    script = os.path.join(HERE, "py_snapshot.py")
    if a.markdown:
        print("| tracked objects | snapshot (ms) | gc.collect() (ms) | gc.get_objects() (ms) |")
        print("| ---: | ---: | ---: | ---: |")
    for e in (5, 6, 7):
        n = 10 ** e
        snap, coll, geto = [], [], []
        for _ in range(a.reps):
            out = subprocess.run([PYTHON, script, str(n), "0", "plain"], capture_output=True,
                                 text=True, check=True).stdout.split()
            coll.append(float(out[1]))
            geto.append(float(out[3]))
            subprocess.run([a.memcreep, "run", "-q", "-i", "0.05", "-o", tmp, "--", PYTHON, script,
                            str(n), str(6 + 4 * (e - 5))], check=True, stdout=subprocess.DEVNULL)
            with open(os.path.join(tmp, "result.json")) as f:
                doc = json.load(f)
            snap.append(doc["processes"][0]["python"]["snapshot_ms"])
        med = statistics.median
        if a.markdown:
            print(f"| 10^{e} | {med(snap):.0f} | {med(coll):.1f} | {med(geto):.1f} |")
        else:
            print(f"10^{e} objects: snapshot {med(snap):.0f} ms, gc.collect {med(coll):.1f} ms, "
                  f"gc.get_objects {med(geto):.1f} ms")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the local server did not listen on {port}")


def table(a, tmp, work, malloc_variant):
    os.makedirs(tmp, exist_ok=True)
    env_malloc = dict(os.environ, PYTHONMALLOC="malloc")
    runs = [("plain", work, None),
            ("memcreep run", [a.memcreep, "run", "-q", "--"] + work, None),
            ("memcreep run --burst-rate 0 (every malloc)",
             [a.memcreep, "run", "-q", "--burst-rate", "0", "--"] + work, None),
            ("memcreep run --py-sample-bytes 0 (no objects)",
             [a.memcreep, "run", "-q", "--py-sample-bytes", "0", "--"] + work, None),
            ("memcreep run --sample-bytes 512k",
             [a.memcreep, "run", "-q", "--sample-bytes", "512k", "--"] + work, None),
            ("python3 -X tracemalloc=1", [PYTHON, "-X", "tracemalloc=1"] + work[1:], None)]
    heaptrack = shutil.which("heaptrack")
    if heaptrack:
        runs.append(("heaptrack (pymalloc on)", [heaptrack, "-o", os.path.join(tmp, "ht")] + work,
                     None))
        if malloc_variant:
            runs.append(("heaptrack, PYTHONMALLOC=malloc",
                         [heaptrack, "-o", os.path.join(tmp, "ht")] + work, env_malloc))
    results, ratios = {"plain": []}, {"plain": [1.0]}
    for _ in range(a.reps):
        for name, argv, env in runs[1:]:
            # Its own plain run just before: the pair shares the machine's state.
            p = measure(runs[0][1], runs[0][2])
            results["plain"].append(p)
            results.setdefault(name, []).append(measure(argv, env))
            ratios.setdefault(name, []).append(results[name][-1][0] / p[0])
            for f in os.listdir(tmp):
                if f.startswith("ht"):
                    os.unlink(os.path.join(tmp, f))
    base_m = statistics.median(m for _, m in results["plain"])
    if a.markdown:
        print("| run | wall (s) | × plain | peak RSS (MiB) | × plain |")
        print("| --- | ---: | ---: | ---: | ---: |")
    for name, _, _ in runs:
        t = statistics.median(w for w, _ in results[name])
        m = statistics.median(m for _, m in results[name])
        r = statistics.median(ratios[name])
        if a.markdown:
            print(f"| {name} | {t:.2f} | {r:.2f}× | {m / 1024:.0f} | {m / base_m:.2f}× |")
        else:
            print(f"{name:34} {t:7.2f} s {r:6.2f}x {m / 1024:8.0f} MiB {m / base_m:6.2f}x")


if __name__ == "__main__":
    main()
