"""Load driver benchmark: `memcreep load` against wrk (HTTP/1.1) and h2load
(h2c) on the same nginx on 127.0.0.1, same connections and streams, 50 B and
90 KB bodies. Runs are interleaved and repeated; medians are printed with
the ratio to the peer measured in the same run.
usage: run_load.py --memcreep PATH [--reps N] [--seconds S] [--markdown]"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def nginx_conf(d):
    """Writes a private nginx configuration under d (one HTTP/1.1 port, one
    h2c port, 50 B /small and 90 KB /big); returns (nginx argv, ports)."""
    www = os.path.join(d, "www")
    os.makedirs(www)
    with open(os.path.join(www, "small"), "w") as f:
        f.write("a" * 50)
    with open(os.path.join(www, "big"), "w") as f:
        f.write("b" * 92160)
    os.chmod(d, 0o755)
    p1 = free_port()
    p2 = free_port()
    while p2 == p1:  # the kernel may hand the same free port out twice
        p2 = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = f"""{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile off;
  keepalive_requests 100000000;
  client_body_temp_path {d}/t1; proxy_temp_path {d}/t2; fastcgi_temp_path {d}/t3;
  uwsgi_temp_path {d}/t4; scgi_temp_path {d}/t5;
  server {{ listen 127.0.0.1:{p1}; root {www}; }}
  server {{ listen 127.0.0.1:{p2} http2; root {www}; }}
}}
"""
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    argv = [shutil.which("nginx") or "/usr/sbin/nginx", "-c", os.path.join(d, "nginx.conf"),
            "-p", d, "-e", f"{d}/error.log"]
    return argv, p1, p2


def wait_ports(*ports):
    for port in ports:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)


def start_nginx(d):
    argv, p1, p2 = nginx_conf(d)
    proc = subprocess.Popen(argv)
    wait_ports(p1, p2)
    return proc, p1, p2


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=600).stdout


def wrk(url, conns, secs):
    out = run(["wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--latency", url])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"\s50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out)
    conv = {"us": 1, "ms": 1000, "s": 1e6}
    return rps, float(p50.group(1)) * conv[p50.group(2)], float(p99.group(1)) * conv[p99.group(2)]


def h2load(url, conns, streams, secs):
    out = run(["h2load", f"-c{conns}", f"-m{streams}", f"-D{secs}", url])
    rps = float(re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out).group(1))
    m = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)",
                  out)
    conv = {"us": 1, "ms": 1000, "s": 1e6}
    mean = float(m.group(5)) * conv[m.group(6)] if m else 0
    return rps, mean, None


def mc(memcreep, url, conns, streams, secs, h2):
    argv = [memcreep, "load", url, "-c", str(conns), "-d", str(secs), "--json", "-q"]
    if h2:
        argv += ["--proto", "h2", "-m", str(streams)]
    s = json.loads(run(argv))
    lat = s["latency_us"]
    return s["requests_per_s"], (lat["mean"] if h2 else lat["p50"]), lat["p99"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    for tool in ("wrk", "h2load"):
        if not shutil.which(tool):
            sys.exit(f"run_load: {tool} is not installed (scripts/deps.sh bench)")
    d = tempfile.mkdtemp(prefix="mc-bench-nginx-")
    proc, p1, p2 = start_nginx(d)
    C, M, S = 16, 10, a.seconds
    cases = []
    for body in ("small", "big"):
        u1, u2 = f"http://127.0.0.1:{p1}/{body}", f"http://127.0.0.1:{p2}/{body}"
        cases.append((f"h1 {body}", "wrk", lambda u=u1: wrk(u, C, S),
                      lambda u=u1: mc(a.memcreep, u, C, 1, S, False)))
        cases.append((f"h2c {body}", "h2load", lambda u=u2: h2load(u, C, M, S),
                      lambda u=u2: mc(a.memcreep, u, C, M, S, True)))
    res = {}
    try:
        for _ in range(a.reps):
            for name, peer, fp, fm in cases:
                res.setdefault((name, "peer"), []).append(fp())
                res.setdefault((name, "mc"), []).append(fm())
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)
    rows = []
    for name, peer, _, _ in cases:
        pr = statistics.median(r[0] for r in res[(name, "peer")])
        mr = statistics.median(r[0] for r in res[(name, "mc")])
        pl = statistics.median(r[1] for r in res[(name, "peer")])
        ml = statistics.median(r[1] for r in res[(name, "mc")])
        rows.append((name, peer, pr, mr, mr / pr, pl, ml))
    hdr = ("case", "peer", "peer req/s", "memcreep req/s", "ratio", "peer lat us", "mc lat us")
    if a.markdown:
        print("| " + " | ".join(hdr) + " |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]:.0f} | {r[3]:.0f} | {r[4]:.2f} | {r[5]:.0f} | {r[6]:.0f} |")
    else:
        print(f"{hdr[0]:10} {hdr[1]:7} {hdr[2]:>11} {hdr[3]:>15} {hdr[4]:>6} {hdr[5]:>12} {hdr[6]:>10}")
        for r in rows:
            print(f"{r[0]:10} {r[1]:7} {r[2]:11.0f} {r[3]:15.0f} {r[4]:6.2f} {r[5]:12.0f} {r[6]:10.0f}")
    print("latency: h1 is p50 for both tools; h2c is the mean (h2load prints no percentiles)")


if __name__ == "__main__":
    main()
