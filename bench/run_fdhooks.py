"""Cost of the descriptor hooks on a connection-heavy workload: `memcreep
load --new-conn` (a new TCP connection for every request: accept4, close,
open of the file, on each) against nginx run plain and nginx run under
`memcreep run` (preload: allocation, descriptor, connect and thread
hooks). Runs are interleaved and repeated; medians and the ratio of
requests/s (plain / under memcreep) are printed.
usage: run_fdhooks.py --memcreep PATH [--reps N] [--seconds S] [--markdown]"""
import argparse
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

from run_load import nginx_conf, run, wait_ports


def worker_cpu(d):
    """CPU seconds (user + system) used so far by the nginx worker whose
    master wrote d/nginx.pid."""
    with open(os.path.join(d, "nginx.pid")) as f:
        master = int(f.read())
    with open(f"/proc/{master}/task/{master}/children") as f:
        worker = int(f.read().split()[0])
    with open(f"/proc/{worker}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(memcreep, under, conns, secs):
    """Starts nginx (under memcreep or not), drives it for secs seconds with
    a connection per request; returns (req/s, descriptors the worker's
    hooks saw opened or None, requests, worker CPU microseconds per
    request)."""
    d = tempfile.mkdtemp(prefix="mc-bench-fd-")
    argv, p1, _ = nginx_conf(d)
    out = os.path.join(d, "run")
    if under:
        argv = [memcreep, "run", "-q", "-o", out, "--"] + argv
    proc = subprocess.Popen(argv)
    try:
        wait_ports(p1)
        cpu0 = worker_cpu(d)
        s = json.loads(run([memcreep, "load", f"http://127.0.0.1:{p1}/small", "--new-conn",
                            "-c", str(conns), "-d", str(secs), "--json", "-q"]))
        cpu = (worker_cpu(d) - cpu0) / max(s["requests"], 1) * 1e6
    finally:
        proc.send_signal(signal.SIGTERM if under else signal.SIGQUIT)
        proc.wait(timeout=60)
    opened = None
    for path in glob.glob(os.path.join(out, "result.json")):
        with open(path) as f:
            doc = json.load(f)
        opened = sum(p.get("descriptors", {}).get("opened", 0) for p in doc["processes"])
    shutil.rmtree(d, ignore_errors=True)
    return s["requests_per_s"], opened, s["requests"], cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        sys.exit("run_fdhooks: nginx is not installed (scripts/deps.sh bench)")
    conns = 4
    plain, under, pcpu, ucpu, seen = [], [], [], [], []
    for _ in range(a.reps):
        rps, _, _, cpu = one(a.memcreep, False, conns, a.seconds)
        plain.append(rps)
        pcpu.append(cpu)
        rps, opened, reqs, cpu = one(a.memcreep, True, conns, a.seconds)
        under.append(rps)
        ucpu.append(cpu)
        seen.append((opened or 0) / max(reqs, 1))
    pr, ur = statistics.median(plain), statistics.median(under)
    pc, uc = statistics.median(pcpu), statistics.median(ucpu)
    rows = [("nginx plain", pr, 1.0, pc, 1.0),
            ("nginx under memcreep run", ur, pr / ur, uc, uc / pc)]
    if a.markdown:
        print("| target | req/s (new connection each) | slowdown (plain / this) "
              "| worker CPU us/request | CPU ratio |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r[0]} | {r[1]:.0f} | {r[2]:.3f}× | {r[3]:.1f} | {r[4]:.2f}× |")
    else:
        print(f"{'target':26} {'req/s':>10} {'slowdown':>9} {'cpu us/req':>11} {'cpu x':>6}")
        for r in rows:
            print(f"{r[0]:26} {r[1]:10.0f} {r[2]:8.3f}x {r[3]:11.1f} {r[4]:5.2f}x")
    print(f"descriptors the hooks saw opened per request: {statistics.median(seen):.2f} "
          f"(accept4 and the file open; {conns} connections, median of {a.reps})")


if __name__ == "__main__":
    main()
