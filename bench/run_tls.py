"""A real TLS server under full tracking: nginx from Debian with a
self-signed RSA-2048 certificate, no session reuse (every request a new
connection and a full handshake, hundreds of blocks allocated in libssl and
libcrypto with deep stacks), driven by `memcreep load https://... -k
--new-conn`. nginx runs plain, under `memcreep run` and under heaptrack;
runs are interleaved and repeated, and the medians of requests/s and of the
worker's peak RSS are printed with their ratios to plain.
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

from run_load import free_port, run, wait_ports


def tls_conf(d):
    """Writes nginx.conf and a fresh self-signed certificate under d;
    returns (nginx argv, port)."""
    www = os.path.join(d, "www")
    os.makedirs(www)
    with open(os.path.join(www, "small"), "w") as f:
        f.write("a" * 50)
    os.chmod(d, 0o755)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", os.path.join(d, "key.pem"),
                    "-out", os.path.join(d, "cert.pem")], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
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
  client_body_temp_path {d}/t1; proxy_temp_path {d}/t2; fastcgi_temp_path {d}/t3;
  uwsgi_temp_path {d}/t4; scgi_temp_path {d}/t5;
  ssl_session_cache off;
  ssl_session_tickets off;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {d}/cert.pem;
    ssl_certificate_key {d}/key.pem;
    root {www};
  }}
}}
"""
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    argv = [shutil.which("nginx") or "/usr/sbin/nginx", "-c", os.path.join(d, "nginx.conf"),
            "-p", d, "-e", f"{d}/error.log"]
    return argv, port


def worker_hwm_kib(d):
    """The nginx worker's peak RSS (VmHWM) so far, in KiB."""
    with open(os.path.join(d, "nginx.pid")) as f:
        master = int(f.read())
    with open(f"/proc/{master}/task/{master}/children") as f:
        worker = int(f.read().split()[0])
    with open(f"/proc/{worker}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def one(memcreep, how, conns, secs):
    """One run: nginx plain, under memcreep or under heaptrack; returns
    (req/s, worker peak RSS KiB, failed requests)."""
    d = tempfile.mkdtemp(prefix="mc-bench-tls-")
    argv, port = tls_conf(d)
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
