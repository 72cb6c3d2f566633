"""What memcreep adds to a target's memory, split the way it grows: per
live tracked block (the pointer table, private memory), per distinct stack
(the shared mapping) and fixed. Each figure is read two ways: the library's
own accounting (memcreep_private_bytes, memcreep_mapping_bytes in
result.json) and the target's peak RSS (VmHWM) plain against under
memcreep. Workloads: bench/live_heap (N blocks of 32 bytes held, from 1 or
1024 stacks), bench/alloc_workload, and nginx doing a TLS handshake per
request (the configuration of bench/run_tls.py).
usage: run_memory.py --memcreep PATH --bench-dir DIR [--reps N] [--markdown]"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "scenario"))
from test_load import tls_nginx_conf  # noqa: E402


def hwm_kib_of_run(argv):
    """Runs argv to its end; returns the peak RSS of the process tree's
    largest member (KiB), from wait4's rusage."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"run_memory: {argv[0]} failed ({status})")
    return ru.ru_maxrss


def under_memcreep(memcreep, argv, extra=()):
    """argv under memcreep run: (peak RSS KiB, the root process's record)."""
    d = tempfile.mkdtemp(prefix="mc-bench-mem-")
    hwm = hwm_kib_of_run([memcreep, "run", "-q", "-o", d] + list(extra) + ["--"] + argv)
    with open(os.path.join(d, "result.json")) as f:
        doc = json.load(f)
    shutil.rmtree(d, ignore_errors=True)
    procs = doc["processes"]
    return hwm, max(procs, key=lambda p: p.get("memcreep_private_bytes", 0))


def nginx_tls(memcreep, secs):
    """nginx (master and worker) under memcreep with a handshake per
    request for secs: the worker's record."""
    d = tempfile.mkdtemp(prefix="mc-bench-mem-tls-")
    argv, port = tls_nginx_conf(d)
    out = os.path.join(d, "run")
    p = subprocess.Popen([memcreep, "run", "-q", "-o", out, "--url",
                          f"https://127.0.0.1:{port}/small", "-k", "--new-conn", "-c", "4", "-d",
                          f"{secs}s", "--"] + argv,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=secs + 120)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
    with open(os.path.join(out, "result.json")) as f:
        doc = json.load(f)
    shutil.rmtree(d, ignore_errors=True)
    return max(doc["processes"], key=lambda q: q.get("memcreep_mapping_bytes", 0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--bench-dir", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    heap = os.path.join(a.bench_dir, "live_heap")
    rows = []
    cases = [("live_heap 1M x 32 B, 1024 stacks", [heap, "1000000", "32", "1024", "0.3"]),
             ("live_heap 4M x 32 B, 1024 stacks", [heap, "4000000", "32", "1024", "0.3"]),
             ("live_heap 1000 x 32 B, 1 stack", [heap, "1000", "32", "1", "0.3"]),
             ("live_heap 1000 x 32 B, 1024 stacks", [heap, "1000", "32", "1024", "0.3"]),
             ("alloc_workload", [os.path.join(a.bench_dir, "alloc_workload")])]
    for name, argv in cases:
        plain, mc, priv, mapb, blocks = [], [], [], [], []
        for _ in range(a.reps):
            plain.append(hwm_kib_of_run(argv))
            h, p = under_memcreep(a.memcreep, argv)
            mc.append(h)
            priv.append(p.get("memcreep_private_bytes", 0))
            mapb.append(p.get("memcreep_mapping_bytes", 0))
            blocks.append(int(argv[1]) if "live_heap" in name else 0)
        rows.append((name, statistics.median(plain) / 1024, statistics.median(mc) / 1024,
                     statistics.median(priv) / 2**20, statistics.median(mapb) / 2**20,
                     statistics.median(blocks)))
    tls = nginx_tls(a.memcreep, a.seconds) if shutil.which("nginx") or os.path.exists(
        "/usr/sbin/nginx") else None
    cells = []
    for n, pl, m, pr, mp, b in rows:
        per = f"{pr * 2**20 / b:.1f}" if b >= 100000 else "-"
        cells.append((n, f"{pl:.1f}", f"{m:.1f}", f"{pr:.2f}", per, f"{mp:.2f}"))
    if tls:
        cells.append((f"nginx https worker, {a.seconds} s", "-", "-",
                      f"{tls.get('memcreep_private_bytes', 0) / 2**20:.2f}", "-",
                      f"{tls.get('memcreep_mapping_bytes', 0) / 2**20:.2f}"))
    if a.markdown:
        print("| workload | plain peak RSS (MiB) | memcreep peak RSS (MiB) | pointer table (MiB) "
              "| per live block (B) | mapping (MiB) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for c in cells:
            print("| " + " | ".join(c) + " |")
    else:
        print(f"{'workload':36} {'plain':>7} {'memcreep':>9} {'ptr tab':>8} {'B/block':>8} "
              f"{'mapping':>8} (MiB)")
        for c in cells:
            print(f"{c[0]:36} " + " ".join(f"{v:>8}" for v in c[1:]))
    print(f"(median of {a.reps}; peak RSS from wait4, the largest process of the tree)")


if __name__ == "__main__":
    main()
