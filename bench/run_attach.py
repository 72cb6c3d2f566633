"""memcreep attach against heaptrack -p, on nginx (Debian's, one worker)
serving a 50-byte file to `memcreep load` (4 connections, keep-alive):
  - the stall: the load runs 4 s and the tool attaches after 1 s; the
    longest request of the run (and p99.9) is what the attach cost the
    requests in flight. memcreep borrows one thread for its dlopen; gdb,
    which heaptrack -p uses, stops the whole process while it injects.
  - throughput while attached: requests per second of a load run once the
    tool is attached (memcreep attach: to the master, so master and worker;
    heaptrack -p: to the worker, the process that serves), against plain.
and bench's allocation workload (--workload), plain, under memcreep run,
and attached to by memcreep attach from its first milliseconds: what the
hooks cost when reached through the GOT, with general-dynamic TLS.
Each variant is repeated (--reps), interleaved; medians are printed.
usage: run_attach.py --memcreep PATH [--workload PATH] [--reps N] [--seconds S] [--markdown]"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from run_load import nginx_conf, run, wait_ports


def worker_of(master):
    with open(f"/proc/{master}/task/{master}/children") as f:
        return int(f.read().split()[0])


def loaded(pid, name):
    with open(f"/proc/{pid}/maps") as f:
        return any(name in line for line in f)


def start_tool(tool, memcreep, master, worker, secs, d):
    """Starts the tool attached to nginx; returns (process, target pid)."""
    if tool == "memcreep attach":
        p = subprocess.Popen([memcreep, "attach", str(master), "-d", f"{secs}s", "-q", "-o",
                              os.path.join(d, "attach")], stdout=subprocess.DEVNULL)
        return p, worker, "libmemcreep-attach"
    p = subprocess.Popen(["heaptrack", "-o", os.path.join(d, "heaptrack"), "-p", str(worker)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p, worker, "libheaptrack_inject"


def stop_tool(p):
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def load(memcreep, port, secs):
    return json.loads(run([memcreep, "load", f"http://127.0.0.1:{port}/small", "-c", "4", "-d",
                           str(secs), "--json", "-q"]))


def one(memcreep, tool, secs):
    """(stall max latency ms, p99.9 ms, req/s while attached, attach wall s)."""
    d = tempfile.mkdtemp(prefix="mc-bench-attach-")
    argv, port, _ = nginx_conf(d)
    nginx = subprocess.Popen(argv)
    try:
        wait_ports(port)
        master = nginx.pid
        worker = worker_of(master)
        # The stall: a 4 s load, the tool attaching at 1 s.
        bg = subprocess.Popen([memcreep, "load", f"http://127.0.0.1:{port}/small", "-c", "4",
                               "-d", "4", "--json", "-q"], stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        t0 = time.time()
        p, target, lib = (None, worker, None) if tool == "plain" else \
            start_tool(tool, memcreep, master, worker, secs + 10, d)
        while lib and time.time() - t0 < 20 and not loaded(target, lib):
            time.sleep(0.01)
        took = time.time() - t0 if lib else 0
        if lib and not loaded(target, lib):
            took = None  # it never got in
        s = json.loads(bg.communicate(timeout=60)[0])
        stall = s["latency_us"]["max"] / 1000
        p999 = s["latency_us"].get("p99.9", 0) / 1000
        # Throughput while attached.
        time.sleep(1)
        rps = load(memcreep, port, secs)["requests_per_s"]
        if p:
            stop_tool(p)
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(timeout=30)
        except subprocess.TimeoutExpired:
            nginx.kill()
        shutil.rmtree(d, ignore_errors=True)
    return stall, p999, rps if took is not None else None, took


def workload(memcreep, path, how):
    """Wall seconds of the allocation workload: plain, run, or attached."""
    argv = [memcreep, "run", "-q", "--", path] if how == "run" else [path]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    a = None
    if how == "attach":
        a = subprocess.Popen([memcreep, "attach", str(p.pid), "-q"], stdout=subprocess.DEVNULL)
    p.wait()
    wall = time.monotonic() - t0
    if a:
        a.wait(timeout=60)
    return wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--workload")
    a = ap.parse_args()
    for prog in ("nginx", "heaptrack"):
        if not shutil.which(prog) and not os.path.exists(f"/usr/sbin/{prog}"):
            sys.exit(f"run_attach: {prog} is not installed (scripts/deps.sh bench)")
    tools = ["plain", "memcreep attach", "heaptrack -p"]
    res = {t: [] for t in tools}
    for _ in range(a.reps):
        for t in tools:
            res[t].append(one(a.memcreep, t, a.seconds))
    def median(vals):
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    med = {t: [median(r[i] for r in res[t]) for i in range(4)] for t in tools}
    failed = {t: sum(r[3] is None for r in res[t]) for t in tools}
    base = med["plain"][2]

    def cells(t):
        m = med[t]
        if m[2] is None:
            return f"{m[0]:.1f}", f"{m[1]:.2f}", "never attached", "-", "-"
        return f"{m[0]:.1f}", f"{m[1]:.2f}", f"{m[3]:.2f}", f"{m[2]:.0f}", f"{m[2] / base:.2f}"
    if a.markdown:
        print("| nginx, 4 keep-alive connections | longest request while attaching (ms) "
              "| p99.9 (ms) | time to attach (s) | req/s attached | ratio to plain |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for t in tools:
            c = cells(t)
            print(f"| {t} | {c[0]} | {c[1]} | {c[2]} | {c[3]} | {c[4]}× |")
    else:
        print(f"{'tool':18} {'stall ms':>9} {'p99.9 ms':>9} {'attach s':>9} {'req/s':>9} "
              f"{'ratio':>6}")
        for t in tools:
            c = cells(t)
            print(f"{t:18} {c[0]:>9} {c[1]:>9} {c[2]:>9} {c[3]:>9} {c[4]:>5}x")
    for t in tools:
        if failed[t]:
            print(f"{t}: never attached in {failed[t]} of {a.reps} runs (its library was not in "
                  "the process 20 s later)")

    if a.workload:
        how = ["plain", "run", "attach"]
        walls = {h: [] for h in how}
        for _ in range(a.reps):
            for h in how:
                walls[h].append(workload(a.memcreep, a.workload, h))
        med = {h: statistics.median(walls[h]) for h in how}
        names = {"plain": "plain", "run": "memcreep run", "attach": "memcreep attach (at start)"}
        if a.markdown:
            print("\n| allocation workload | wall (s) | × plain |")
            print("| --- | ---: | ---: |")
            for h in how:
                print(f"| {names[h]} | {med[h]:.2f} | {med[h] / med['plain']:.2f} |")
        else:
            print(f"\n{'allocation workload':28} {'wall s':>8} {'x plain':>8}")
            for h in how:
                print(f"{names[h]:28} {med[h]:8.2f} {med[h] / med['plain']:8.2f}")


if __name__ == "__main__":
    main()