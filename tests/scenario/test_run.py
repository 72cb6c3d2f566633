"""Scenario tests: `memcreep run` on fixtures whose behaviour is known.

Each case runs memcreep on a fixture and asserts the verdict, the function
named as the allocation site and the growth per unit of work (within 10% of
what the fixture keeps per iteration). Usage:
    test_run.py --memcreep PATH --fixtures DIR CASE
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ARGS = None
TOLERANCE = 0.10


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def fixture(name):
    return os.path.join(ARGS.fixtures, name)


def memcreep(args, timeout=90, **kw):
    """Runs memcreep; returns (exit code, stdout, stderr)."""
    p = subprocess.run([ARGS.memcreep] + args, capture_output=True, text=True,
                       timeout=timeout, **kw)
    return p.returncode, p.stdout, p.stderr


LAST_OUT = None  # the output directory of the last run_target


def run_target(target, extra=(), expect_rc=None):
    """memcreep run on target with an output directory; returns (doc, rc,
    stderr)."""
    global LAST_OUT
    out = LAST_OUT = tempfile.mkdtemp(prefix="mc-scenario-")
    rc, _, err = memcreep(["run", "-i", "0.05", "-o", out, "--top", "20"] + list(extra)
                          + ["--"] + target)
    if expect_rc is not None:
        check(rc == expect_rc, f"exit status {rc}, expected {expect_rc}\n{err}")
    path = os.path.join(out, "result.json")
    check(os.path.exists(path), f"no result.json (exit {rc})\n{err}")
    with open(path) as f:
        doc = json.load(f)
    check(doc["schema"] == "memcreep-run" and doc["version"] == 2, "schema/version")
    for f in doc["summary"]["findings"]:
        check(f.get("code") and f.get("severity") in ("creep", "cost", "info"),
              f"finding without code or severity: {f}")
    seen = [(f["kind"], f["pid"]) for f in doc["summary"]["findings"]]
    check(len(seen) == len(set(seen)), f"a finding given twice: {seen}")
    return doc, rc, err


def site(stack):
    at = stack["site"]
    return stack["frames"][at] if 0 <= at < len(stack["frames"]) else {}


def stacks_at(proc, function):
    return [s for s in proc.get("stacks", []) if site(s).get("function") == function]


def root_proc(doc):
    roots = [p for p in doc["processes"] if p["root"] and p["preloaded"]
             and p["end"]["how"] != "exec"]
    check(roots, "no preloaded root process in the result")
    return roots[0]


def expect_creep(proc, function, per_unit, module=None, tolerance=TOLERANCE):
    found = stacks_at(proc, function)
    check(found, f"no stack with site {function}; sites: "
          + ", ".join(site(s).get("function", "?") for s in proc.get("stacks", [])))
    s = max(found, key=lambda s: s["net_growth"])
    check(s["verdict"] == "CREEP", f"{function}: verdict {s['verdict']}, expected CREEP")
    rate = s["bytes_per_unit"]
    check(abs(rate - per_unit) <= tolerance * per_unit,
          f"{function}: {rate:.1f} bytes/unit, expected {per_unit} +-{tolerance:.0%}")
    check(s["bytes_per_min"] > 0, f"{function}: no growth per minute")
    if module:
        check(site(s).get("module") == module,
              f"{function}: module {site(s).get('module')}, expected {module}")
    check(site(s).get("line", 0) > 0 and site(s).get("file", "").endswith((".c", ".cc")),
          f"{function}: no file:line ({site(s)})")
    return s


def creeping(proc):
    return [site(s).get("function") for s in proc.get("stacks", []) if s["verdict"] == "CREEP"]


def expect_only_creep(proc, functions):
    extra = set(creeping(proc)) - set(functions)
    check(not extra, f"unexpected CREEP at {sorted(extra)}")


# ---- cases ----

def case_linear():
    doc, rc, _ = run_target([fixture("leak_linear"), "2500", "1000"], ["--fail-on-creep"])
    check(rc == 1, f"--fail-on-creep: exit status {rc}, expected 1")
    check(doc["summary"]["verdict"] == "CREEP", "summary verdict")
    p = root_proc(doc)
    expect_creep(p, "leaky_store", 256, module="leak_linear")
    expect_only_creep(p, ["leaky_store"])
    check(p["metrics"]["live_heap"]["verdict"] == "CREEP", "live heap verdict")
    check(p["end"]["how"] == "exited" and p["end"]["status"] == 0, f"end: {p['end']}")
    check(p["work_units"] == 2500, f"work units {p['work_units']}")
    # growth.folded: the leak is the heaviest line, ending at its site, with
    # the bytes it grew over the sampled work.
    with open(os.path.join(LAST_OUT, "growth.folded")) as f:
        lines = [ln.rsplit(" ", 1) for ln in f.read().splitlines()]
    top = max(lines, key=lambda x: int(x[1]))
    work = p["series"]["work"]
    want = 256 * (work[-1] - work[0])
    check(top[0].startswith("leak_linear (pid ") and top[0].endswith(";leaky_store") and
          abs(int(top[1]) - want) <= 0.1 * want, f"folded top line {top}, want {want:.0f}")
    rc, text, _ = memcreep(["report", LAST_OUT, "--format", "folded"])
    check(rc == 0 and [ln.rsplit(" ", 1) for ln in text.splitlines()] == lines,
          "report --format folded differs from growth.folded")


def case_sampled():
    """Byte sampling still finds the leak, with an unbiased rate: at one
    sample per 2 KiB a 256-byte block is seen with p = 0.118, about 350
    samples over the run, so the rate's relative error is about 5%; 25% is
    over four standard errors."""
    doc, _, _ = run_target([fixture("leak_linear"), "3000", "1000"], ["--sample-bytes", "2k"])
    check(doc["run"]["sample_bytes"] == 2048, "sample_bytes not recorded")
    p = root_proc(doc)
    expect_creep(p, "leaky_store", 256, tolerance=0.25)
    expect_only_creep(p, ["leaky_store"])


def case_cpp():
    """C++: operator new is a wrapper, the site is the method, demangled."""
    doc, _, _ = run_target([fixture("leak_cpp"), "2500", "1000"])
    p = root_proc(doc)
    s = expect_creep(p, "Session::Store::remember(int)", 160)
    check(any(f["function"].startswith("operator new") for f in s["frames"][:s["site"]]),
          "operator new not below the site")
    expect_only_creep(p, ["Session::Store::remember(int)"])


def unwind_checked(target, creeper, rate, fast_only):
    """Runs target with MEMCREEP_UNWIND_CHECK=1 (the library walks every
    stack both its own way and with libunwind's unw_backtrace, and says at
    exit how many differed): none may differ, and the leak must be found at
    creeper with rate bytes per unit. fast_only: every walk was the
    library's own (none handed to libunwind). Returns the creeping stack."""
    os.environ["MEMCREEP_UNWIND_CHECK"] = "1"
    try:
        doc, _, err = run_target(target)
    finally:
        del os.environ["MEMCREEP_UNWIND_CHECK"]
    m = re.search(r"unwind check: (\d+) captures, (\d+) differed, (\d+) left to libunwind", err)
    check(m, f"no unwind check line in stderr:\n{err}")
    captures, differed, slow = (int(g) for g in m.groups())
    check(captures >= 2000, f"only {captures} captures checked")
    check(differed == 0, f"{differed} of {captures} stacks differ from libunwind's:\n{err}")
    if fast_only:
        check(slow == 0, f"{slow} of {captures} walks were left to libunwind")
    p = root_proc(doc)
    s = expect_creep(p, creeper, rate)
    expect_only_creep(p, [creeper])
    return s


def case_swap_stacks():
    """A coroutine's own stack (makecontext/swapcontext): the stacks taken
    on it are libunwind's, end at the coroutine's entry, and hold nothing
    of main's stack."""
    s = unwind_checked([fixture("swap_stacks"), "2500", "1000"], "coro_keep", 256, False)
    names = [f.get("function") for f in s["frames"]]
    check("coro_main" in names, f"coro_main not in the coroutine's stack: {names}")
    check("main" not in names and "step" not in names, f"main's frames in the coroutine's: {names}")


def case_cpp_throw():
    """C++ exceptions thrown through allocating frames: every stack the
    same as libunwind's, all walked without it, the leak at its method."""
    s = unwind_checked([fixture("cpp_throw"), "2500", "1000"], "Journal::record(int)", 128, True)
    names = [f.get("function") for f in s["frames"]]
    check("Parser::parse(int)" in names, f"Parser::parse not below the site: {names}")


def case_libc():
    """Allocations inside libc (no frame pointers) keep their caller chain."""
    doc, _, _ = run_target([fixture("leak_libc"), "2500", "1000"])
    p = root_proc(doc)
    s = expect_creep(p, "keep_name", 96)
    check(s["frames"][0]["module"] == "libc.so.6", "strdup frame not first")
    files = [s for s in p["stacks"] if s["verdict"] == "CREEP"
             and any(f["function"] == "open_without_close" for f in s["frames"])]
    check(files, "no creeping stack through fopen reaching open_without_close")
    f = files[0]["frames"]
    check(f[files[0]["site"]]["module"] == "libc.so.6", "fopen's site should be in libc")


def case_dlopen():
    plugin = fixture("libleakplugin.so")
    doc, _, _ = run_target([fixture("leak_dlopen"), "2500", "1000", plugin])
    p = root_proc(doc)
    expect_creep(p, "plugin_leak", 320, module="libleakplugin.so")
    expect_only_creep(p, ["plugin_leak"])


def case_threads():
    doc, _, _ = run_target([fixture("leak_threads"), "300", "8000"])
    p = root_proc(doc)
    s = expect_creep(p, "thread_leak", 128)
    check(s["live_count"] >= 8 * 300 * 0.95, f"live count {s['live_count']}")
    expect_only_creep(p, ["thread_leak", "worker"])


def case_fork():
    doc, _, _ = run_target([fixture("leak_fork"), "2500", "1000"])
    procs = [p for p in doc["processes"] if p["preloaded"]]
    check(len(procs) == 2, f"{len(procs)} preloaded processes, expected parent and child")
    parent = root_proc(doc)
    child = [p for p in procs if not p["root"]][0]
    check(child["ppid"] == parent["pid"], "child's parent")
    expect_creep(child, "child_leak", 512)
    check(not creeping(parent), f"parent creeps at {creeping(parent)}")
    check(parent["metrics"]["live_heap"]["verdict"] != "CREEP", "parent live heap")


def case_exec():
    doc, _, _ = run_target([fixture("leak_exec"), fixture("leak_linear"), "2500", "1000"])
    images = [p for p in doc["processes"] if p["root"] and p["preloaded"]]
    check(len(images) == 2, f"{len(images)} images of the target, expected 2")
    check(images[0]["end"]["how"] == "exec", f"first image ended by {images[0]['end']}")
    check(not creeping(images[0]), "the image before exec creeps")
    expect_creep(images[1], "leaky_store", 256)


def case_realloc():
    doc, _, _ = run_target([fixture("leak_realloc"), "2500", "1000"])
    p = root_proc(doc)
    expect_creep(p, "grow_buffer", 384)
    expect_only_creep(p, ["grow_buffer"])


def case_aligned():
    doc, _, _ = run_target([fixture("leak_aligned"), "2500", "1000"])
    p = root_proc(doc)
    expect_creep(p, "keep_posix", 192)
    expect_creep(p, "keep_c11", 256)
    expect_creep(p, "keep_memalign", 320)
    expect_creep(p, "keep_valloc", 384)


def case_plateau():
    doc, _, _ = run_target([fixture("cache_plateau"), "3000", "1000"], ["--fail-on-creep"],
                           expect_rc=0)
    p = root_proc(doc)
    found = stacks_at(p, "cache_put")
    check(found and found[0]["verdict"] == "PLATEAU",
          f"cache_put verdict {found[0]['verdict'] if found else 'missing'}, expected PLATEAU")
    check(doc["summary"]["verdict"] != "CREEP", "summary says CREEP for a plateau")


def case_cache_refresh():
    """A cache filled by one call and refreshed by another on the same line
    (two return addresses, one site): one row, a PLATEAU, 5 runs of 5."""
    for run in range(5):
        doc, _, _ = run_target([fixture("cache_refresh"), "6000", "1000"], ["--fail-on-creep"],
                               expect_rc=0)
        p = root_proc(doc)
        found = stacks_at(p, "cache_put")
        check(len(found) == 1, f"run {run + 1}: {len(found)} rows at cache_put, expected one")
        check(found[0].get("addresses", 1) == 2,
              f"run {run + 1}: the row stands for {found[0].get('addresses', 1)} stacks, "
              "expected the two calls")
        check(found[0]["verdict"] == "PLATEAU",
              f"run {run + 1}: cache_put verdict {found[0]['verdict']}, expected PLATEAU")
        live = found[0]["live_bytes"]
        check(2000 * 2048 <= live < 2000 * 2048 * 1.1,
              f"run {run + 1}: cache_put holds {live} B, the cache is 2000 x 2 KiB")
        check(doc["summary"]["verdict"] != "CREEP", f"run {run + 1}: summary says CREEP")


def case_age():
    """Allocation age. A cache whose entries expire, under a load that keeps
    rising, grows linearly for the whole run (its trend says CREEP) while no
    entry outlives 0.8 s: its old epochs die, so it is PLATEAU, the trend's
    CREEP kept in age.trend_verdict, and the report says why; 5 runs of 5.
    `report --reanalyze` of the saved run gives the same. A leak keeps every
    epoch: survival 1, CREEP."""
    for run in range(5):
        doc, rc, err = run_target([fixture("ttl_ramp"), "100000", "1000"],
                                  ["-d", "6", "--fail-on-creep"])
        what = f"ttl_ramp, run {run + 1}"
        check(rc == 0 and doc["summary"]["verdict"] == "PLATEAU",
              f"{what}: exit {rc}, verdict {doc['summary']['verdict']}")
        p = root_proc(doc)
        st = stacks_at(p, "cache_store")
        check(st and st[0]["verdict"] == "PLATEAU", f"{what}: cache_store {st and st[0]['verdict']}")
        age = st[0]["age"]
        check(age["judged"] and age["trend_verdict"] == "CREEP" and age["survival"] < 0.05,
              f"{what}: age {age}")
        heap = p["metrics"]["live_heap"]
        check(heap["verdict"] == "PLATEAU" and heap["age"]["trend_verdict"] == "CREEP",
              f"{what}: live heap {heap['verdict']}, age {heap.get('age')}")
        check("old blocks are replaced, not kept" in " ".join(err.split()),
              f"{what}: the report does not say why")
    rc, out, err = memcreep(["report", LAST_OUT, "--reanalyze", "--format", "json"])
    check(rc == 0, f"--reanalyze: exit {rc}: {err}")
    again = json.loads(out)
    check(again["summary"]["verdict"] == "PLATEAU", f"reanalyzed: {again['summary']['verdict']}")
    doc, _, _ = run_target([fixture("leak_linear"), "100000", "1000"], ["-d", "6"])
    st = stacks_at(root_proc(doc), "leaky_store")
    check(st and st[0]["verdict"] == "CREEP", "leak_linear: leaky_store is not CREEP")
    age = st[0].get("age", {})
    check(age.get("judged") and age["survival"] > 0.95, f"leak_linear: age {age}")


def case_sawtooth():
    doc, _, _ = run_target([fixture("sawtooth"), "2500", "1000"], ["--fail-on-creep"],
                           expect_rc=0)
    p = root_proc(doc)
    for s in stacks_at(p, "batch_add"):
        check(s["verdict"] == "STEADY", f"batch_add verdict {s['verdict']}")
    check(doc["summary"]["verdict"] == "STEADY", f"summary {doc['summary']['verdict']}")


def case_clean():
    doc, _, _ = run_target([fixture("clean_steady"), "2500", "1000"], ["--fail-on-creep"],
                           expect_rc=0)
    p = root_proc(doc)
    check(not creeping(p), f"clean program creeps at {creeping(p)}")
    check(doc["summary"]["verdict"] == "STEADY", f"summary {doc['summary']['verdict']}")
    check(p["metrics"]["live_heap"]["verdict"] == "STEADY", "live heap")


def case_short():
    """A run of 2 s, default options, judges: the leak is CREEP at its site
    with its rate, the clean program STEADY, 5 runs of 5 each; and the
    report gives the run's samples."""
    for run in range(5):
        doc, rc, err = run_target([fixture("leak_linear"), "100000", "1000"], ["-d", "2"])
        what = f"leak, run {run + 1}"
        check(doc["summary"]["verdict"] == "CREEP", f"{what}: {doc['summary']}")
        expect_creep(root_proc(doc), "leaky_store", 256)
        check(doc["run"]["samples"] >= 30, f"{what}: {doc['run']['samples']} samples")
        doc, rc, err = run_target([fixture("clean_steady"), "100000", "1000"],
                                  ["-d", "2", "--fail-on-creep"])
        check(rc == 0 and doc["summary"]["verdict"] == "STEADY",
              f"clean, run {run + 1}: exit {rc}, {doc['summary']}")


def case_resources():
    """Descriptors, CLOSE_WAIT sockets and threads that grow with work are
    found from outside (/proc), with their rate per unit; heavy descriptor
    turnover is not."""
    cases = [("fds", "fds", "FD CREEP", 250), ("close-wait", "tcp_close_wait",
             "SOCKET CREEP (CLOSE_WAIT: peers closed, we did not)", 250),
             ("threads", "threads", "THREAD CREEP", 125)]
    for mode, metric, kind, per_k in cases:
        doc, _, _ = run_target([fixture("fd_leak"), "2000", "1000", mode], ["--fail-on-creep"],
                               expect_rc=1)
        p = root_proc(doc)
        m = p["metrics"][metric]
        check(m["verdict"] == "CREEP", f"{mode}: {metric} verdict {m['verdict']}")
        rate = m["per_unit"] * 1000
        check(abs(rate - per_k) <= 0.1 * per_k, f"{mode}: {rate:.0f} per 1000 units, want {per_k}")
        kinds = [f["kind"] for f in doc["summary"]["findings"]]
        check(kind in kinds, f"{mode}: findings {kinds}")
        if mode != "threads":  # a thread's stack and TLS are memory that grows too
            check(not creeping(p), f"{mode}: memory creeps at {creeping(p)}")
            # The descriptor hooks name the opening line and the kind.
            f = [f for f in doc["summary"]["findings"] if f["kind"] == kind][0]
            st = f["stacks"][0]
            want = {"fds": ("keep_fd", "file"), "close-wait": ("keep_close_wait", "tcp")}[mode]
            check(site(st)["function"] == want[0] and st["kinds"].get(want[1], 0) >= 480,
                  f"{mode}: opened by {site(st)['function']}, kinds {st['kinds']}")
            check(abs(st["per_unit"] * 1000 - per_k) <= 0.1 * per_k,
                  f"{mode}: stack rate {st['per_unit'] * 1000:.0f} per 1000")
        else:
            f = [f for f in doc["summary"]["findings"] if f["kind"] == kind][0]
            st = f["stacks"][0]
            check(st["frames"][st["site"]]["function"] == "keep_thread" and st["count"] >= 240,
                  f"thread creator {st['frames'][st['site']]}, {st['count']} threads")
    doc, _, _ = run_target([fixture("fd_leak"), "2000", "1000", "clean"], ["--fail-on-creep"],
                           expect_rc=0)
    check(doc["summary"]["verdict"] == "STEADY" and not doc["summary"]["findings"],
          f"clean: {doc['summary']}")
    # TIME_WAITs on the process's listening port (one per 4 units, none
    # expires within the run) are counted, with a second listener in the
    # kernel's filter: each point holds one per 4 units done (the last
    # repeats the reading before the exit), within what the fixture does
    # while the table is read: a sample's work count is the midpoint of
    # the readings before and after /proc, and when CI's parallel tests
    # take the cores (ASan) that window spans up to ~150 units (5% of the
    # count, where a port left out would be half of it).
    doc, _, _ = run_target([fixture("fd_leak"), "2000", "1000", "time-wait"])
    p = root_proc(doc)
    tw, work = p["series"]["time_wait"][:-1], p["series"]["work"][:-1]
    off = max(abs(t - w / 4) for t, w in zip(tw, work))
    rate = p["metrics"]["time_wait"]["per_unit"] * 1000
    check(tw[-1] >= 400 and off <= max(4, 0.05 * tw[-1]) and abs(rate - 250) <= 25,
          f"time-wait: {tw[-1]:.0f} at {work[-1]:.0f} units (off by up to {off:.1f}), "
          f"{rate:.0f} per 1000 units, want 1 per 4 units")


def case_fd_behaviour():
    """The descriptor calls behave the same under the preload (errno, bad
    closes, modes, SCM_RIGHTS, fork, vfork), and what is open is counted by
    kind: a forked child's close is its own, a vfork child's close is not
    the parent's, and after exec only what lacked O_CLOEXEC is inherited."""
    argv = [fixture("fd_behaviour")]
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    doc, rc, err = run_target(argv)
    out = subprocess.run([ARGS.memcreep, "run", "-q", "--"] + argv, capture_output=True,
                         text=True, timeout=60).stdout

    def checks(text):
        return [line for line in text.splitlines() if not line.startswith("inherited")]
    check(plain.returncode == 0 and "FAIL" not in plain.stdout, f"plain run: {plain.stdout}")
    check(checks(out) == checks(plain.stdout), f"output differs under memcreep:\n{out}")
    check(rc == 0, f"exit {rc}: {err}")
    procs = doc["processes"]
    first = [p for p in procs if p["root"] and p["end"]["how"] == "exec"]
    check(first, f"no image replaced by exec: {[(p['pid'], p['end']) for p in procs]}")
    d1 = first[0]["descriptors"]
    o = d1["open"]
    check(o.get("tcp") == 1 and o.get("unix") == 2 and o.get("event") == 1 and
          o.get("pipe", 0) >= 3 and o.get("file", 0) >= 1 and d1["opened"] == 12,
          f"first image: {d1}")
    d2 = root_proc(doc)["descriptors"]
    # Stage 2 opened (and closed) one directory to count its descriptors.
    check(d2["inherited"] == d1["inherited"] + 1 and d2["opened"] == 1 and
          sum(d2["open"].values()) == d2["inherited"],
          f"after exec: {d2}, expected {d1['inherited'] + 1} inherited")
    kids = [p for p in procs if not p["root"] and p["preloaded"]]
    check(len(kids) == 1, f"children: {[(p['pid'], p['end']) for p in kids]}")
    dk = kids[0]["descriptors"]["open"]
    check("event" not in dk and dk.get("tcp") == 1, f"forked child: {dk}")


def case_signals():
    """Signals whose handlers call hooked functions (dup, close), from a
    timer and aimed at each allocating thread: the program behaves as it
    does plainly, and its leak is still measured at its rate."""
    argv = [fixture("signal_storm"), "600", "4000"]
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    check(plain.returncode == 0 and "FAIL" not in plain.stdout, f"plain run: {plain.stdout}")
    # A deadlocked target is stopped by -d (and its output cut short), so
    # that a hang fails here rather than at the test's time limit.
    rc, out, err = memcreep(["run", "-q", "-d", "60s", "--"] + argv)
    check(rc == 0 and out == plain.stdout, f"under memcreep (exit {rc}):\n{out}{err}")
    doc, _, _ = run_target(argv, ["-d", "60s"])
    p = root_proc(doc)
    check(p["end"]["how"] == "exited" and p["end"]["status"] == 0, f"end: {p['end']}")
    expect_creep(p, "storm_leak", 64)
    expect_only_creep(p, ["storm_leak", "worker"])
    kinds = [f["kind"] for f in doc["summary"]["findings"]]
    check(not any(k.startswith(("FD", "SOCKET")) for k in kinds), f"findings {kinds}")


def case_churn():
    """Seed 002: a new connection per request is CONNECTION CHURN, with the
    connecting line, although nothing leaks; the pooled client is not."""
    doc, rc, err = run_target([fixture("fd_leak"), "2000", "1000", "churn"], ["--fail-on-creep"])
    check(rc == 0, f"churn is not creep: exit {rc}: {err}")
    f = [f for f in doc["summary"]["findings"] if f["kind"] == "CONNECTION CHURN"]
    check(f, f"no CONNECTION CHURN in {doc['summary']['findings']}")
    rate = f[0]["evidence"]["per_unit"]
    check(abs(rate - 1.0) <= 0.1, f"{rate:.2f} connections per unit, expected 1")
    st = f[0]["stacks"][0]
    check(st["frames"][st["site"]]["function"] == "connect_per_request",
          f"connecting site {st['frames'][st['site']]}")
    check("connections started from connect_per_request" in err, "the report does not name the site")
    doc, rc, _ = run_target([fixture("fd_leak"), "2000", "1000", "pooled"], ["--fail-on-creep"])
    kinds = [f["kind"] for f in doc["summary"]["findings"]]
    check(rc == 0 and not kinds, f"pooled: exit {rc}, findings {kinds}")


def case_retention():
    """Seed 003: RSS stays up although the program freed its burst. That is
    ALLOCATOR RETENTION, not creep, and malloc_trim(0) in the target gives
    the memory back; a real leak is not called retention."""
    doc, rc, err = run_target([fixture("retention"), "100000", "1000"], ["-d", "3",
                                                                         "--fail-on-creep"])
    check(rc == 0, f"exit {rc}: {err}")
    kinds = [f["kind"] for f in doc["summary"]["findings"]]
    check(kinds == ["ALLOCATOR RETENTION"], f"findings {kinds}")
    ev = doc["summary"]["findings"][0]["evidence"]
    check(ev["served"] and ev["recovered"] >= 50 * 2**20,
          f"malloc_trim recovered {ev['recovered'] / 2**20:.1f} MiB")
    check(ev["allocator_free"] > 10 * ev["live_heap"], f"evidence {ev}")
    check(doc["summary"]["verdict"] != "CREEP", "retention reported as creep")
    check("malloc_trim(0) gave back" in err, "the report does not say what malloc_trim gave back")
    doc, _, _ = run_target([fixture("leak_linear"), "100000", "1000"], ["-d", "3"])
    kinds = [f["kind"] for f in doc["summary"]["findings"]]
    check("ALLOCATOR RETENTION" not in kinds, "a leak called retention")
    check(root_proc(doc)["malloc_trim"]["served"], "trim not served in a busy target")


def case_retention_rest():
    """Retention measured at rest, by the library's rest thread. A server
    that frees its 50 MiB bursts but holds the top of its heap: RETENTION,
    malloc_trim gives back >= 45 MiB, and the block holding the top is
    named; the same server with nothing holding the top trims by itself: no
    finding, also when the library's thread starts in the middle of a burst
    (slowtrim: what glibc allocates for it is not put in the program's
    heap, where it would hold the top); the holding server gone idle for
    good after its bursts is measured too. Three runs of each, every one
    right. The library's thread is not counted in the target's threads."""
    for run in range(3):
        for mode in ("pinned", "selftrim", "slowtrim", "idle"):
            args = [fixture("retention_bursts"), mode] + (["6"] if mode == "idle" else [])
            doc, rc, err = run_target(args, ["-d", "3", "--fail-on-creep"])
            what = f"{mode}, run {run + 1}"
            check(rc == 0, f"{what}: exit {rc}: {err}")
            kinds = [f["kind"] for f in doc["summary"]["findings"]]
            t = root_proc(doc)["malloc_trim"]
            check(t["served"] and t["by"] == "rest thread", f"{what}: trim {t}")
            check(root_proc(doc)["series"]["threads"][-1] == 1,
                  f"{what}: threads {root_proc(doc)['series']['threads'][-1]}")
            if mode in ("selftrim", "slowtrim"):
                check(kinds == [], f"{what}: findings {kinds}: {t}")
                continue
            check(kinds == ["ALLOCATOR RETENTION"], f"{what}: findings {kinds}")
            check(t["at_rest"], f"{what}: not measured at rest: {t}")
            check(t["recovered"] >= 45 * 2**20, f"{what}: trim gave back {t['recovered'] / 2**20:.1f} MiB")
            top = t["heap_top"][0]
            check(top["frames"][top["site"]]["function"] == "hold_top" and top["bytes"] == 64,
                  f"{what}: heap top {top['bytes']} B at {top['frames'][top['site']]}")
            check("the top of the heap is held by 64 B from hold_top" in " ".join(err.split()),
                  f"{what}: the report does not name what holds the heap's top")


def case_real_programs():
    """Debian programs give the same output under the preload."""
    script = ("import json, collections, hashlib\n"
              "d = {str(i): [i] * (i % 7) for i in range(20000)}\n"
              "c = collections.Counter(len(v) for v in d.values())\n"
              "print(hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest())\n"
              "print(sorted(c.items()))\n")
    lines = "\n".join(str((i * 7919) % 10007) for i in range(20000)) + "\n"
    progs = [(["/usr/bin/python3", "-c", script], None),
             (["/usr/bin/sort", "-n"], lines),
             (["/usr/bin/git", "--version"], None)]
    for argv, stdin in progs:
        if not os.path.exists(argv[0]):
            continue
        plain = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
        rc, out, err = memcreep(["run", "-q", "--"] + argv, input=stdin)
        check(rc == 0, f"{argv[0]}: memcreep exit {rc}: {err}")
        check(out == plain.stdout, f"{argv[0]}: output differs under memcreep")
        check(len(out) > 0, f"{argv[0]}: no output")
    # With the report: the python run yields a process with stacks in libpython.
    doc, _, _ = run_target(["/usr/bin/python3", "-c", script])
    p = root_proc(doc)
    mods = {f.get("module") for s in p["stacks"] for f in s["frames"]}
    check(any(m and m.startswith(("python3", "libpython")) for m in mods),
          f"no python frames in {sorted(m for m in mods if m)}")


def start_long_run(out):
    """memcreep run on a leak that would last 1000 s; returns (memcreep's
    Popen, the target's pid) once the target runs."""
    p = subprocess.Popen([ARGS.memcreep, "run", "-i", "0.05", "-o", out, "--",
                          fixture("leak_linear"), "1000000", "1000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = None
    deadline = time.time() + 20
    while time.time() < deadline and target is None:
        time.sleep(0.2)
        try:
            with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                kids = f.read().split()
            target = int(kids[0]) if kids else None
        except OSError:
            pass
    if target is None:
        p.kill()
    check(target, "target never started")
    return p, target


def running(pid):
    """True while pid is a live process (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def case_sigkill():
    """A target killed with SIGKILL mid-run still yields its report; when
    memcreep itself is killed, the target is stopped, not left running."""
    out = tempfile.mkdtemp(prefix="mc-scenario-")
    p, target = start_long_run(out)
    time.sleep(2.5)
    os.kill(target, signal.SIGKILL)
    _, err = p.communicate(timeout=60)
    # Killed by a signal memcreep did not send: the target failed (5).
    check(p.returncode == 5, f"memcreep exit {p.returncode}, expected 5: {err}")
    with open(os.path.join(out, "result.json")) as f:
        doc = json.load(f)
    r = root_proc(doc)
    check(r["end"]["how"] == "signaled" and r["end"]["signal"] == 9, f"end {r['end']}")
    expect_creep(r, "leaky_store", 256)
    check("killed by signal 9" in err, "report does not say how the run ended")

    p, target = start_long_run(tempfile.mkdtemp(prefix="mc-scenario-"))
    time.sleep(1)
    p.kill()
    p.communicate(timeout=30)
    deadline = time.time() + 10
    while time.time() < deadline and running(target):
        time.sleep(0.1)
    alive = running(target)
    if alive:
        os.kill(target, signal.SIGKILL)
    check(not alive, "the target runs on after memcreep was killed")


def case_bad_input():
    """Each bad input gives one line on stderr and its documented status."""
    plain = os.path.join(tempfile.mkdtemp(prefix="mc-scenario-"), "data.txt")
    with open(plain, "w") as f:
        f.write("not a program\n")
    os.chmod(plain, 0o644)
    cases = [
        (["run", "--bogus", "--", "true"], 2, "unknown option"),
        (["run"], 2, "no target"),
        (["run", "--"], 2, "no target"),
        (["run", "-d", "abc", "--", "true"], 2, "duration"),
        (["run", "--depth", "0", "--", "true"], 2, "out of range"),
        (["run", "--", "/nonexistent/prog"], 3, "No such file"),
        (["run", "--", plain], 3, "not executable"),
        (["run", "--", "/usr/bin"], 3, "directory"),
        (["run", "--", "/bin/false"], 3, "exited at once"),
        (["run", "-o", "/proc/version/x", "--", "true"], 2, "output directory"),
        (["frobnicate"], 2, "unknown command"),
    ]
    for args, status, words in cases:
        rc, _, err = memcreep(args, timeout=30)
        lines = [l for l in err.splitlines() if l.startswith("memcreep:")]
        check(rc == status, f"{args}: exit {rc}, expected {status}: {err}")
        check(len(lines) >= 1 and words in lines[0], f"{args}: message {err!r}")
        check("Traceback" not in err and "Segmentation" not in err, f"{args}: crashed")
    rc, out, _ = memcreep(["--help"])
    check(rc == 0 and "exit status" in out, "--help documents exit statuses")


def case_static_target():
    doc, rc, err = run_target([fixture("leak_static"), "1500", "1000"])
    check(rc == 3, f"exit {rc}, expected 3")
    check("statically linked" in err, "no word about the static target")
    check(doc["run"]["preload"] is False, "result claims the preload worked")
    p = [p for p in doc["processes"] if p["root"]][0]
    check("rss" in p["metrics"] and p["series"]["rss"][-1] > 0, "no RSS series")


def case_report_cmd():
    doc, _, _ = run_target([fixture("leak_linear"), "1500", "1000"])
    out = tempfile.mkdtemp(prefix="mc-scenario-")
    path = os.path.join(out, "result.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    rc, text, err = memcreep(["report", out, "--color", "never"])
    check(rc == 0 and "leaky_store" in text and "CREEP" in text, f"report: {rc} {err}")
    rc, js, _ = memcreep(["report", path, "--format", "json"])
    check(rc == 0 and json.loads(js)["summary"] == doc["summary"], "json round trip")
    bad = os.path.join(out, "bad.json")
    for content in ["{", "[]", '{"schema": "memcreep-run", "version": 99}', ""]:
        with open(bad, "w") as f:
            f.write(content)
        rc, _, err = memcreep(["report", bad])
        check(rc == 2 and err.startswith("memcreep: ") and len(err.splitlines()) == 1,
              f"bad file {content!r}: exit {rc}: {err!r}")


def case_diff():
    """memcreep diff: a leaking run against a clean one shows the leaking
    stack gone with its rate; a run against itself changes nothing; bad
    input is one line and exit 2."""
    doc_a, _, _ = run_target([fixture("leak_linear"), "2500", "1000"])
    a = LAST_OUT
    run_target([fixture("clean_steady"), "2500", "1000"])
    b = LAST_OUT
    rc, text, err = memcreep(["diff", a, b])
    check(rc == 0, f"diff: exit {rc}: {err}")
    # Each stack: its numbers, then "at" its site and callers.
    lines = text.splitlines()
    at = [i for i, ln in enumerate(lines) if ln.strip().startswith("at leaky_store")]
    line = [lines[at[0] - 1]] if at else []
    check(line and line[0].rstrip().endswith("(gone)"), f"leaky_store line: {line}")
    rate = float(line[0].split()[0].lstrip("+"))
    check(line[0].split()[1] == "B" and abs(rate - 256) <= 25.6, f"rate in {line[0]!r}")
    check("live heap per unit" in text and "clean_steady" in text, f"diff text:\n{text}")
    rc, text, _ = memcreep(["diff", a, a])
    check(rc == 0 and "(gone)" not in text and "(new)" not in text, "a run against itself")
    for argv in (["diff", a], ["diff", a, "/nonexistent/run"], ["diff", "-x", a]):
        rc, _, err = memcreep(argv)
        check(rc == 2 and len(err.splitlines()) == 1 and err.startswith("memcreep: "),
              f"{argv}: exit {rc}: {err!r}")


def run_case(cases):
    """Parses the command line, runs case_<CASE> from cases (a module's
    globals), prints ok or FAIL; returns the exit status. Sets ARGS here and
    returns it through cases["ARGS"] as well."""
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("case")
    ARGS = cases["ARGS"] = ap.parse_args()
    fn = cases.get("case_" + ARGS.case)
    if not fn:
        print(f"unknown case {ARGS.case}", file=sys.stderr)
        return 2
    try:
        fn()
    except Failure as e:
        print(f"FAIL {ARGS.case}: {e}", file=sys.stderr)
        return 1
    print(f"ok {ARGS.case}")
    return 0


if __name__ == "__main__":
    sys.exit(run_case(globals()))
