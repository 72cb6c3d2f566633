#!/usr/bin/python3
"""Report format tests: every rendering of a saved run (tests/report/golden)
against what it must be. Usage: test_report.py --memcreep BIN CASE
[--update]; --update rewrites the expected text files from the current
renderer (check the diff before committing them)."""
import argparse
import gzip
import json
import os
import pty
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scenario"))
from test_run import Failure, check  # noqa: E402  (the scenario tests' helpers)

GOLDEN = os.path.join(HERE, "golden")
WIDTH = 100


def memcreep(args, timeout=60, binary=False, cwd=None):
    """Runs memcreep; returns (exit code, stdout, stderr), bytes when binary."""
    p = subprocess.run([ARGS.memcreep] + args, capture_output=True, text=not binary,
                       timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def golden(name):
    return os.path.join(GOLDEN, name)


def compare(rendered, expected_path):
    """The rendering against its expected file (rewritten with --update)."""
    if ARGS.update:
        with open(expected_path, "w") as f:
            f.write(rendered)
        return
    with open(expected_path) as f:
        want = f.read()
    if rendered != want:
        import difflib
        d = "".join(difflib.unified_diff(want.splitlines(True), rendered.splitlines(True),
                                         expected_path, "rendered", n=1))
        raise Failure(f"{os.path.relpath(expected_path, HERE)} differs:\n{d[:4000]}")


def width_ok(text, what):
    wide = [ln for ln in text.splitlines() if len(ln) > WIDTH]
    check(not wide, f"{what}: {len(wide)} lines wider than {WIDTH}: {wide[:2]}")


RUNS = ["leak_linear", "clean_steady", "close_wait", "h2_leak", "py_keep"]


def case_golden():
    """The text report of each saved run, as expected, inside 100 columns;
    --top shortens it; the diff of a leaking and a clean run."""
    for name in RUNS:
        rc, out, err = memcreep(["report", golden(name), "--color", "never", "--top", "3"])
        check(rc == 0 and not err, f"{name}: exit {rc}: {err}")
        width_ok(out, name)
        check("\033[" not in out, f"{name}: colours with --color never")
        compare(out, os.path.join(golden(name), "report.txt"))
    rc, full, _ = memcreep(["report", golden("leak_linear"), "--color", "never", "--top", "0"])
    rc, one, _ = memcreep(["report", golden("leak_linear"), "--color", "never", "--top", "1"])
    check(full.count(" at ") > one.count(" at ") == 1, "--top 1 shows one stack per process")
    check("more stacks in the JSON result" in one, "--top 1 does not say what it left out")
    rc, out, err = memcreep(["diff", "leak_linear", "clean_steady"], cwd=GOLDEN)
    check(rc == 0, f"diff: exit {rc}: {err}")
    width_ok(out, "diff")
    compare(out, os.path.join(GOLDEN, "diff.txt"))


def verdicts(doc):
    """Every verdict of a result: the summary's, each metric's (processes
    and tree), each stack's, and the findings' codes."""
    v = {"summary": doc["summary"]["verdict"],
         "findings": sorted((f["code"], f["pid"]) for f in doc["summary"]["findings"]),
         "tree": {k: m["verdict"] for k, m in doc["tree"]["metrics"].items()}}
    for p in doc["processes"]:
        v[p["pid"]] = {"metrics": {k: m["verdict"] for k, m in p["metrics"].items()},
                       "stacks": [(s["id"], s["verdict"]) for s in p.get("stacks", [])]}
    return v


def case_reanalyze():
    """report --reanalyze judges each saved run again from its series and
    comes to the verdicts it was saved with; version 1 documents read as
    version 2, their findings with codes and severities."""
    for name in RUNS:
        d = golden(name)
        parts = [d] if os.path.exists(os.path.join(d, "result.json")) else \
            [os.path.join(d, "h1"), os.path.join(d, "h2")]
        for part in parts:
            rc, saved, err = memcreep(["report", part, "--format", "json"])
            check(rc == 0, f"{name}: exit {rc}: {err}")
            rc, again, err = memcreep(["report", part, "--format", "json", "--reanalyze"])
            check(rc == 0 and not err, f"{name} --reanalyze: exit {rc}: {err}")
            saved, again = json.loads(saved), json.loads(again)
            check(saved["version"] == again["version"] == 2, f"{name}: version {saved['version']}")
            for f in saved["summary"]["findings"]:
                check(f.get("code") and f.get("severity"), f"{name}: finding without a code: {f}")
            check(verdicts(saved) == verdicts(again),
                  f"{name}: verdicts differ once reanalyzed:\n{verdicts(saved)}\n{verdicts(again)}")
    # A rule that judges differently shows: the same run with a min growth
    # above what leak_linear grew is STEADY once reanalyzed.
    with open(os.path.join(golden("leak_linear"), "result.json")) as f:
        doc = json.load(f)
    doc["run"]["min_growth"] = 1e12
    tmp = tempfile.mkdtemp(prefix="mc-reanalyze-")
    with open(os.path.join(tmp, "result.json"), "w") as f:
        json.dump(doc, f)
    rc, out, err = memcreep(["report", tmp, "--format", "json", "--reanalyze"])
    again = json.loads(out)
    check(rc == 0 and again["summary"]["verdict"] == "STEADY",
          f"reanalyzed with a huge min growth: {again['summary']['verdict']} ({err})")
    check(all(s["verdict"] != "CREEP" for p in again["processes"] for s in p.get("stacks", [])),
          "a stack still CREEP under a min growth it never reached")
    # Nothing to judge: one clear line, exit status 2.
    doc["processes"] = []
    with open(os.path.join(tmp, "result.json"), "w") as f:
        json.dump(doc, f)
    rc, out, err = memcreep(["report", tmp, "--reanalyze"])
    check(rc == 2 and "cannot reanalyze" in err and err.count("\n") == 1,
          f"no processes: exit {rc}, {err!r}")


def case_colour():
    """Colours on a terminal (--color auto), none through a pipe; always
    and never as asked."""
    rc, piped, _ = memcreep(["report", golden("leak_linear")])
    check(rc == 0 and "\033[" not in piped, "colours through a pipe")
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(ARGS.memcreep, [ARGS.memcreep, "report", golden("leak_linear")])
    chunks = []
    while True:
        try:
            b = os.read(fd, 65536)
        except OSError:
            break
        if not b:
            break
        chunks.append(b)
    _, status = os.waitpid(pid, 0)
    tty = b"".join(chunks).decode().replace("\r\n", "\n")
    check(os.waitstatus_to_exitcode(status) == 0, f"on a terminal: status {status}")
    check("\033[1;31mCREEP\033[0m" in tty, "no colour on a terminal")
    # The same words, only the colours added.
    check(re.sub(r"\033\[[0-9;]*m", "", tty) == piped, "the terminal text differs beyond colours")
    width_ok(re.sub(r"\033\[[0-9;]*m", "", tty), "terminal")
    rc, always, _ = memcreep(["report", golden("leak_linear"), "--color", "always"])
    check("\033[1;31m" in always, "--color always gives no colour")


# ---- HTML in a real browser (Debian's chromium, headless) ----

# The colours the charts draw with (src/report/html.h).
LINE = (0x1f, 0x6f, 0xb4)
LINE2 = (0xe8, 0x71, 0x0a)


def png_pixels(path):
    """The pixels of an 8-bit RGB or RGBA PNG as (width, height, rows of
    bytes, bytes per pixel); enough of PNG for chromium's screenshots."""
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG")
    at, idat = 8, b""
    while at < len(data):
        n, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            check(depth == 8 and ctype in (2, 6), f"PNG depth {depth} colour type {ctype}")
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):  # the five PNG filters (RFC 2083, 6.)
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


def count_colour(rows, bpp, rgb, tol=24):
    n = 0
    for row in rows:
        for i in range(0, len(row), bpp):
            if all(abs(row[i + k] - rgb[k]) <= tol for k in range(3)):
                n += 1
    return n


class Recorder:
    """A proxy that answers nothing and records every request the browser
    sends through it: with it as the browser's only way out, a page that
    fetches anything leaves a trace here."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(32)
        self.port = self.s.getsockname()[1]
        self.seen = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            c.settimeout(2)
            try:
                line = c.recv(4096).split(b"\r\n")[0].decode(errors="replace")
                # A connection closed before any request (a browser's
                # speculative preconnect, common on a loaded machine) asked
                # for nothing.
                if line:
                    self.seen.append(line)
            except OSError:
                pass
            c.close()

    def page_requests(self):
        """What was asked for other than the browser's own services."""
        own = re.compile(r"(google\.com|googleapis\.com|gstatic\.com|gvt1\.com)(:\d+)?[/ ]")
        return [r for r in self.seen if not own.search(r)]


def chromium(page, rec, *extra, timeout=90):
    """Runs headless chromium on a local page with rec as its only proxy."""
    exe = shutil.which("chromium")
    check(exe, "chromium is not installed (scripts/deps.sh test)")
    prof = tempfile.mkdtemp(prefix="mc-chromium-")
    try:
        p = subprocess.run([exe, "--headless=new", "--no-sandbox", "--disable-gpu",
                            "--hide-scrollbars", "--disable-dev-shm-usage", f"--user-data-dir={prof}",
                            "--no-first-run",
                            "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--disable-default-apps",
                            f"--proxy-server=http://127.0.0.1:{rec.port}",
                            "--proxy-bypass-list=<-loopback>"] + list(extra) +
                           ["file://" + page], capture_output=True, text=True, timeout=timeout)
        return p.stdout
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def render_html(args, tmp, name="report.html"):
    path = os.path.join(tmp, name)
    rc, out, err = memcreep(args)
    check(rc == 0 and out.startswith("<!DOCTYPE html>"), f"{args}: exit {rc}: {err}")
    with open(path, "w") as f:
        f.write(out)
    return path, out


def case_html():
    """report.html of a leaking run in headless chromium, its only way out a
    recording proxy: the charts, the requests' line and the flame graph are
    on the screenshot; each stack unfolds to its frames; the page asked for
    nothing (a control page that does fetch shows the proxy would see it)."""
    tmp = tempfile.mkdtemp(prefix="mc-report-")
    rec = Recorder()
    try:
        path, html = render_html(["report", golden("leak_linear"), "--format", "html"], tmp)
        # Self-contained: nothing to load, in the markup either.
        refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"' >]+)""", html)
        check(not refs, f"the page refers to {refs[:3]}")
        png = os.path.join(tmp, "shot.png")
        chromium(path, rec, "--window-size=1400,2400", f"--screenshot={png}")
        check(os.path.exists(png), "chromium made no screenshot")
        w, h, rows, bpp = png_pixels(png)
        line, line2 = count_colour(rows, bpp, LINE), count_colour(rows, bpp, LINE2)
        # Six charts of ~270 px wide lines, the growing stack's chart, the
        # requests' dashed line in each of the six.
        check(line > 2000, f"the charts' lines: {line} pixels")
        check(line2 > 800, f"the work units' line: {line2} pixels")
        flame = sum(1 for row in rows[h // 2:] for i in range(0, len(row), bpp)
                    if row[i] >= 200 and 85 <= row[i + 1] <= 205 and 35 <= row[i + 2] <= 85)
        check(flame > 20000, f"the flame graph: {flame} pixels")
        dom = chromium(path, rec, "--dump-dom")
        check(dom.count("<svg") >= 8, f"{dom.count('<svg')} charts in the page's DOM")
        import json
        with open(os.path.join(golden("leak_linear"), "result.json")) as f:
            doc = json.load(f)
        frames = doc["processes"][0]["stacks"][0]["frames"]
        block = re.search(r"<details>.*?</details>", dom, re.S)
        check(block and block.group(0).count("<li") == len(frames),
              f"the first stack does not unfold to its {len(frames)} frames")
        check("leaky_store" in block.group(0), "the first stack is not the leak")
        asked = rec.page_requests()
        check(not asked, f"the page asked the network for {asked}")
        # The proxy does see what a page fetches.
        ctl = os.path.join(tmp, "control.html")
        with open(ctl, "w") as f:
            f.write('<html><body><img src="http://memcreep-check.invalid/x.png"></body></html>')
        chromium(ctl, rec, "--dump-dom")
        time.sleep(0.5)
        check(any("memcreep-check.invalid" in r for r in rec.page_requests()),
              f"the control page's fetch went unseen: {rec.seen}")
    finally:
        rec.s.close()
        shutil.rmtree(tmp, ignore_errors=True)


def case_html_runs():
    """Every saved run renders as a page (Python types, load rounds, h1 and
    h2 side by side); diff --format html draws both runs; bad formats are
    refused."""
    tmp = tempfile.mkdtemp(prefix="mc-report-")
    rec = Recorder()
    try:
        _, html = render_html(["report", golden("py_keep"), "--format", "html"], tmp)
        for want in ("__main__.Record", "__main__.HISTORY &gt; list", "py_service.py:29",
                     "requests/s per round", "- - requests"):
            check(want in html, f"py_keep page lacks {want!r}")
        _, html = render_html(["report", golden("h2_leak"), "--format", "html"], tmp)
        check(html.count("<h2>Load</h2>") == 2 and "h2_remember_stream" in html,
              "the h1,h2 page lacks a protocol")
        _, html = render_html(["report", golden("close_wait"), "--format", "html"], tmp)
        check("CLOSE_WAIT &times;" in html and "keep_close_wait" in html, "close_wait page")
        path, html = render_html(["diff", golden("h2_leak/h1"), golden("h2_leak/h2"),
                                  "--format", "html"], tmp, "diff.html")
        check(html.count("<svg") >= 4 and "h2_remember_stream" in html and ">new<" in html,
              "the diff page lacks its charts or the new stack")
        png = os.path.join(tmp, "diff.png")
        chromium(path, rec, "--window-size=1300,1200", f"--screenshot={png}")
        _, _, rows, bpp = png_pixels(png)
        b = count_colour(rows, bpp, (0x7b, 0x3f, 0xb2))
        check(b > 500 and count_colour(rows, bpp, LINE) > 500, f"diff: run B drawn in {b} pixels")
        check(not rec.page_requests(), f"the diff page asked for {rec.page_requests()}")
        rc, _, err = memcreep(["report", golden("leak_linear"), "--format", "png"])
        check(rc == 2 and err.count("\n") == 1 and "--format" in err, f"bad format: {rc} {err}")
        rc, _, err = memcreep(["diff", golden("leak_linear"), golden("clean_steady"),
                               "--format", "pdf"])
        check(rc == 2 and err.count("\n") == 1, f"diff bad format: {rc} {err}")
    finally:
        rec.s.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- pprof (Debian's golang-go) ----

def pprof_top(path, index):
    go = shutil.which("go") or "/usr/lib/go/bin/go"
    check(os.path.exists(go), "go is not installed (scripts/deps.sh test)")
    env = dict(os.environ, HOME=tempfile.gettempdir(), GOFLAGS="", PPROF_TMPDIR=tempfile.gettempdir())
    p = subprocess.run([go, "tool", "pprof", "-top", f"-sample_index={index}", path],
                       capture_output=True, text=True, timeout=120, env=env)
    check(p.returncode == 0, f"go tool pprof: {p.stderr[:500]}")
    rows = []
    for ln in p.stdout.splitlines():
        m = re.match(r"\s*([\d.]+)(\w*)\s+[\d.]+%\s+[\d.]+%\s+([\d.]+)(\w*)\s+[\d.]+%\s+(.+)$", ln)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(5).strip()))
    return p.stdout, rows


def case_pprof():
    """growth.pb.gz decoded by go tool pprof: the leak's function on top by
    bytes and by objects grown, with the saved run's numbers."""
    tmp = tempfile.mkdtemp(prefix="mc-report-")
    try:
        import json
        for name, fn in (("leak_linear", "leaky_store"), ("h2_leak/h2", "h2_remember_stream")):
            path = os.path.join(tmp, "growth.pb.gz")
            rc, out, err = memcreep(["report", golden(name), "--format", "pprof"], binary=True)
            check(rc == 0 and out[:2] == b"\x1f\x8b", f"{name}: exit {rc}: {err}")
            with open(path, "wb") as f:
                f.write(out)
            with open(os.path.join(golden(name), "result.json")) as f:
                doc = json.load(f)
            s = [s for p in doc["processes"] for s in p["stacks"]
                 if s["frames"][s["site"]]["function"] == fn][0]
            objects = s["series"]["count"][-1] - s["series"]["count"][0]
            text, rows = pprof_top(path, "grown_objects")
            check(rows and rows[0][2] == fn, f"{name}: top by objects grown:\n{text}")
            check(rows[0][0] == objects and not rows[0][1],
                  f"{name}: {rows[0][0]} objects grown, the run says {objects}")
            # By bytes, the leak's own growth (a one-time buffer may weigh
            # more over a short run: h2_server's output buffer does).
            text, rows = pprof_top(path, "grown_bytes")
            grew = s["series"]["bytes"][-1] - s["series"]["bytes"][0]
            mine = [r for r in rows if r[2] == fn]
            scale = {"": 1, "B": 1, "kB": 1024, "MB": 1024 ** 2}
            check(mine and abs(mine[0][0] * scale.get(mine[0][1], 0) - grew) <= 0.01 * grew,
                  f"{name}: {fn} grew {grew} B, pprof says:\n{text}")
            if name == "leak_linear":
                check(rows[0][2] == fn, f"{name}: top by bytes grown:\n{text}")
            text, rows = pprof_top(path, "live_bytes")
            check(rows and "Type: live_bytes" in text, f"{name}: live_bytes:\n{text}")
        rc, out, err = memcreep(["report", golden("h2_leak"), "--format", "pprof"])
        check(rc == 2 and "h1/ and h2/" in err, f"two runs to one profile: {rc} {err}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- live metrics during a run (Debian's prometheus: promtool) ----

def scrape(port, path="/metrics", accept=None):
    """One HTTP GET; returns (status, content type, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        hdr = f"Accept: {accept}\r\n" if accept else ""
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{hdr}\r\n".encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    ctype = [ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("content-type:")]
    return int(lines[0].split()[1]), ctype[0] if ctype else "", body.decode()


def sample_value(text, name, **labels):
    for ln in text.splitlines():
        if ln.startswith(name + "{") or ln.startswith(name + " "):
            if all(f'{k}="{v}"' in ln for k, v in labels.items()):
                return float(ln.rsplit(" ", 1)[1])
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def case_metrics():
    """memcreep run --metrics: during the run, the Prometheus text passes
    promtool check metrics, OpenMetrics (asked for by Accept) passes the
    strict OpenMetrics parser and ends with # EOF; the leak's live bytes
    grow between scrapes under its allocation site; bad addresses and a
    port in use are refused before the target starts."""
    promtool = shutil.which("promtool")
    check(promtool, "promtool is not installed (scripts/deps.sh test)")
    port = free_port()
    fixture = os.path.join(ARGS.fixtures, "leak_linear")
    p = subprocess.Popen([ARGS.memcreep, "run", "-q", "-i", "0.1", "--metrics",
                          f"127.0.0.1:{port}", "-d", "20s", "--", fixture, "100000", "200"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        texts, until = [], time.time() + 15
        while len(texts) < 2 and time.time() < until:
            time.sleep(1.0)
            try:
                st, ctype, body = scrape(port)
            except OSError:
                continue
            if st == 200 and sample_value(body, "memcreep_stack_live_bytes") is not None:
                texts.append(body)
                time.sleep(1.0)
        check(len(texts) == 2, "no metrics with a stack within 15 s")
        check(ctype.startswith("text/plain; version=0.0.4"), f"content type {ctype}")
        lint = subprocess.run([promtool, "check", "metrics"], input=texts[1], capture_output=True,
                              text=True, timeout=30)
        check(lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(),
              f"promtool check metrics: {lint.stdout} {lint.stderr}")
        site = re.search(r'memcreep_stack_live_bytes\{[^}]*site="([^"]*)"', texts[1]).group(1)
        check(site.startswith("leaky_store  leak_linear.c:"), f"top stack's site {site!r}")
        a, b = (sample_value(t, "memcreep_live_heap_bytes", exe="leak_linear") for t in texts)
        check(a and b and b > a, f"live heap between scrapes: {a} -> {b}")
        check(sample_value(texts[1], "memcreep_work_units_total", exe="leak_linear") > 0,
              "no work units")
        st, ctype, om = scrape(port, accept="application/openmetrics-text; version=1.0.0")
        check(st == 200 and ctype.startswith("application/openmetrics-text") and
              om.endswith("# EOF\n"), f"OpenMetrics: {st} {ctype} ...{om[-40:]!r}")
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
        fams = {f.name: f for f in text_string_to_metric_families(om)}
        check(fams["memcreep_rss_bytes"].unit == "bytes" and
              fams["memcreep_work_units"].type == "counter", f"families {sorted(fams)}")
        st, _, _ = scrape(port, "/nope")
        check(st == 404, f"/nope: {st}")
    finally:
        p.terminate()
        p.wait(timeout=60)
    # Refused before anything starts: one line each, status 2.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        for addr, want in (("localhost", "HOST:PORT"), ("127.0.0.1:99999", "HOST:PORT"),
                           (f"127.0.0.1:{taken}", "in use")):
            rc, _, err = memcreep(["run", "--metrics", addr, "--", fixture, "10", "0"])
            check(rc == 2 and err.count("\n") == 1 and want in err, f"--metrics {addr}: {rc} {err}")


CASES = {name[5:]: fn for name, fn in list(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--fixtures", default="")
    ap.add_argument("case", choices=sorted(CASES))
    ARGS = ap.parse_args()
    ARGS.memcreep = os.path.abspath(ARGS.memcreep)
    try:
        CASES[ARGS.case]()
    except (Failure, subprocess.TimeoutExpired) as e:
        print(f"FAIL {ARGS.case}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"ok {ARGS.case}")
