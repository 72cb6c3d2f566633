"""Reports: what rendering a finished run costs, against heaptrack_print on
heaptrack's recording of the same workload, and what `--metrics` costs the
memcreep process while Prometheus-like scrapes come ten times a second.

1. The allocation-heavy workload is recorded once by `memcreep run -o` and
   once by `heaptrack -o`; then `memcreep report --format text|html|pprof`
   and `heaptrack_print` are timed (median of --reps), with the files'
   sizes. The ratio is memcreep's time over heaptrack_print's.
2. `memcreep run -d S -i 0.1` on the demo service, with and without
   `--metrics` scraped every 100 ms: memcreep's own CPU time (user +
   system, from /proc, the target excluded), and the ratio.
usage: run_reports.py --memcreep PATH --workload PATH --service PATH
       [--reps N] [--seconds S] [--markdown]"""
import argparse
import glob
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def timed(argv, reps):
    """Median wall seconds of argv (stdout discarded)."""
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def out_size(argv):
    return len(subprocess.run(argv, capture_output=True, check=True).stdout)


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_run(memcreep, service, secs, scrape):
    """memcreep's own CPU seconds over a run of secs, with --metrics
    scraped: 0 not at all (no --metrics), 1 once, 2 every 100 ms; also how
    many scrapes were answered."""
    port = free_port()
    argv = [memcreep, "run", "-q", "-i", "0.1", "-d", f"{secs}s"]
    if scrape:
        argv += ["--metrics", f"127.0.0.1:{port}"]
    p = subprocess.Popen(argv + ["--", service], stdout=subprocess.DEVNULL)
    cpu, answered, stop = [0.0], [0], time.time() + secs - 0.3
    while time.time() < stop:
        time.sleep(0.1)
        try:
            cpu[0] = proc_cpu(p.pid)
        except OSError:
            break
        if scrape == 2 or (scrape == 1 and not answered[0]):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                    answered[0] += data.startswith(b"HTTP/1.1 200")
            except OSError:
                pass
    p.wait(timeout=secs + 60)
    return cpu[0], answered[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--workload", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mc-bench-rep-")
    try:
        run_dir = os.path.join(tmp, "run")
        subprocess.run([a.memcreep, "run", "-q", "-o", run_dir, "--", a.workload], check=True,
                       stdout=subprocess.DEVNULL)
        rows = []
        for fmt in ("text", "html", "pprof"):
            argv = [a.memcreep, "report", run_dir, "--format", fmt]
            rows.append((f"memcreep report --format {fmt}", timed(argv, a.reps), out_size(argv)))
        heaptrack, ht_print = shutil.which("heaptrack"), shutil.which("heaptrack_print")
        peer = None
        if heaptrack and ht_print:
            subprocess.run([heaptrack, "-o", os.path.join(tmp, "ht"), a.workload], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            data = glob.glob(os.path.join(tmp, "ht*"))[0]
            peer = timed([ht_print, data], a.reps)
            rows.append(("heaptrack_print (peer)", peer, out_size([ht_print, data])))
        else:
            print("heaptrack not installed (scripts/deps.sh bench): peer row missing")
        res = os.path.getsize(os.path.join(run_dir, "result.json"))
        print(f"\nrendering a finished run (result.json {res / 1024:.0f} KiB), median of {a.reps}")
        if a.markdown:
            print("| renderer | seconds | output | vs heaptrack_print |\n|---|---|---|---|")
        for name, t, size in rows:
            ratio = f"{t / peer:.4f}x" if peer else "-"
            if a.markdown:
                print(f"| {name} | {t:.3f} | {size / 1024:.0f} KiB | {ratio} |")
            else:
                print(f"  {name:34s} {t:7.3f} s  {size / 1024:8.0f} KiB  {ratio}")

        cpus = {0: [], 1: [], 2: []}
        for _ in range(max(1, a.reps // 2)):
            for scrape in (0, 1, 2):
                cpus[scrape].append(metrics_run(a.memcreep, a.service, a.seconds, scrape))
        base = statistics.median(c for c, _ in cpus[0])
        print(f"\n--metrics: memcreep's own CPU over a {a.seconds:.0f}-s run, median of "
              f"{len(cpus[0])}")
        if a.markdown:
            print("| run | memcreep CPU s | scrapes answered | ratio | added, % of a core |\n"
                  "|---|---|---|---|---|")
        for scrape, name in ((0, "without --metrics"), (1, "--metrics, scraped once"),
                             (2, "--metrics, scraped every 100 ms")):
            cpu = statistics.median(c for c, _ in cpus[scrape])
            n = statistics.median(k for _, k in cpus[scrape])
            core = (cpu - base) / a.seconds * 100
            if a.markdown:
                print(f"| {name} | {cpu:.2f} | {n:.0f} | {cpu / base:.2f}x | {core:.2f}% |")
            else:
                print(f"  {name:34s} {cpu:6.2f} s  ({n:.0f} scrapes)  {cpu / base:.2f}x  "
                      f"+{core:.2f}% of a core")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
