"""Scenario tests of the load driver and of `memcreep run --url`: against
the HTTP fixture server (tests/fixtures/h2_server.c) and against a real
nginx started here on 127.0.0.1. Every server is started by the test and
stopped by it; every load is bounded in count and time.
usage: test_load.py --memcreep PATH --fixtures DIR CASE"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_run  # noqa: E402  (shared helpers)
from test_run import Failure, check  # noqa: E402

ARGS = None


_GIVEN = set()


def free_port():
    """A free port below the kernel's ephemeral range (32768 and up by
    default), so that the many outgoing connections of tests running at the
    same time cannot take it between this check and the server's bind; never
    the same one twice in a test (nginx would merge two servers on it)."""
    import random
    for _ in range(1000):
        port = random.randrange(20000, 32000)
        if port in _GIVEN:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            _GIVEN.add(port)
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise Failure("no free port")


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Failure(f"nothing listens on {port}")


class Server:
    """The fixture server, started and stopped around a block."""

    def __init__(self, *args):
        self.port = free_port()
        self.argv = [os.path.join(ARGS.fixtures, "h2_server"), "--port", str(self.port)]
        self.argv += list(args)

    def __enter__(self):
        self.p = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def __exit__(self, *exc):
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"


def nginx_prelude(d):
    """The start of a private nginx.conf under d (one worker, in the
    foreground, its files under d), and a fresh self-signed RSA-2048
    certificate at d/cert.pem, d/key.pem (openssl comes with
    ca-certificates). The caller closes the http block."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem"],
                   check=True, capture_output=True)
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
  client_body_temp_path {d}/t1; proxy_temp_path {d}/t2; fastcgi_temp_path {d}/t3;
  uwsgi_temp_path {d}/t4; scgi_temp_path {d}/t5;
"""


class Nginx:
    """A private nginx: one HTTP/1.1 port, one h2c port, an access log with
    the connection serial of each request."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mc-nginx-")
        self.p1, self.p2, self.p3 = free_port(), free_port(), free_port()

    def __enter__(self):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        check(os.path.exists(nginx), "nginx is not installed (scripts/deps.sh test)")
        www = os.path.join(self.dir, "www")
        os.makedirs(www)
        with open(os.path.join(www, "small"), "w") as f:
            f.write("a" * 50)
        with open(os.path.join(www, "big"), "w") as f:
            f.write("b" * 92160)
        os.chmod(self.dir, 0o755)
        d = self.dir
        conf = nginx_prelude(d) + f"""\
  log_format conn '$connection $request_uri $status $request_method $http_x_test $content_length';
  access_log {d}/access.log conn;
  sendfile off;
  keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{self.p1}; root {www};
           location = /missing {{ return 404; }} location = /post {{ return 200 "ok"; }} }}
  server {{ listen 127.0.0.1:{self.p2} http2; root {www}; }}
  server {{ listen 127.0.0.1:{self.p3} ssl http2; root {www};
           ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem; }}
}}
"""
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen([nginx, "-c", path, "-p", d, "-e", f"{d}/error.log"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for port in (self.p1, self.p2, self.p3):
                wait_port(port)
        except Failure:
            with open(os.path.join(d, "error.log")) as f:
                raise Failure("nginx did not start: " + f.read()[-500:])
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        with open(os.path.join(self.dir, "access.log")) as f:
            return [l.split() for l in f if l.strip()]


def load(args, timeout=60):
    """memcreep load ... --json; returns (exit code, summary or None, stderr)."""
    rc, out, err = test_run.memcreep(["load"] + args + ["--json"], timeout=timeout)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, None, err


def expect_load(args, n=None):
    rc, s, err = load(args)
    check(rc == 0 and s, f"load {args}: exit {rc}: {err}")
    if n is not None:
        check(s["requests"] == n, f"load {args}: {s['requests']} requests, expected {n}")
    return s


# ---- against nginx ----

def case_nginx():
    with Nginx() as ng:
        s = expect_load([f"http://127.0.0.1:{ng.p1}/small", "-n", "2000", "-c", "8"], 2000)
        check(s["status"]["2xx"] == 2000 and sum(s["errors"].values()) == 0, f"h1: {s}")
        check(s["connections"] == 8, f"h1 opened {s['connections']} connections, expected 8")
        check(s["body_bytes"] == 2000 * 50, f"h1 body bytes {s['body_bytes']}")
        check(s["latency_us"]["p50"] <= s["latency_us"]["p99"] <= s["latency_us"]["max"],
              "percentiles out of order")

        s = expect_load([f"http://127.0.0.1:{ng.p1}/missing", "-n", "300", "-c", "4"], 300)
        check(s["status"]["4xx"] == 300, f"status counts {s['status']}")

        before = len(ng.log())
        s = expect_load([f"http://127.0.0.1:{ng.p1}/small", "-n", "500", "-c", "4",
                         "--new-conn"], 500)
        # nginx may write the last line of the run before a little late:
        # only this run's requests (to /small) count.
        lines = [l for l in ng.log()[before:] if l[1] == "/small"]
        conns = {l[0] for l in lines}
        check(len(lines) == 500 and len(conns) == 500,
              f"--new-conn: {len(lines)} requests on {len(conns)} connections at nginx")
        check(s["connections"] == 500, f"--new-conn: {s['connections']} connections opened")

        s = expect_load([f"http://127.0.0.1:{ng.p2}/big", "--proto", "h2", "-n", "2000", "-c",
                         "4", "-m", "10"], 2000)
        check(s["status"]["2xx"] == 2000 and s["body_bytes"] == 2000 * 92160, f"h2c: {s}")
        check(s["connections"] == 4, f"h2c connections {s['connections']}")

        urls = os.path.join(ng.dir, "urls.txt")
        with open(urls, "w") as f:
            f.write(f"http://127.0.0.1:{ng.p1}/small?seq={{seq}}\n"
                    f"# a comment\nhttp://127.0.0.1:{ng.p1}/big?r={{rand:1000}}\n")
        before = len(ng.log())
        expect_load(["--urls", urls, "-n", "400", "-c", "4"], 400)
        lines = ng.log()[before:]
        seqs = {l[1] for l in lines if l[1].startswith("/small")}
        bigs = [l for l in lines if l[1].startswith("/big?r=")]
        check(len(seqs) == 200 and len(bigs) == 200, f"--urls: {len(seqs)} seq, {len(bigs)} big")

        body = os.path.join(ng.dir, "body.json")
        with open(body, "w") as f:
            f.write('{"x": ' + "1" * 1000 + "}")
        before = len(ng.log())
        s = expect_load([f"http://127.0.0.1:{ng.p1}/post", "-n", "50", "-c", "2", "--body-file",
                         body, "-H", "X-Test: 42", "-H", "Content-Type: application/json"], 50)
        lines = ng.log()[before:]
        check(s["status"]["2xx"] == 50 and all(l[3] == "POST" and l[4] == "42" for l in lines),
              f"POST with headers: {lines[:2]}")
        # The body went out whole: Content-Length says so, and 50 requests on
        # 2 kept-alive connections parsed fine after it.
        check(all(l[5] == str(os.path.getsize(body)) for l in lines) and s["connections"] == 2,
              f"request body: {lines[:2]}, {s['connections']} connections")
        s = expect_load([f"http://127.0.0.1:{ng.p1}/big", "-X", "HEAD", "-n", "20", "-c", "2"], 20)
        check(s["status"]["2xx"] == 20 and s["body_bytes"] == 0, f"HEAD: {s}")

        # TLS: HTTP/1.1 and ALPN h2, self-signed so -k; without -k it fails.
        tls = f"https://127.0.0.1:{ng.p3}/small"
        s = expect_load([tls, "-k", "-n", "300", "-c", "4"], 300)
        check(s["status"]["2xx"] == 300 and s["connections"] == 4, f"https h1: {s}")
        s = expect_load([tls, "-k", "--proto", "h2", "-n", "300", "-c", "2", "-m", "8"], 300)
        check(s["status"]["2xx"] == 300 and s["connections"] == 2, f"https h2: {s}")
        rc, s2, err = load([tls, "-n", "10", "-c", "1", "--timeout", "2"])
        check(rc == 3 and "TLS handshake failed" in err, f"unverified TLS: exit {rc}: {err}")

        t = time.time()
        s = expect_load([f"http://127.0.0.1:{ng.p1}/small", "--rate", "200", "-d", "2", "-c",
                         "4"])
        check(300 <= s["requests"] <= 460 and time.time() - t < 10,
              f"--rate 200 for 2 s gave {s['requests']} requests")


# ---- against the fixture server ----

def case_fixture():
    with Server() as sv:
        s = expect_load([sv.url(), "-n", "1000", "-c", "4"], 1000)
        check(s["status"]["2xx"] == 1000 and s["body_bytes"] == 1000 * 92160, f"h1: {s}")
        s = expect_load([sv.url(), "--proto", "h2", "-n", "1000", "-c", "2", "-m", "8"], 1000)
        check(s["status"]["2xx"] == 1000, f"h2: {s}")
    with Server("--misbehave", "503") as sv:
        s = expect_load([sv.url(), "-n", "400", "-c", "1"], 400)
        check(s["status"]["5xx"] == 100 and s["status"]["2xx"] == 300, f"503s: {s['status']}")


def case_bad_servers():
    """Bad servers give counted errors and a summary, never a hang."""
    cases = [("garbage", [], "protocol"), ("close-mid", [], "reset"),
             ("reset", ["--proto", "h2"], "reset"),
             ("stall", ["--timeout", "0.3"], "timeout")]
    for mode, extra, kind in cases:
        with Server("--misbehave", mode) as sv:
            t = time.time()
            rc, s, err = load([sv.url(), "-n", "20", "-c", "2"] + extra, timeout=60)
            check(rc == 0 and s, f"{mode}: exit {rc}: {err}")
            check(s["errors"][kind] >= 2 and s["ok"] == 0,
                  f"{mode}: errors {s['errors']}, ok {s['ok']}")
            check(time.time() - t < 30, f"{mode}: took {time.time() - t:.0f} s")


ONE_AT_A_TIME = ("import http.server, sys\n"
                 "class H(http.server.BaseHTTPRequestHandler):\n"
                 "    protocol_version = 'HTTP/1.1'\n"
                 "    def do_GET(self):\n"
                 "        self.send_response(200)\n"
                 "        self.send_header('Content-Length', '2')\n"
                 "        self.end_headers()\n"
                 "        self.wfile.write(b'ok')\n"
                 "    def log_message(self, *a): pass\n"
                 "class S(http.server.HTTPServer):\n"
                 "    def handle_error(self, *a): pass  # clients that left\n"
                 "S(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n")


def case_one_at_a_time():
    """A server that serves one connection at a time (a blocking loop over
    accept, keep-alive): with 4 connections one gets every answer and the
    load says so, suggesting -c 1; with -c 1 it does not."""
    port = free_port()
    p = subprocess.Popen(["/usr/bin/python3", "-c", ONE_AT_A_TIME, str(port)])
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}/"
        rc, s, err = load([url, "-c", "4", "-d", "2", "--timeout", "1"], timeout=60)
        check(rc == 0 and s and s["connections_answered"] <= 2 and
              "one connection at a time; try -c 1" in s.get("warning", ""),
              f"4 connections: exit {rc}, {s and {k: s.get(k) for k in ('connections_answered', 'warning', 'ok')}}: {err}")
        rc, out, err = test_run.memcreep(["load", url, "-c", "4", "-d", "1", "--timeout", "1"],
                                         timeout=60)
        check(rc == 0 and "warning      " in out and "connections got no answer" in out,
              f"text summary: {out}{err}")
        rc, s, err = load([url, "-c", "1", "-d", "1"], timeout=60)
        check(rc == 0 and s and "warning" not in s and s["ok"] >= 10, f"-c 1: {s}: {err}")
    finally:
        p.terminate()
        p.wait(timeout=10)


def case_bad_input():
    port = free_port()  # nothing listens there
    cases = [([f"http://127.0.0.1:{port}/", "-n", "10", "--timeout", "1"], 3, "cannot connect"),
             (["ftp://127.0.0.1/"], 2, "unsupported scheme"),
             (["http//nope"], 2, "malformed URL"),
             (["http://127.0.0.1:99999/"], 2, "bad port"),
             (["http://127.0.0.1/", "--proto", "h3"], 2, "--proto"),
             (["http://127.0.0.1/", "-c", "0"], 2, "out of range"),
             (["http://127.0.0.1/", "-H", "nocolon"], 2, "--header"),
             ([], 2, "needs a URL")]
    d = tempfile.mkdtemp(prefix="mc-mix-")
    mixes = {"notjson": "[{\"url\": ", "notarray": "{\"url\": \"http://127.0.0.1/\"}",
             "nourl": "[{\"weight\": 2}]", "badkey": "[{\"url\": \"http://127.0.0.1/\", \"wieght\": 2}]",
             "badweight": "[{\"url\": \"http://127.0.0.1/\", \"weight\": 0}]",
             "nobody": "[{\"url\": \"http://127.0.0.1/\", \"body_file\": \"missing.bin\"}]",
             "twohosts": "[{\"url\": \"http://127.0.0.1:1/\"}, {\"url\": \"http://127.0.0.1:2/\"}]",
             "ok": "[{\"url\": \"http://127.0.0.1/\"}]"}
    for name, text in mixes.items():
        with open(os.path.join(d, name + ".json"), "w") as f:
            f.write(text)
    mix = lambda name: ["--mix", os.path.join(d, name + ".json")]  # noqa: E731
    cases += [(mix("notjson"), 2, "notjson.json:1"), (mix("notarray"), 2, "JSON array"),
              (mix("nourl"), 2, "no \"url\""), (mix("badkey"), 2, "unknown key 'wieght'"),
              (mix("badweight"), 2, "\"weight\" takes a whole number"),
              (mix("nobody"), 2, "cannot read body_file"),
              (mix("twohosts"), 2, "share scheme, host and port"),
              (mix("nothere"), 2, "cannot read --mix file"),
              (mix("ok") + ["-X", "POST"], 2, "leave out URLs"),
              (mix("ok") + ["http://127.0.0.1/"], 2, "leave out URLs")]
    for args, status, words in cases:
        t = time.time()
        rc, _, err = test_run.memcreep(["load"] + args, timeout=30)
        lines = [l for l in err.splitlines() if l.startswith("memcreep:")]
        check(rc == status, f"{args}: exit {rc}, expected {status}: {err}")
        check(lines and words in lines[0], f"{args}: message {err!r}")
        check(time.time() - t < 15, f"{args}: took too long")


# ---- memcreep run --url ----

def run_url(server_args, extra):
    port = free_port()
    target = [os.path.join(ARGS.fixtures, "h2_server"), "--port", str(port)] + server_args
    out = tempfile.mkdtemp(prefix="mc-scenario-")
    rc, _, err = test_run.memcreep(["run", "-i", "0.05", "-o", out, "--top", "20", "--url",
                                    f"http://127.0.0.1:{port}/"] + extra + ["--"] + target,
                                   timeout=120)
    return out, rc, err


def load_doc(path):
    with open(path) as f:
        return json.load(f)


def case_run_h1_h2_leak():
    """Seed 004: h2 keeps ~360 B per request, h1 nothing; found within 3000
    requests, at the right function, at the right rate."""
    out, rc, err = run_url(["--leak"], ["--proto", "h1,h2", "--rounds", "6",
                                        "--round-requests", "500", "--fail-on-creep"])
    check(rc == 1, f"exit {rc}, expected 1 (creep with --fail-on-creep): {err}")
    h1 = load_doc(os.path.join(out, "h1", "result.json"))
    h2 = load_doc(os.path.join(out, "h2", "result.json"))
    for doc in (h1, h2):
        check(doc["load"]["summary"]["requests"] <= 3100, "more than 3000 requests measured")
        check(len(doc["load"]["rounds"]) == 6, "rounds missing")
    p2 = test_run.root_proc(h2)
    s = test_run.expect_creep(p2, "h2_remember_stream", 92160 // 256)
    check(s["bytes_per_unit"] > 0 and h2["summary"]["verdict"] == "CREEP", "h2 verdict")
    p1 = test_run.root_proc(h1)
    check(not test_run.creeping(p1), f"h1 creeps at {test_run.creeping(p1)}")
    check(h1["summary"]["verdict"] == "STEADY", f"h1 verdict {h1['summary']['verdict']}")
    check("side by side" in err and "h2_remember_stream" in err, "no side-by-side table")
    for part in ("h1/report.html", "h2/growth.pb.gz", "report.html"):
        check(os.path.getsize(os.path.join(out, part)) > 0, f"{part} not written")
    with open(os.path.join(out, "report.html")) as f:
        check(f.read().count("<h2>Load</h2>") == 2, "report.html lacks a protocol")
    rc, text, err = test_run.memcreep(["report", out, "--color", "never"])
    check(rc == 0 and "side by side" in text and text.count("load: h") == 2,
          f"report on an h1,h2 run: exit {rc}: {err}")


def case_run_clean():
    out, rc, err = run_url([], ["--proto", "h1,h2", "--rounds", "6", "--round-requests", "500",
                                "--fail-on-creep"])
    check(rc == 0, f"exit {rc}: {err}")
    for proto in ("h1", "h2"):
        doc = load_doc(os.path.join(out, proto, "result.json"))
        check(doc["summary"]["verdict"] == "STEADY",
              f"{proto}: {doc['summary']['verdict']} at {test_run.creeping(test_run.root_proc(doc))}")
        check(doc["load"]["throughput"]["verdict"] != "FALLING", f"{proto}: throughput falls")


def tls_nginx_conf(d):
    """A TLS-only nginx under d: a fresh RSA-2048 certificate, no session
    cache and no tickets, so that every connection is a full handshake.
    Returns (argv, port)."""
    www = os.path.join(d, "www")
    os.makedirs(www)
    with open(os.path.join(www, "small"), "w") as f:
        f.write("a" * 50)
    os.chmod(d, 0o755)
    port = free_port()
    conf = nginx_prelude(d) + f"""\
  access_log off;
  ssl_session_cache off;
  ssl_session_tickets off;
  server {{ listen 127.0.0.1:{port} ssl; root {www};
           ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem; }}
}}
"""
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    check(os.path.exists(nginx), "nginx is not installed (scripts/deps.sh test)")
    return [nginx, "-c", f"{d}/nginx.conf", "-p", d, "-e", f"{d}/error.log"], port


def case_run_nginx_tls():
    """Debian's nginx doing a full TLS handshake per request under full
    tracking: every request answered, the allocations of libssl and
    libcrypto tracked with their stacks, and no creep found."""
    d = tempfile.mkdtemp(prefix="mc-nginx-tls-")
    argv, port = tls_nginx_conf(d)
    out = os.path.join(d, "run")
    # Every stack walked also by libunwind (MEMCREEP_UNWIND_CHECK): the
    # library's walk must give the same through libssl and libcrypto.
    rc, _, err = test_run.memcreep(["run", "-i", "0.05", "-o", out, "--top", "20", "--url",
                                    f"https://127.0.0.1:{port}/small", "-k", "--new-conn",
                                    "-c", "4", "--warmup", "200", "--rounds", "6",
                                    "--round-requests", "300", "--fail-on-creep", "--"] + argv,
                                   timeout=150, env=dict(os.environ, MEMCREEP_UNWIND_CHECK="1"))
    try:
        check(rc == 0, f"exit {rc}, expected 0 (no creep): {err}")
        checks = re.findall(r"unwind check: (\d+) captures, (\d+) differed", err)
        check(checks and sum(int(c) for c, _ in checks) > 10000,
              f"the unwind check did not run: {err}")
        check(all(d == "0" for _, d in checks), f"stacks differ from libunwind's: {err}")
        doc = load_doc(os.path.join(out, "result.json"))
        summ = doc["load"]["summary"]
        check(summ["requests"] >= 1800, f"{summ['requests']} requests measured")
        check(sum(summ["errors"].values()) == 0, f"failed requests: {summ['errors']}")
        check(summ["status"].get("2xx", 0) == summ["requests"], f"statuses {summ['status']}")
        check(doc["summary"]["verdict"] == "STEADY", f"verdict {doc['summary']['verdict']}")
        worker = [p for p in doc["processes"]
                  if any(f.get("module") == "libcrypto.so.3"
                         for st in p.get("stacks", []) for f in st["frames"])]
        check(worker, "no stack through libcrypto: the handshakes were not tracked")
        check(not test_run.creeping(worker[0]),
              f"creeping stacks: {test_run.creeping(worker[0])}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def finding(doc, kind):
    """The finding of that kind, or a Failure listing what there is."""
    f = [f for f in doc["summary"]["findings"] if f["kind"] == kind]
    check(f, f"no {kind} in {[f['kind'] for f in doc['summary']['findings']]}")
    return f[0]


def stack_functions(st, n=4):
    """The functions of a finding's stack from its site on."""
    return [fr["function"] for fr in st["frames"][st["site"]:st["site"] + n]]


def case_fd_error_path():
    """A client that keeps one socket per 4 requests on its 503 path (the
    server answers 503 to every 4th): SOCKET CREEP at the line that opened
    the socket, in CLOSE_WAIT, 0.25 per request. The same client closing
    properly is CONNECTION CHURN only; with a pool, nothing."""
    with Server("--misbehave", "503", "--body", "100") as srv:
        client = [os.path.join(ARGS.fixtures, "http_client"), "3000", "1000"]
        doc, _, err = test_run.run_target(client + ["leak-on-503", str(srv.port)],
                                          ["--fail-on-creep"], expect_rc=1)
        p = test_run.root_proc(doc)
        for metric in ("sockets", "tcp_close_wait"):
            m = p["metrics"][metric]
            rate = m["per_unit"] * 1000
            check(m["verdict"] == "CREEP" and abs(rate - 250) <= 25,
                  f"{metric}: {m['verdict']}, {rate:.0f} per 1000 requests, want 250")
        f = finding(doc, "SOCKET CREEP (CLOSE_WAIT: peers closed, we did not)")
        st = f["stacks"][0]
        check("fetch_once" in stack_functions(st) and st["kinds"].get("tcp", 0) >= 700,
              f"opening stack {stack_functions(st)}, kinds {st['kinds']}")
        check(abs(st["per_unit"] * 1000 - 250) <= 25, f"stack rate {st['per_unit'] * 1000:.0f}/1000")
        check(len(f["stacks"]) == 1, f"more than the leaking stack: {f['stacks']}")
        peer = f["peers"][0]
        check(peer["peer"] == f"127.0.0.1:{srv.port}" and peer["state"] == "CLOSE_WAIT" and
              peer["count"] >= 600, f"peers {f['peers']}")
        check("tcp) opened by" in err, "the report does not name the opening stack")
        check(p["descriptors"]["open"].get("tcp", 0) >= 700, f"descriptors {p['descriptors']}")
        check(not test_run.creeping(p), f"memory creeps at {test_run.creeping(p)}")

        doc, rc, err = test_run.run_target(client + ["churn", str(srv.port)], ["--fail-on-creep"])
        check(rc == 0, f"churn: exit {rc}: {err}")
        f = finding(doc, "CONNECTION CHURN")
        check(abs(f["evidence"]["per_unit"] - 1) <= 0.1, f"churn rate {f['evidence']}")
        check("fetch_once" in stack_functions(f["stacks"][0]), f"churn at {f['stacks'][0]}")
        kinds = [f["kind"] for f in doc["summary"]["findings"]]
        check(kinds == ["CONNECTION CHURN"], f"churn: findings {kinds}")

        doc, rc, _ = test_run.run_target(client + ["pooled", str(srv.port)], ["--fail-on-creep"])
        kinds = [f["kind"] for f in doc["summary"]["findings"]]
        check(rc == 0 and not kinds, f"pooled: exit {rc}, findings {kinds}")


def case_run_unjoined_threads():
    """A server starting a thread per connection and never joining it:
    /proc shows no thread growth (each thread ends), but every one keeps
    its stack; THREAD CREEP names the code that starts them, one per
    request. Detaching them is clean."""
    for detach in (False, True):
        port = free_port()
        target = [os.path.join(ARGS.fixtures, "thread_server"), str(port)]
        target += ["--detach"] if detach else []
        out = tempfile.mkdtemp(prefix="mc-scenario-")
        rc, _, err = test_run.memcreep(["run", "-i", "0.05", "-o", out, "--url",
                                        f"http://127.0.0.1:{port}/", "--new-conn", "-c", "2",
                                        "--rounds", "6", "--round-requests", "300",
                                        "--fail-on-creep", "--"] + target, timeout=120)
        doc = load_doc(os.path.join(out, "result.json"))
        p = test_run.root_proc(doc)
        m = p["metrics"]["threads_unjoined"]
        if detach:
            check(rc == 0 and m["end"] == 0 and m["verdict"] != "CREEP",
                  f"detached: exit {rc}, unjoined {m}: {err}")
            continue
        check(rc == 1, f"exit {rc}, expected 1: {err}")
        check(abs(m["per_unit"] - 1) <= 0.1 and m["verdict"] == "CREEP",
              f"unjoined per request {m}")
        f = finding(doc, "THREAD CREEP (ended, never joined nor detached)")
        st = f["stacks"][0]
        check(st["frames"][st["site"]]["function"] == "start_handler" and st["count"] >= 1800,
              f"creator {stack_functions(st)}, {st['count']} threads")
        check(p["metrics"]["threads"]["verdict"] != "CREEP", "threads seen in /proc")
        check("threads ended, not joined from start_handler" in err, "report lacks the creator")


def case_run_throughput_falls():
    """Seed 002: throughput that rots under load is reported as such."""
    out, rc, err = run_url(["--degrade"], ["--rounds", "12", "--round-requests", "200", "-c", "4"])
    check(rc == 0, f"exit {rc}: {err}")
    doc = load_doc(os.path.join(out, "result.json"))
    tp = doc["load"]["throughput"]
    check(tp["verdict"] == "FALLING" and tp["last"] < tp["first"] * 0.8, f"throughput {tp}")
    check("throughput FALLING" in err, "the report does not say throughput falls")
    check(all("delta_live_heap" in r for r in doc["load"]["rounds"]), "rounds lack deltas")


def case_run_workload():
    """--workload: someone else's load script; growth per minute."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    wl = f"{ARGS.memcreep} load {url} --proto h2 -c 2 -m 4 --rate 1500 -d 3 -q"
    target = [os.path.join(ARGS.fixtures, "h2_server"), "--port", str(port), "--leak"]
    out = tempfile.mkdtemp(prefix="mc-scenario-")
    rc, _, err = test_run.memcreep(["run", "-i", "0.1", "-o", out, "--url", url, "--workload",
                                    wl, "--"] + target, timeout=120)
    check(rc == 0, f"exit {rc}: {err}")
    doc = load_doc(os.path.join(out, "result.json"))
    check(doc["run"]["stopped_by"] == "workload done", f"stopped by {doc['run']['stopped_by']}")
    p = test_run.root_proc(doc)
    found = test_run.stacks_at(p, "h2_remember_stream")
    check(found and found[0]["verdict"] == "CREEP" and found[0]["bytes_per_min"] > 0,
          "workload: leak not found per minute")


def case_run_mix():
    """A request mix: nine GETs to one POST that carries a 4000-byte body the
    server keeps (keep_post_body). Requests go in exact proportion to the
    weights, each kind is counted apart, and the leak is found at its
    function at 4000 / 10 bytes per request of the mix."""
    port = free_port()
    d = tempfile.mkdtemp(prefix="mc-mix-")
    with open(os.path.join(d, "upload.bin"), "wb") as f:
        f.write(b"\x00\x01" * 2000)
    mix = [{"url": f"http://127.0.0.1:{port}/items/{{seq}}", "weight": 9, "name": "list"},
           {"url": f"http://127.0.0.1:{port}/upload", "method": "POST", "weight": 1,
            "headers": {"Content-Type": "application/octet-stream"}, "body_file": "upload.bin"}]
    with open(os.path.join(d, "mix.json"), "w") as f:
        json.dump(mix, f)
    target = [os.path.join(ARGS.fixtures, "h2_server"), "--port", str(port), "--body", "200",
              "--keep-posts"]
    out = tempfile.mkdtemp(prefix="mc-scenario-")
    rc, _, err = test_run.memcreep(["run", "-o", out, "--mix", os.path.join(d, "mix.json"),
                                    "--rounds", "6", "--round-requests", "1000",
                                    "--fail-on-creep", "--"] + target, timeout=120)
    check(rc == 1, f"exit {rc}, expected 1 (creep with --fail-on-creep): {err}")
    doc = load_doc(os.path.join(out, "result.json"))
    s = doc["load"]["summary"]
    kinds = {m["name"]: m for m in s["mix"]}
    check(set(kinds) == {"list", "POST /upload"}, f"kinds {sorted(kinds)}")
    post, get = kinds["POST /upload"], kinds["list"]
    check(post["requests"] + get["requests"] == s["requests"], "kinds do not add up")
    check(post["requests"] * 10 == s["requests"] and post["ok"] == post["requests"],
          f"POST {post['requests']} of {s['requests']}, expected one in ten")
    test_run.expect_creep(test_run.root_proc(doc), "keep_post_body", 4000 / 10)
    test_run.expect_only_creep(test_run.root_proc(doc), ["keep_post_body"])
    rc, text, err = test_run.memcreep(["report", out, "--color", "never"])
    check(rc == 0 and "POST /upload 10.0%" in text, f"report: no mix line: {err}")
    # memcreep load prints the same split.
    srv = subprocess.Popen(target, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        rc, text, err = test_run.memcreep(["load", "--mix", os.path.join(d, "mix.json"), "-n",
                                           "2000", "-c", "4", "-q"])
        check(rc == 0, f"load --mix: exit {rc}: {err}")
        row = [l.split() for l in text.splitlines() if l.strip().startswith("POST /upload")]
        check(row and row[0][2] == "200" and row[0][4] == "10.0%", f"load --mix rows: {text}")
    finally:
        srv.terminate()
        srv.wait(timeout=10)


def case_run_never_listens():
    port = free_port()
    t = time.time()
    rc, _, err = test_run.memcreep(["run", "--url", f"http://127.0.0.1:{port}/",
                                    "--listen-timeout", "1", "--", "/bin/sleep", "30"], timeout=60)
    check(rc == 3 and "never listened" in err, f"exit {rc}: {err}")
    check(time.time() - t < 20, "did not give up in time")


if __name__ == "__main__":
    sys.exit(test_run.run_case(globals()))
