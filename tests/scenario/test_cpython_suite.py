"""CPython's own regression suite (Debian's libpython3.11-testsuite) run
plain and under `memcreep run`: every case must end the same way (passed,
failed, errored, skipped), memcreep must add no "environment changed"
module that plain does not have, and memcreep's exit status must follow
the suite's (0 when it passed, 5 when it failed).

A case that differs is run again plain, its module alone: a case that two
plain runs disagree on is the suite's own flakiness (reported); any other
case that ends otherwise under memcreep fails the test.

Usage: test_cpython_suite.py --memcreep PATH --fixtures DIR {slice|full}
"""
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_run import Failure, check, run_case  # noqa: E402,F401

ARGS = None
PY = "/usr/bin/python3"

# The default suite's slice: what the preload touches most (descriptors,
# signals, fork and exec, threads, the collector, memory), a few minutes.
SLICE = ["test_gc", "test_subprocess", "test_signal", "test_fork1", "test_fcntl", "test_pty",
         "test_select", "test_selectors", "test_thread", "test_threading_local", "test_weakref",
         "test_tracemalloc", "test_resource", "test_mmap", "test_faulthandler"]
# The whole set, behind the opt-in label: the slice and more of the
# standard library's heavy users of the system.
FULL = SLICE + ["test_os", "test_threading", "test_posix", "test_socket", "test_tempfile",
                "test_shutil", "test_json", "test_zlib", "test_ssl", "test_sys"]


def suite_cmd(modules, xml):
    # -j1: each module in a worker process of its own (processes come and
    # go under memcreep); network and GUI resources stay off.
    return [PY, "-m", "test", "-j1", "--timeout", "300", "--junit-xml", xml] + modules


def results(xml):
    """{case id: status} from regrtest's JUnit file (regrtest names a case
    test.test_gc.GCTests.test_x, with no classname)."""
    out = {}
    for tc in ET.parse(xml).getroot().iter("testcase"):
        cls = tc.get("classname")
        cid = f"{cls}.{tc.get('name')}" if cls else tc.get("name")
        status = "passed"
        for child in tc:
            if child.tag in ("failure", "error", "skipped"):
                status = {"failure": "failed", "error": "errored"}.get(child.tag, child.tag)
        out[cid] = status
    return out


def env_changed(stdout):
    """The modules regrtest says altered the execution environment."""
    m = re.search(r"(\d+) tests? altered the execution environment:\n((?:    .*\n)+)", stdout)
    if not m:
        m1 = re.search(r"^(test_\w+) failed \(env changed\)", stdout, re.M)
        return {m1.group(1)} if m1 else set()
    return set(m.group(2).split())


def run_plain(modules, d, tag):
    xml = os.path.join(d, f"{tag}.xml")
    t = time.time()
    p = subprocess.run(suite_cmd(modules, xml), capture_output=True, text=True, timeout=5400,
                       cwd=d, stdin=subprocess.DEVNULL)
    return p.returncode, results(xml), env_changed(p.stdout), time.time() - t, p.stdout


def run_under(modules, d, tag):
    xml = os.path.join(d, f"{tag}.xml")
    out = os.path.join(d, f"{tag}-run")
    t = time.time()
    p = subprocess.run([ARGS.memcreep, "run", "-q", "-o", out, "--"] + suite_cmd(modules, xml),
                       capture_output=True, text=True, timeout=5400, cwd=d,
                       stdin=subprocess.DEVNULL)
    return p.returncode, results(xml), env_changed(p.stdout), time.time() - t, p.stdout + p.stderr


def compare(modules):
    d = tempfile.mkdtemp(prefix="mc-cpython-")
    rc0, r0, env0, t0, out0 = run_plain(modules, d, "plain")
    rc1, r1, env1, t1, out1 = run_under(modules, d, "under")
    check(len(r0) > 100, f"plain run gave {len(r0)} cases:\n{out0[-3000:]}")
    differ = sorted(c for c in set(r0) | set(r1) if r0.get(c) != r1.get(c))
    flaky = []
    if differ:
        # Again, each differing case's module on its own, plain: a case
        # that plain ends otherwise the second time is the suite's own.
        mods = sorted({p for c in differ for p in c.split(".")} & set(modules))
        check(mods, f"cannot tell the modules of {differ[:5]}")
        _, r0b, _, _, _ = run_plain(mods, d, "plain2")
        flaky = [c for c in differ if r0.get(c) != r0b.get(c)]
        differ = [c for c in differ if c not in flaky]
    print(f"{len(r0)} cases in {len(modules)} modules: plain {t0:.0f} s, under memcreep "
          f"{t1:.0f} s ({t1 / t0:.2f}x); flaky on their own: {flaky}")
    check(not differ, "cases that end otherwise under memcreep: " +
          ", ".join(f"{c}: plain {r0.get(c)}, memcreep {r1.get(c)}" for c in differ[:20]))
    extra = env1 - env0
    check(not extra, f"environment changed only under memcreep: {sorted(extra)}\n{out1[-3000:]}")
    # memcreep fails (5) exactly when the suite failed under it: a case
    # failed or errored there (the plain run's status says nothing of it:
    # a case flaky on its own may fail there and pass under memcreep).
    failed_under = any(v in ("failed", "errored") for v in r1.values())
    want = 5 if failed_under else 0
    check(rc1 == want, f"memcreep exit {rc1}, the suite alone {rc0} (expected {want})\n"
                       f"{out1[-2000:]}")
    check(os.path.exists(os.path.join(d, "under-run", "result.json")), "no result.json")


def case_slice():
    compare(SLICE)


def case_full():
    compare(FULL)


if __name__ == "__main__":
    sys.exit(run_case(globals()))
