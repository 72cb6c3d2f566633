"""Scenario tests of `memcreep attach`: a process started here, plainly, is
attached to while it runs; what it does after the attach must be found (the
right function, the right rate), what it does must not change (every request
answered, no crash, no descriptor or thread of memcreep's left behind), and
each refusal must be one line with exit status 3.
usage: test_attach.py --memcreep PATH --fixtures DIR CASE"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_load  # noqa: E402
import test_python  # noqa: E402
import test_run  # noqa: E402
from test_run import Failure, check  # noqa: E402

ARGS = None
PYTHON = "/usr/bin/python3"
PYFIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "python")


def attach(pid, extra=(), timeout=120, **kw):
    """memcreep attach with an output directory: (doc or None, rc, stderr)."""
    out = tempfile.mkdtemp(prefix="mc-attach-")
    rc, _, err = test_run.memcreep(["attach", str(pid), "-i", "0.05", "-o", out, "--top", "20"]
                                   + list(extra), timeout=timeout, **kw)
    path = os.path.join(out, "result.json")
    doc = test_load.load_doc(path) if os.path.exists(path) else None
    return doc, rc, err


def descriptors(pid):
    """(fd, target) of what pid has open; one closed while it is looked at
    (the program's own short-lived descriptors) is left out."""
    d = f"/proc/{pid}/fd"
    out = []
    for n in os.listdir(d):
        try:
            out.append((n, os.readlink(os.path.join(d, n))))
        except FileNotFoundError:
            pass
    return sorted(out)


def lasting_descriptors(pid, looks=5):
    """What stays open over looks readings 20 ms apart: a program that
    opens and closes pipes of its own all the time has one open at any
    reading now and then, and that one is not what it holds."""
    fds = set(descriptors(pid))
    for _ in range(looks - 1):
        time.sleep(0.02)
        fds &= set(descriptors(pid))
    return sorted(fds)


def server_descriptors(pid, timeout=10):
    """The fixture server's descriptors at rest: its listening socket the
    only socket (the connection wait_port made to see it listen may still
    be open in the server when it is first looked at)."""
    def sockets(fds):
        return sum(t.startswith("socket:") for _, t in fds)

    deadline = time.time() + timeout
    fds = descriptors(pid)
    while time.time() < deadline and sockets(fds) > 1:
        time.sleep(0.02)
        fds = descriptors(pid)
    check(sockets(fds) == 1, f"the server at rest holds {fds}")
    return fds


def same_descriptors(pid, fds, timeout=5):
    """What is open is what was before (looked at again while the program's
    own short-lived descriptors come and go, and connections close)."""
    deadline = time.time() + timeout
    now = lasting_descriptors(pid)
    while time.time() < deadline and now != fds:
        now = lasting_descriptors(pid)
    check(now == fds, f"descriptors changed: {sorted(set(now) ^ set(fds))}")


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        return int([l for l in f if l.startswith("Threads:")][0].split()[1])


def maps_memcreep(pid):
    with open(f"/proc/{pid}/maps") as f:
        return [l.split()[-1] for l in f if "libmemcreep" in l]


def own_threads(pid):
    """memcreep's threads in the process (the library names them)."""
    n = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/comm") as f:
                n += f.read().strip() == "memcreep"
        except OSError:
            pass  # ended meanwhile
    return n


def no_own_threads(pid, timeout=10):
    """The library's threads end just after its detach is acknowledged."""
    deadline = time.time() + timeout
    while time.time() < deadline and own_threads(pid):
        time.sleep(0.05)
    check(not own_threads(pid), f"{own_threads(pid)} threads of memcreep's left after the detach")


class Background:
    """`memcreep load` at the server for the whole case: every request it
    sends, before, during and after the attach, must be answered."""

    def __init__(self, url, seconds, proto="h1"):
        self.p = subprocess.Popen([ARGS.memcreep, "load", url, "-c", "2", "-d", f"{seconds}s",
                                   "--proto", proto, "--json", "-q"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)

    def result(self):
        out, err = self.p.communicate(timeout=120)
        check(self.p.returncode == 0, f"background load: exit {self.p.returncode}: {err}")
        return json.loads(out)


def served_all(s, what):
    errors = sum(s["errors"].values())
    check(s["requests"] > 1000 and s["ok"] == s["requests"] and errors == 0,
          f"{what}: {s['ok']} of {s['requests']} answered, errors {s['errors']}")


def server_case(leak):
    """The fixture server under h1 load from memcreep load (its h1 path
    keeps nothing), attached mid-run with memcreep's own h2 load: with
    --leak its h2 path keeps body / 256 bytes per request."""
    test_load.ARGS = ARGS  # the fixture server lives in the fixtures directory
    with test_load.Server(*(["--leak"] if leak else [])) as srv:
        pid = srv.p.pid
        fds, nthreads = server_descriptors(pid), threads(pid)
        bg = Background(srv.url(), 10)
        time.sleep(2)  # before the attach
        doc, rc, err = attach(pid, ["--url", srv.url(), "--proto", "h2", "--rounds", "6",
                                    "--round-requests", "500", "--fail-on-creep"])
        check(doc, f"no result (exit {rc}): {err}")
        after = time.time()
        check(srv.p.poll() is None, "the server died")
        no_own_threads(pid)
        check(threads(pid) == nthreads, f"threads {threads(pid)} after the detach, {nthreads} before")
        s = bg.result()
        check(time.time() - after > 1, "the background load did not outlast the detach")
        same_descriptors(pid, fds)
        served_all(s, "background h1 load")
        served_all(doc["load"]["summary"], "attach's own h2 load")
        check(doc["attach"]["inside"] and doc["attach"]["pid"] == pid, f"attach: {doc['attach']}")
        check("attached to PID" in err and "not tracked" in err, "the report does not say when")
        p = test_run.root_proc(doc)
        if leak:
            check(rc == 1, f"exit {rc}, expected 1 (creep with --fail-on-creep): {err}")
            test_run.expect_creep(p, "h2_remember_stream", 92160 // 256)
            test_run.expect_only_creep(p, ["h2_remember_stream"])
        else:
            check(rc == 0, f"exit {rc}: {err}")
            check(doc["summary"]["verdict"] == "STEADY",
                  f"clean: {doc['summary']['verdict']} at {test_run.creeping(p)}")
        # The library stays loaded, inert: attached again, it works again.
        check(maps_memcreep(pid), "the library is not loaded")


def case_leaky_server():
    server_case(True)


def case_clean_server():
    server_case(False)


def threads_fixture(n):
    """attach_target with n allocating threads, running."""
    p = subprocess.Popen([test_run.fixture("attach_target"), "threads", str(n), "600"],
                         stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    if p.poll() is not None:
        raise Failure(f"the fixture ended at once: {p.returncode} {p.stdout.read()}")
    return p


def end_threads_fixture(p):
    """Stops it: every block it checked was intact, errno always kept."""
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    check(p.returncode == 0 and out.startswith("ok "), f"fixture: exit {p.returncode}: {out}")


def case_threads_50x():
    """8 threads allocating every kind of block while the hooks go in and
    out 50 times: no crash, no deadlock, every block intact, errno kept."""
    p = threads_fixture(8)
    try:
        fds = lasting_descriptors(p.pid)
        with open(f"/proc/{p.pid}/statm") as f:
            rss0 = int(f.read().split()[1])
        for i in range(50):
            rc, _, err = test_run.memcreep(["attach", str(p.pid), "-d", "0.1s", "-q"], timeout=60)
            check(rc == 0, f"attach {i + 1}: exit {rc}: {err}")
            check(p.poll() is None, f"died at attach {i + 1}")
        no_own_threads(p.pid)
        same_descriptors(p.pid, fds)
        with open(f"/proc/{p.pid}/statm") as f:
            grown = (int(f.read().split()[1]) - rss0) * os.sysconf("SC_PAGE_SIZE")
        # The library's pages and each thread's block of its variables,
        # once; nothing per attach (0.6 MiB over the 50 here, where a table
        # kept per attach made 5).
        check(grown < 4 << 20, f"RSS grew {grown >> 10} KiB over 50 attaches")
        end_threads_fixture(p)
    finally:
        if p.poll() is None:
            p.kill()


def case_killed_memcreep():
    """memcreep killed outright (SIGKILL) while attached: the library sees
    it gone and detaches by itself; the program runs on, and can be
    attached to again."""
    p = threads_fixture(4)
    try:
        fds = lasting_descriptors(p.pid)
        log = tempfile.TemporaryFile(mode="w+")
        m = subprocess.Popen([ARGS.memcreep, "attach", str(p.pid), "-q"], stderr=log)
        deadline = time.time() + 10
        while time.time() < deadline and not own_threads(p.pid) and m.poll() is None:
            time.sleep(0.02)
        if not own_threads(p.pid):
            log.seek(0)
            raise Failure(f"the library's thread never started (memcreep: {m.poll()}, "
                          f"{log.read().strip()}; {open(f'/proc/{p.pid}/stat').read()[:60]})")
        time.sleep(1)
        m.kill()
        m.wait()
        no_own_threads(p.pid)
        same_descriptors(p.pid, fds)
        rc, _, err = test_run.memcreep(["attach", str(p.pid), "-d", "0.5s", "-q"])
        check(rc == 0, f"attached again: exit {rc}: {err}")
        end_threads_fixture(p)
    finally:
        if p.poll() is None:
            p.kill()


def case_forked_worker():
    """Workers forked after the attach are tracked (their hooks come with
    the fork), each found keeping 512 bytes a millisecond."""
    p = subprocess.Popen([test_run.fixture("attach_target"), "forker", "30"])
    try:
        time.sleep(0.5)
        doc, rc, err = attach(p.pid, ["-d", "4s"])
        check(doc and rc == 0, f"exit {rc}: {err}")
        t_attach = doc["attach"]["attached_s"]
        later = [q for q in doc["processes"] if not q["root"] and q["ppid"] == p.pid and
                 q["end"]["t_start"] > t_attach + 0.05]
        check(len(later) >= 5, f"{len(later)} workers forked after the attach were seen")
        found = [q for q in later if q["preloaded"] and "worker_leak" in test_run.creeping(q)]
        check(len(found) >= 3, f"{len(found)} of {len(later)} later workers creep at worker_leak")
        root = test_run.root_proc(doc)
        check("worker_leak" not in test_run.creeping(root), "the parent creeps at worker_leak")
    finally:
        p.kill()
        p.wait()


def python_service(mode):
    port = test_load.free_port()
    p = subprocess.Popen([PYTHON, os.path.join(PYFIX, "py_service.py"), str(port), mode],
                         stdout=subprocess.DEVNULL)
    test_load.wait_port(port)
    return p, f"http://127.0.0.1:{port}/"


def case_python_worker():
    """Attached to a running CPython service: cycle garbage by type per
    request, a kept type found with what holds it, a clean one clean."""
    load = ["-c", "4", "--warmup", "1000", "--rounds", "6", "--round-requests", "300",
            "--fail-on-creep"]
    for mode, want_rc in (("cycles", 0), ("keep", 1), ("clean", 0)):
        p, url = python_service(mode)
        try:
            time.sleep(0.5)
            doc, rc, err = attach(p.pid, ["--url", url] + load)
            check(doc and rc == want_rc, f"{mode}: exit {rc}, expected {want_rc}: {err}")
            check(p.poll() is None, f"{mode}: the service died")
            kinds = [f["kind"] for f in doc["summary"]["findings"]]
            if mode == "cycles":
                f = [x for x in doc["summary"]["findings"] if x["kind"] == "CYCLE GARBAGE"]
                check(f, f"cycles: findings {kinds}")
                types = {t["type"]: t for t in f[0]["types"]}
                for name in ("__main__.Response", "__main__.BoundStream"):
                    check(name in types and abs(types[name]["per_unit"] - 1) <= 0.15,
                          f"cycles: {name}: {types.get(name)}")
                check(doc["summary"]["verdict"] == "STEADY", f"cycles: {kinds}")
            elif mode == "keep":
                f = [x for x in doc["summary"]["findings"] if x["kind"] == "PYTHON OBJECTS CREEP"]
                check(f, f"keep: findings {kinds}")
                t = f[0]["types"][0]
                check(t["type"] == "__main__.Record" and abs(t["per_unit"] - 1) <= 0.15 and
                      t.get("held_by") == "__main__.HISTORY > list", f"keep: {t}")
            else:
                check(not kinds and doc["summary"]["verdict"] == "STEADY", f"clean: {kinds}")
        finally:
            p.kill()
            p.wait()


def case_fastapi():
    """Seed 003 (Debian's FastAPI and uvicorn: asyncio) attached while it
    serves: two Nodes of cycle garbage per request, and what one request
    in four keeps found at the handler's line, 3033 bytes per keeping
    request, held by the module-level list."""
    path = os.path.join(PYFIX, "fastapi_service.py")
    src = open(path).read().splitlines()
    kept_line = 1 + next(i for i, t in enumerate(src) if t.endswith("# kept here"))
    port = test_load.free_port()
    p = subprocess.Popen([PYTHON, path, str(port)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        test_load.wait_port(port, timeout=30)
        doc, rc, err = attach(p.pid, ["--url", f"http://127.0.0.1:{port}/", "-c", "4",
                                      "--rounds", "8", "--round-requests", "400",
                                      "--fail-on-creep"], timeout=240)
        check(doc and rc == 1, f"exit {rc}, expected 1 (CREEP): {err[-2000:]}")
        check(p.poll() is None, "the service died")
        served_all(doc["load"]["summary"], "attach's load")
        test_python.check_fastapi(doc, kept_line)
    finally:
        p.kill()
        p.wait()


def case_nginx_tls():
    """Debian's nginx (master and worker) attached while it does a full TLS
    handshake per request: both processes attached, the handshakes'
    allocations in libssl and libcrypto tracked with their stacks, no
    creep, every request answered, and nginx serving on after the detach."""
    d = tempfile.mkdtemp(prefix="mc-attach-tls-")
    argv, port = test_load.tls_nginx_conf(d)
    nginx = subprocess.Popen(argv)
    try:
        test_load.wait_port(port)
        url = f"https://127.0.0.1:{port}/small"
        doc, rc, err = attach(nginx.pid, ["--url", url, "-k", "--new-conn", "-c", "4",
                                          "--warmup", "200", "--rounds", "6",
                                          "--round-requests", "300", "--fail-on-creep"])
        check(doc and rc == 0, f"exit {rc}, expected 0 (no creep): {err}")
        check(doc["attach"]["processes"] == 2, f"attached {doc['attach']['processes']} of 2")
        served_all(doc["load"]["summary"], "attach's load")
        check(doc["summary"]["verdict"] == "STEADY", f"verdict {doc['summary']['verdict']}")
        worker = [p for p in doc["processes"]
                  if any(f.get("module") == "libcrypto.so.3"
                         for st in p.get("stacks", []) for f in st["frames"])]
        check(worker, "no stack through libcrypto: the handshakes were not tracked")
        check(not test_run.creeping(worker[0]), f"creeping: {test_run.creeping(worker[0])}")
        for pid in [nginx.pid] + [int(x) for x in
                                  open(f"/proc/{nginx.pid}/task/{nginx.pid}/children").read().split()]:
            no_own_threads(pid)
        r = subprocess.run([ARGS.memcreep, "load", url, "-k", "--new-conn", "-c", "2", "-n", "500",
                            "--json", "-q"], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, f"load after the detach: {r.stderr}")
        s = json.loads(r.stdout)
        check(s["ok"] == s["requests"] == 500, f"after the detach: {s['ok']} of {s['requests']}")
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(timeout=30)
        except subprocess.TimeoutExpired:
            nginx.kill()


def refused(pid, want, extra=(), runner=()):
    """memcreep attach refused with want in its one line; exit status 3."""
    argv = list(runner) + [ARGS.memcreep, "attach", str(pid), "-d", "0.5s", "-q"] + list(extra)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    lines = [l for l in r.stderr.splitlines() if l.startswith("memcreep: cannot attach")]
    check(r.returncode == 3, f"{want}: exit {r.returncode}: {r.stderr}")
    check(len(lines) == 1 and want in lines[0], f"{want}: said {r.stderr!r}")
    return r


def case_refusals():
    # Gone.
    p = subprocess.Popen(["/bin/true"])
    p.wait()
    refused(p.pid, "no such process")
    sleeper = subprocess.Popen(["/bin/sleep", "60"])
    victims = [sleeper]
    try:
        # Another user's process, as nobody: no view from inside; the
        # outside view still runs (its RSS is anyone's to read).
        r = refused(sleeper.pid, "belongs to another user",
                    runner=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        # Root without CAP_SYS_PTRACE (a container without it), at a
        # process of another user.
        nobody = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534",
                                   "--clear-groups", "/bin/sleep", "60"])
        victims.append(nobody)
        time.sleep(0.2)
        refused(nobody.pid, "lacks CAP_SYS_PTRACE",
                runner=["setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace"])
        # Traced already.
        tracer = subprocess.Popen(["strace", "-o", "/dev/null", "-p", str(sleeper.pid)],
                                  stderr=subprocess.DEVNULL)
        victims.append(tracer)
        time.sleep(0.5)
        refused(sleeper.pid, "is traced by PID")
        tracer.kill()
        tracer.wait()
        # Stopped.
        os.kill(sleeper.pid, signal.SIGSTOP)
        time.sleep(0.2)
        refused(sleeper.pid, "is stopped")
        os.kill(sleeper.pid, signal.SIGCONT)
        # Statically linked: the outside view, RSS only.
        static = subprocess.Popen([test_run.fixture("leak_static"), "100000", "1000"],
                                  stdout=subprocess.DEVNULL)
        victims.append(static)
        time.sleep(0.2)
        refused(static.pid, "statically linked")
        # Another mount namespace, where the library's directory is empty.
        lib_dir = os.path.dirname(os.path.realpath(ARGS.memcreep))
        ns = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                               f"mount -t tmpfs none {lib_dir} && exec sleep 60"])
        victims.append(ns)
        time.sleep(0.5)
        refused(ns.pid, "another mount namespace")
        # Under memcreep run already.
        out = tempfile.mkdtemp(prefix="mc-attach-")
        run = subprocess.Popen([ARGS.memcreep, "run", "-q", "-o", out, "--", "/bin/sleep", "60"])
        victims.append(run)
        deadline = time.time() + 10
        kid = None
        while time.time() < deadline and not kid:
            kids = open(f"/proc/{run.pid}/task/{run.pid}/children").read().split()
            kid = int(kids[0]) if kids else None
            time.sleep(0.05)
        check(kid, "memcreep run started nothing")
        time.sleep(0.3)
        refused(kid, "under memcreep run already")
        # Bad PIDs are usage errors.
        for bad in (["attach"], ["attach", "abc"], ["attach", "1", "2"]):
            rc, _, err = test_run.memcreep(bad)
            check(rc == 2 and err.count("\n") == 1, f"{bad}: exit {rc}: {err}")
        rc, _, err = test_run.memcreep(["attach", str(sleeper.pid), "--proto", "h1,h2",
                                        "--url", "http://127.0.0.1:1/"])
        check(rc == 2 and "fresh start" in err, f"--proto h1,h2: exit {rc}: {err}")
    finally:
        for v in victims:
            if v.poll() is None:
                v.terminate()
                try:
                    v.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    v.kill()


def case_watch_only():
    """--watch-only: nothing enters the process; descriptors that pile up
    are found from /proc alone."""
    p = subprocess.Popen([test_run.fixture("fd_leak"), "4000", "1000", "fds"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        doc, rc, err = attach(p.pid, ["--watch-only", "-d", "3s"])
        check(doc and rc == 0, f"exit {rc}: {err}")
        check(not maps_memcreep(p.pid), "something entered the process")
        check(doc["attach"]["watch_only"] and not doc["attach"]["inside"], f"{doc['attach']}")
        check("from outside only (--watch-only)" in err, "the report does not say so")
        m = [q for q in doc["processes"] if q["root"]][0]["metrics"]
        check(m["fds"]["verdict"] == "CREEP", f"descriptors: {m['fds']}")
    finally:
        p.kill()
        p.wait()


if __name__ == "__main__":
    sys.exit(test_run.run_case(globals()))
