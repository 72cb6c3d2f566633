"""A real TLS server under full tracking: nginx from Debian with a
self-signed RSA-2048 certificate, no session reuse (every request a new
connection and a full handshake, hundreds of blocks allocated in libssl and
libcrypto with deep stacks), driven by `memcreep load https://... -k
--new-conn`. nginx runs plain, under `memcreep run` and under heaptrack;
nginx runs as one process (master_process off), since heaptrack does not
follow a fork without exec. Runs are interleaved and repeated, and the
medians of requests/s and of nginx's peak RSS are printed with their ratios
to plain.
usage: run_tls.py --memcreep PATH [--reps N] [--seconds S] [--conns C]
                  [--markdown] [--no-heaptrack]"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

from run_load import run, wait_ports

# The server's configuration is the test's (load.run_nginx_tls): one
# definition of "nginx doing a full handshake per request".
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "scenario"))
from test_load import tls_nginx_conf  # noqa: E402


def worker_hwm_kib(d):
    """The nginx worker's peak RSS (VmHWM) so far, in KiB."""
    with open(os.path.join(d, "nginx.pid")) as f:
        master = int(f.read())
    with open(f"/proc/{master}/task/{master}/children") as f:
        kids = f.read().split()
    worker = int(kids[0]) if kids else master  # master_process off: itself
    with open(f"/proc/{worker}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def one(memcreep, how, conns, secs):
    """One run: nginx plain, under memcreep or under heaptrack; returns
    (req/s, worker peak RSS KiB, failed requests)."""
    d = tempfile.mkdtemp(prefix="mc-bench-tls-")
    argv, port = tls_nginx_conf(d)
    # One process (master_process off): heaptrack does not follow a fork
    # without exec, so with a master it would measure an untracked worker.
    argv += ["-g", "master_process off;"]
    if how == "memcreep":
        argv = [memcreep, "run", "-q", "-o", os.path.join(d, "run"), "--"] + argv
    elif how == "heaptrack":
        argv = ["heaptrack", "-o", os.path.join(d, "ht")] + argv
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ports(port)
        s = json.loads(run([memcreep, "load", f"https://127.0.0.1:{port}/small", "-k",
                            "--new-conn", "-c", str(conns), "-d", str(secs), "--json", "-q"]))
        hwm = worker_hwm_kib(d)
    finally:
        proc.send_signal(signal.SIGQUIT if how == "plain" else signal.SIGTERM)
        proc.wait(timeout=120)
    shutil.rmtree(d, ignore_errors=True)
    return s["requests_per_s"], hwm, s.get("errors_total", 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--no-heaptrack", action="store_true")
    a = ap.parse_args()
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        sys.exit("run_tls: nginx is not installed (scripts/deps.sh bench)")
    hows = ["plain", "memcreep"]
    if not a.no_heaptrack and shutil.which("heaptrack"):
        hows.append("heaptrack")
    res = {h: [] for h in hows}
    for _ in range(a.reps):
        for h in hows:
            res[h].append(one(a.memcreep, h, a.conns, a.seconds))
    base_r = statistics.median(r for r, _, _ in res["plain"])
    base_m = statistics.median(m for _, m, _ in res["plain"])
    rows = []
    for h in hows:
        r = statistics.median(x for x, _, _ in res[h])
        m = statistics.median(x for _, x, _ in res[h])
        rows.append((h, r, r / base_r, m / 1024, m / base_m, sum(e for _, _, e in res[h])))
    if a.markdown:
        print("| nginx https, full handshake per request | req/s | × plain | worker peak RSS (MiB) "
              "| × plain | failed |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for n, r, rr, m, mr, e in rows:
            print(f"| {n} | {r:.0f} | {rr:.2f} | {m:.1f} | {mr:.2f} | {e} |")
    else:
        print(f"{'nginx https':12} {'req/s':>8} {'x plain':>8} {'peak MiB':>9} {'x plain':>8} failed")
        for n, r, rr, m, mr, e in rows:
            print(f"{n:12} {r:8.0f} {rr:8.2f} {m:9.1f} {mr:8.2f} {e}")
    print(f"(median of {a.reps}, {a.conns} connections, {a.seconds} s each, "
          "a new connection per request)")


if __name__ == "__main__":
    main()
