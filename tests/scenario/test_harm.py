"""memcreep must not change what the program under it does, and must not be
broken by it: each case runs a program plain and under `memcreep run` and
compares what the program itself saw, or feeds memcreep input it must
survive. Usage: test_harm.py --memcreep PATH --fixtures DIR CASE
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "report"))
import test_report  # noqa: E402  (its scrape of --metrics)
from test_run import Failure, check, run_case  # noqa: E402,F401

ARGS = None
PY = "/usr/bin/python3"


def fixture(name):
    return os.path.join(ARGS.fixtures, name)


def plain(argv, timeout=60, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    return p.returncode, p.stdout, p.stderr


def under(argv, extra=(), timeout=90, **kw):
    """memcreep run -q on argv: (exit status, stdout, stderr)."""
    return plain([ARGS.memcreep, "run", "-q", "-i", "0.05"] + list(extra) + ["--"] + argv,
                 timeout=timeout, **kw)


def same_output(argv, what, extra=(), bad=None):
    """The program prints the same plain and under memcreep (and memcreep's
    stderr has no `bad`)."""
    rc0, out0, err0 = plain(argv)
    check(rc0 == 0 and out0, f"{what} plain: exit {rc0}: {out0}{err0}")
    rc1, out1, err1 = under(argv, extra=extra)
    check(rc1 == 0 and out1 == out0 and not (bad and bad in err1),
          f"{what}: plain printed\n{out0}under memcreep (exit {rc1})\n{out1}{err1}")
    return out0


def case_exit_status():
    """A target that fails after it ran makes memcreep fail (5); one stopped
    by memcreep, or exiting 0, does not."""
    rc, _, err = under(["sh", "-c", "sleep 1; exit 5"])
    check(rc == 5 and "status 5" in err, f"exit 5: memcreep exit {rc}: {err}")
    rc, _, err = under(["sh", "-c", "sleep 1; kill -SEGV $$"])
    check(rc == 5 and "status 139" in err, f"SIGSEGV: memcreep exit {rc}: {err}")
    rc, _, err = under(["sh", "-c", "sleep 1; exit 0"])
    check(rc == 0, f"exit 0: memcreep exit {rc}: {err}")
    rc, _, err = under(["sleep", "30"], extra=["-d", "1"])
    check(rc == 0, f"stopped by --duration: memcreep exit {rc}: {err}")
    # A leak and a failure: the failure wins over --fail-on-creep's 1.
    rc, _, err = under(["sh", "-c", f"{fixture('leak_linear')} 2000 500; exit 7"],
                       extra=["--fail-on-creep"])
    check(rc == 5 and "status 7" in err, f"leak + exit 7: memcreep exit {rc}: {err}")
    rc, _, err = under(["sleep", "30"], extra=["--workload", "sleep 0.5; exit 3"])
    check(rc == 5, f"failed workload: memcreep exit {rc}: {err}")


def sig_ign_of(out):
    return [ln.split()[1] for ln in out.splitlines() if ln.startswith("SigIgn:")]


def case_signals():
    """nohup and a background job: the target inherits the same ignored
    signals and mask as plain, and memcreep itself stays up on SIGHUP."""
    d = tempfile.mkdtemp(prefix="mc-harm-")
    show = os.path.join(d, "show.sh")
    with open(show, "w") as f:
        f.write("grep -E '^Sig(Ign|Blk):' /proc/self/status\n")
    mc = f"{ARGS.memcreep} run -q --"
    for how in ("nohup {} sh {} </dev/null 2>/dev/null & wait",
                "trap '' USR1; {} sh {} & wait"):
        rc0, out0, _ = plain(["sh", "-c", how.format("", show)], cwd=d)
        rc1, out1, err1 = plain(["sh", "-c", how.format(mc, show)], cwd=d)
        check(sig_ign_of(out0) and sig_ign_of(out0) != ["0000000000000000"] and out1 == out0,
              f"{how}: plain\n{out0}under memcreep (exit {rc1})\n{out1}{err1}")
    # memcreep honours the SIGHUP ignore it inherits: the target runs on.
    script = (f"nohup {mc} sh -c 'sleep 2; echo survived' </dev/null 2>&1 & p=$!; "
              f"sleep 0.7; kill -HUP $p; wait $p; echo rc=$?")
    rc, out, err = plain(["sh", "-c", script], cwd=d)
    check("survived" in out and "rc=0" in out, f"nohup memcreep and SIGHUP: {out}{err}")


def case_fd_floor():
    """memcreep keeps no descriptor in the program: the same numbers, the
    same list in /proc/self/fd (a subprocess's too, as CPython's
    test_pass_fds_redirected checks), nothing written into the program's
    pipe, no deadlock in a blocking one, a daemon that closes everything
    gets 0, 1, 2 back; and stacks still go through code without unwind
    information."""
    for mode in ("closefrom", "listing"):
        out = same_output([fixture("fd_floor"), mode], mode)
        if mode == "closefrom":
            check("read back 20 bytes, 0 not" in out, f"closefrom: {out}")
    rc, out, err = under([fixture("fd_floor"), "blocking"], extra=["-d", "20"])
    check(rc == 0 and "read back 20 bytes, 0 not" in out,
          f"blocking pipe (a deadlock ends at -d 20): exit {rc}: {out}{err}")
    d = tempfile.mkdtemp(prefix="mc-harm-")
    a, b = os.path.join(d, "plain"), os.path.join(d, "under")
    plain([fixture("fd_floor"), "daemon", a])
    under([fixture("fd_floor"), "daemon", b])
    with open(a) as f0, open(b) as f1:
        t0, t1 = f0.read(), f1.read()
    check(t0.startswith("reopened 0 1 2") and t0 == t1, f"daemon: plain {t0!r}, under {t1!r}")
    # Past a frame without unwind information: libunwind tests the
    # addresses it reads, without a pipe now.
    out = tempfile.mkdtemp(prefix="mc-harm-")
    rc, stdout, err = under([fixture("fd_floor"), "nocfi"], extra=["-o", out])
    with open(os.path.join(out, "result.json")) as f:
        doc = json.load(f)
    creep = [s for p in doc["processes"] for s in p.get("stacks", []) if s["verdict"] == "CREEP"]
    names = [fr.get("function") for fr in creep[0]["frames"]] if creep else []
    check(rc == 0 and "nocfi_alloc" in names and "through_nocfi" in names and "main" in names,
          f"stack through code without unwind information: {names}\n{err}")
    # Python closes descriptors through os.closerange and subprocess.
    prog = ("import os, subprocess\n"
            "os.closerange(3, 65536)\n"
            "r, w = os.pipe()\n"
            "out = subprocess.run(['ls', '/proc/self/fd'], capture_output=True, pass_fds=(w,),"
            " text=True).stdout.split()\n"
            "print(r, w, sorted(int(x) for x in out))\n"
            "print(sorted(int(x) for x in os.listdir('/proc/self/fd')))\n")
    same_output([PY, "-c", prog], "python closerange + pass_fds")


def small_tmpfs(size):
    """A tmpfs of the given size (as Docker's small /dev/shm); unmount it
    with subprocess.run(['umount', path])."""
    d = tempfile.mkdtemp(prefix="mc-harm-shm-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", d],
                       capture_output=True, text=True)
    check(p.returncode == 0, f"cannot mount a small tmpfs (the test needs root): {p.stderr}")
    return d


def case_small_rundir():
    """A run directory without room costs records, never the program: it
    runs as it does plain, its stderr has nothing of memcreep's, and
    memcreep says what happened and still reports."""
    prog = ("import json, ssl, http.client, asyncio, email.parser, decimal, sqlite3\n"
            "keep = [json.dumps({'k': i, 'v': [i] * 50}) for i in range(20000)]\n"
            "print('python done', len(keep))\n")
    d = small_tmpfs("4m")
    try:
        rc0, out0, err0 = plain([PY, "-c", prog])
        # 4 MB: some stacks fit, then the room runs out.
        rc1, out1, err1 = plain([ARGS.memcreep, "run", "-i", "0.05", "--run-dir", d, "--",
                                 PY, "-c", prog])
        check(rc1 in (0, 3) and out1 == out0, f"4 MB: exit {rc1}: {out1}{err1}")
        check("Bus error" not in err1 and "memcreep preload" not in err1,
              f"4 MB: the program's stderr: {err1}")
        # Full before the start: nothing can be published at all.
        with open(os.path.join(d, "fill"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        rc2, out2, err2 = plain([ARGS.memcreep, "run", "-i", "0.05", "--run-dir", d, "--",
                                 fixture("leak_linear"), "2000", "500"])
        check(rc2 == 3 and "leak_linear done" in out2 and "is full" in err2 and
              "verdict:" in err2, f"full: exit {rc2}: {out2}{err2}")
    finally:
        subprocess.run(["umount", d])


def case_many_processes():
    """10 000 short processes: memcreep's memory depends on what lives, not
    on how many came and went; the report counts them and stays small."""
    import resource
    out = tempfile.mkdtemp(prefix="mc-harm-")
    loop = "i=0; while [ $i -lt 10000 ]; do /bin/true; i=$((i+1)); done; echo loop done"
    # ASan's quarantine would hold 256 MB of freed memory whatever memcreep
    # does: without it the figure is memcreep's own.
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0"
    rc, stdout, err = under(["sh", "-c", loop], extra=["-o", out], timeout=300, env=env)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    check(rc == 0 and "loop done" in stdout, f"exit {rc}: {stdout}{err}")
    check(peak_kib < 150 * 1024, f"memcreep's peak RSS {peak_kib} KiB for 10 000 processes")
    size = os.path.getsize(os.path.join(out, "result.json"))
    check(size < 8 << 20, f"result.json is {size} bytes")
    with open(os.path.join(out, "report.txt")) as f:
        text = f.read()
    check("processes that did not grow" in text and "/usr/bin/true x" in text and
          len(text.splitlines()) < 400, f"report.txt ({len(text.splitlines())} lines):\n{text[-2000:]}")


def case_output_files():
    """Output files never follow a planted link, a directory of another
    user's is refused unless asked, and a full disk is an error (exit 4)
    that leaves nothing half-written or stale behind."""
    import pwd
    d = tempfile.mkdtemp(prefix="mc-harm-")
    out, victim = os.path.join(d, "out"), os.path.join(d, "victim")
    os.mkdir(out)
    with open(victim, "w") as f:
        f.write("secret\n")
    os.symlink(victim, os.path.join(out, "report.html"))
    rc, _, err = under([fixture("leak_linear"), "300", "200"], extra=["-o", out])
    with open(victim) as f:
        check(f.read() == "secret\n", "the planted link was followed")
    check(rc == 0 and not os.path.islink(os.path.join(out, "report.html")),
          f"planted link: exit {rc}: {err}")
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(out, nobody, -1)
    rc, _, err = under(["true"], extra=["-o", out])
    check(rc == 2 and "another user" in err, f"another user's directory: exit {rc}: {err}")
    rc, _, err = under(["true"], extra=["-o", out, "--output-any-owner"])
    check(rc == 0, f"--output-any-owner: exit {rc}: {err}")
    tiny = small_tmpfs("20k")
    try:
        with open(os.path.join(tiny, "report.html"), "w") as f:
            f.write("an earlier run's\n")
        rc, _, err = under([fixture("leak_linear"), "300", "200"], extra=["-o", tiny])
        left = sorted(os.listdir(tiny))
        check(rc == 4 and "No space left on device" in err, f"full disk: exit {rc}: {err}")
        check("report.html" not in left and not [n for n in left if n.endswith(".tmp")],
              f"full disk left {left}")
        for n in left:  # what is there is whole
            if n == "result.json":
                with open(os.path.join(tiny, n)) as f:
                    json.load(f)
    finally:
        subprocess.run(["umount", tiny])


def case_python_fork_thread():
    """fork from a Python thread that is not the main one: the child runs
    and ends as it does plain (no fatal error, no child kept alive)."""
    prog = ("import os, threading\n"
            "def work():\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        print('child', flush=True)\n"
            "        return  # the child ends when its only thread does\n"
            "    print('parent saw child exit', os.waitpid(pid, 0)[1], flush=True)\n"
            "for i in range(3):\n"
            "    t = threading.Thread(target=work); t.start(); t.join()\n"
            "print('done', flush=True)\n")
    same_output([PY, "-c", prog], "fork from a thread", extra=["-d", "30"],
                bad="Fatal Python error")


def case_last_thread():
    """The library's own threads never keep a process alive: a program whose
    main() ends with pthread_exit ends when its last thread does, with its
    output, status 0 and its atexit handlers, as plain; memcreep sees it
    exit by itself, not stopped at the end of the duration."""
    out = tempfile.mkdtemp(prefix="mc-harm-")
    same_output([fixture("last_thread")], "main ends with pthread_exit",
                extra=["-d", "60", "-o", out])
    with open(os.path.join(out, "result.json")) as f:
        doc = json.load(f)
    check(doc["run"]["stopped_by"] == "exit", f"stopped by {doc['run']['stopped_by']}")


def case_python_gc():
    """The program's collector is its own: its debug flags, gc.garbage after
    its own collections and in its callbacks, its own DEBUG_SAVEALL garbage,
    a collector it turned off (cycles it leaves uncollected stay so), its
    generation counts and statistics while snapshots run, and objects with
    legacy finalizers."""
    prog = ("import gc, time, weakref\n"
            "class A: pass\n"
            "seen = set()\n"
            "for i in range(30):\n"
            "    for k in range(300):\n"
            "        a = A(); b = A(); a.b = b; b.a = a\n"
            "    del a, b\n"
            "    gc.collect()\n"
            "    seen.add((gc.get_debug(), len(gc.garbage)))\n"
            "    time.sleep(0.03)\n"
            "print('flags and garbage after collect:', sorted(seen))\n"
            "gc.set_debug(gc.DEBUG_SAVEALL)\n"
            "for k in range(100):\n"
            "    a = A(); a.me = a\n"
            "del a\n"
            "time.sleep(0.5)\n"
            "gc.collect()\n"
            "print('own SAVEALL garbage:', len(gc.garbage), gc.get_debug())\n"
            "gc.set_debug(0); del gc.garbage[:]; gc.collect()\n"
            "gc.disable()\n"
            "a = A(); a.me = a; r = weakref.ref(a); del a\n"
            "time.sleep(1.5)\n"
            "print('kept while the collector is off:', r() is not None)\n"
            "gc.enable(); gc.collect()\n"
            "print('freed once on:', r() is None)\n"
            # What the program reads of its collector while snapshots run
            # (several a second): the counts after its own collect() and
            # after an allocation, collections while it keeps it off.
            # A heap large enough that collect() outlasts the GIL's switch
            # interval: a thread waiting for the GIL gets it right after.
            "keep = [[] for _ in range(300000)]\n"
            "odd = set(); stops = set()\n"
            "def cb(phase, info):\n"
            "    if phase == 'stop': stops.add(len(gc.garbage))\n"
            "gc.callbacks.append(cb)\n"
            "t = time.time()\n"
            "while time.time() - t < 4:\n"
            "    gc.collect()\n"
            "    a, b, c = gc.get_count(); x = []; d, e, f = gc.get_count()\n"
            "    if (b, c, e, f) != (0, 0, 0, 0) or not a < 5 or not d > a: odd.add('count')\n"
            "    gc.disable(); s0 = gc.get_stats(); time.sleep(0.002); s1 = gc.get_stats()\n"
            "    gc.enable()\n"
            "    if s0 != s1: odd.add('stats')\n"
            "    for k in range(50):\n"
            "        a = A(); a.me = a\n"
            "    del a\n"
            "print('odd reads:', sorted(odd), 'garbage seen by a stop callback:', sorted(stops))\n"
            "gc.callbacks.remove(cb)\n"
            # Objects with a legacy finalizer (tp_del) stay in gc.garbage,
            # and only they; what they reach stays alive.
            "import _testcapi\n"
            "@_testcapi.with_tp_del\n"
            "class Legacy:\n"
            "    def __tp_del__(self): pass\n"
            "for k in range(20):\n"
            "    l = Legacy(); l.me = l; l.kid = A(); l.kid.up = l\n"
            "del l\n"
            "time.sleep(1)\n"
            "gc.collect()\n"
            "print('legacy garbage:', sorted(type(o).__name__ for o in gc.garbage),\n"
            "      all(type(o.kid).__name__ == 'A' for o in gc.garbage))\n")
    out = same_output([PY, "-c", prog], "gc state", extra=["-d", "60"])
    check("(0, 0)" in out, f"plain: {out}")


def case_own_memory():
    """What memcreep keeps inside the process is stated: the pages of its
    mapping the process committed. The kernel's count of that mapping in
    the process' RSS (/proc/PID/smaps) is that, or a little more: a fault
    maps neighbouring pages of the file already in memory (fault-around),
    such as pages memcreep's own reads brought in."""
    import json
    import time
    d = tempfile.mkdtemp(prefix="mc-harm-")
    out = os.path.join(d, "out")
    p = subprocess.Popen([ARGS.memcreep, "run", "-q", "--run-dir", d, "-o", out, "--", PY, "-c",
                          "import time\nx = [bytes(1000) for _ in range(2000)]\ntime.sleep(5)"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3.5)  # started, set up, quiet: it sleeps
    with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
        target = int(f.read().split()[0])
    rss, inside = 0, False
    with open(f"/proc/{target}/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                inside = len(head) >= 6 and head[-1].endswith(".map") and d in head[-1]
            elif inside and head[0] == "Rss:":
                rss += int(head[1]) * 1024
    p.wait(timeout=60)
    with open(os.path.join(out, "result.json")) as f:
        doc = json.load(f)
    root = [x for x in doc["processes"] if x["root"]][0]
    said = root.get("memcreep_mapping_bytes", 0)
    page = os.sysconf("SC_PAGE_SIZE")
    check(root["pid"] == target and said > 0 and said - 4 * page <= rss <= said * 1.05 + 32 * page,
          f"memcreep's mapping stated {said} B, the process has {rss} B of it resident")


def case_killed_memcreep():
    """memcreep killed outright (SIGKILL): the target, its children and the
    run directory go too."""
    import signal
    import time
    d = tempfile.mkdtemp(prefix="mc-harm-")
    kid = os.path.join(d, "kid")
    p = subprocess.Popen([ARGS.memcreep, "run", "-q", "--grace", "1", "--", "sh", "-c",
                          f"sleep 60 & echo $! > {kid}; sleep 60"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline and not (os.path.exists(kid) and open(kid).read().strip()):
        time.sleep(0.05)
    with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
        target = int(f.read().split()[0])
    with open(f"/proc/{target}/environ", "rb") as f:
        env = dict(x.split(b"=", 1) for x in f.read().split(b"\0") if b"=" in x)
    rundir = env[b"MEMCREEP_DIR"].decode()
    child = int(open(kid).read())
    check(os.path.isdir(rundir), f"no run directory {rundir}")
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)

    def gone(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(")")[-1].split()[0] == "Z"
        except FileNotFoundError:
            return True
    deadline = time.time() + 10
    while time.time() < deadline and not (gone(target) and gone(child) and
                                          not os.path.exists(rundir)):
        time.sleep(0.1)
    left = [n for n, pid in (("target", target), ("its child", child)) if not gone(pid)]
    for pid in (target, child):
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)
    check(not left, f"after memcreep was killed, still running: {left}")
    check(not os.path.exists(rundir), f"the run directory {rundir} is left")


def case_fd_limit():
    """A descriptor leak that the limit stops levels off at the limit: that
    is FD CREEP (opens now fail), not a plateau."""
    import resource
    out = tempfile.mkdtemp(prefix="mc-harm-")

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    rc, stdout, err = under([fixture("fd_limit")], extra=["-o", out], preexec_fn=low_limit)
    check(rc == 0 and "opens failed" in stdout, f"exit {rc}: {stdout}{err}")
    with open(os.path.join(out, "result.json")) as f:
        doc = json.load(f)
    kinds = [f for f in doc["summary"]["findings"] if f["kind"] == "FD CREEP"]
    with open(os.path.join(out, "report.txt")) as f:
        text = " ".join(f.read().split())
    check(kinds and kinds[0].get("limit") == 256 and "descriptor limit (256)" in text,
          f"findings {[f['kind'] for f in doc['summary']['findings']]}\n{text}")
    check(doc["summary"]["verdict"] == "CREEP", f"verdict {doc['summary']['verdict']}")


def case_metrics_idle():
    """Ten idle connections to --metrics do not delay a scrape, and each
    scrape gets numbers taken after it arrived."""
    import socket
    import time
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([ARGS.memcreep, "run", "-q", "-d", "12", "--metrics",
                          f"127.0.0.1:{port}", "--", fixture("leak_linear"), "100000", "300"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    idle = []
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=1))
                break
            except OSError:
                time.sleep(0.1)
        for _ in range(9):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=1))

        # Served one connection at a time, the ten idle ones ahead would hold
        # a scrape for 20 s: its own 5-s socket timeout fails the test then.
        def scrape():
            _, _, text = test_report.scrape(port)
            heap = [float(ln.split()[-1]) for ln in text.splitlines()
                    if ln.startswith("memcreep_live_heap_bytes{")]
            return sum(heap), text
        time.sleep(1.5)
        h1, text = scrape()
        time.sleep(0.6)
        h2, _ = scrape()
        check(h2 > h1 > 0, f"live heap {h1} then {h2}: not fresh\n{text[:500]}")
    finally:
        for c in idle:
            c.close()
        p.wait(timeout=60)


def case_messages():
    """Bad input is named as the user typed it, in one line, with exit 2,
    before the target starts."""
    cases = [
        (["-d", "0"], "-d takes a duration"),
        (["--duration", "0"], "--duration takes a duration"),
        (["-o", "--"], "option '-o' needs a value"),
        (["--py-trace", "1e300"], "--py-trace takes a duration up to 24h"),
        (["-d", "1e300"], "-d takes a duration"),
        (["--url", "http://u:p@127.0.0.1:9/"], "user information"),
        (["--url", "http://no-such-host.invalid:9/"], "cannot resolve 'no-such-host.invalid'"),
        (["--run-dir", "/nonexistent"], "--run-dir takes an existing directory"),
    ]
    for args, want in cases:
        rc, out, err = plain([ARGS.memcreep, "run"] + args + ["--", "true"], timeout=30)
        check(rc == 2 and want in err and len(err.splitlines()) == 1,
              f"{args}: exit {rc}, expected 2 and {want!r}: {err!r}")


GOLDEN = os.path.join(HERE, "..", "report", "golden")


def case_crafted_results():
    """A result file anyone could have written: what reaches HTML is
    escaped, a terminal gets no control characters, and huge numbers, deep
    stacks and long names render (a hang ends at the timeout)."""
    with open(os.path.join(GOLDEN, "close_wait", "result.json")) as f:
        doc = json.load(f)
    evil = "<script>alert(1)</script>"
    doc["run"]["started"] = evil
    for fnd in doc["summary"]["findings"]:
        for st in fnd.get("stacks", []):
            st["what"] = evil
            st["frames"] = st["frames"] * (30000 // max(1, len(st["frames"])) + 1)
        for peer in fnd.get("peers", []):
            peer["state"] = evil
    p = doc["processes"][0]
    p["exe"] = "x" * 1600000 + " \x1b]0;owned\x07\x1b[2J"
    p["series"]["rss"] = [1.7e308 if i % 2 else -1.7e308 for i in range(len(p["series"]["rss"]))]
    p["series"]["t"] = [1e300 * i for i in range(len(p["series"]["t"]))]
    d = tempfile.mkdtemp(prefix="mc-harm-")
    path = os.path.join(d, "result.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    for fmt in ("html", "text", "folded", "pprof"):
        r = subprocess.run([ARGS.memcreep, "report", path, "--format", fmt, "--color", "never"],
                           capture_output=True, timeout=60)
        out = r.stdout
        check(r.returncode == 0 and (out or fmt == "folded"),
              f"{fmt}: exit {r.returncode}: {r.stderr[-500:]}")
        if fmt == "html":
            check(b"<script" not in out, "html: '<script' in the page")
        if fmt == "text":
            bad = sorted({c for c in out if c < 0x20 and c != 0x0a})
            check(not bad, f"text: control characters {bad} in the output")


def case_scribble():
    """A program that writes over its own mapping (any bytes, caps,
    offsets, counts, crafted slab entries, a truncated file) cannot crash
    memcreep, make it hang or lose the report."""
    for mode in ("header", "counts", "slab", "random", "truncate"):
        out = tempfile.mkdtemp(prefix="mc-harm-")
        rc, stdout, err = under([fixture("map_scribble"), mode], extra=["-o", out, "-d", "30"])
        # Cutting the file short takes the program down with it when the
        # library writes there next (its exit path): its failure, not ours.
        ok_rc = (0, 5) if mode == "truncate" else (0,)
        check(rc in ok_rc and "AddressSanitizer" not in err and "runtime error" not in err,
              f"{mode}: memcreep exit {rc}\n{err}")
        if mode != "truncate":
            check(f"map_scribble {mode} done" in stdout, f"{mode}: the program's output: {stdout}")
        with open(os.path.join(out, "result.json")) as f:
            doc = json.load(f)
        check(doc["summary"]["verdict"] in ("CREEP", "PLATEAU", "STEADY", "UNKNOWN"),
              f"{mode}: verdict {doc['summary']['verdict']}")
        # (After a cut nothing may be left that grew: folded stacks can be empty.)
        names = ("report.txt", "report.html") + (() if mode == "truncate" else
                                                  ("growth.folded", "growth.pb.gz"))
        for name in names:
            check(os.path.getsize(os.path.join(out, name)) > 0, f"{mode}: {name} empty")


if __name__ == "__main__":
    sys.exit(run_case(globals()))
