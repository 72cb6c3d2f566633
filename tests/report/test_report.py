#!/usr/bin/python3
"""Report format tests: every rendering of a saved run (tests/report/golden)
against what it must be. Usage: test_report.py --memcreep BIN CASE
[--update]; --update rewrites the expected text files from the current
renderer (check the diff before committing them)."""
import argparse
import os
import pty
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
WIDTH = 100


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def memcreep(args, timeout=60, binary=False):
    p = subprocess.run([ARGS.memcreep] + args, capture_output=True, text=not binary,
                       timeout=timeout)
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
        raise Fail(f"{os.path.relpath(expected_path, HERE)} differs:\n{d[:4000]}")


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
    rc, out, err = memcreep(["diff", golden("leak_linear"), golden("clean_steady")])
    check(rc == 0, f"diff: exit {rc}: {err}")
    width_ok(out, "diff")
    compare(out, os.path.join(GOLDEN, "diff.txt"))


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
    import re
    check(re.sub(r"\033\[[0-9;]*m", "", tty) == piped, "the terminal text differs beyond colours")
    width_ok(re.sub(r"\033\[[0-9;]*m", "", tty), "terminal")
    rc, always, _ = memcreep(["report", golden("leak_linear"), "--color", "always"])
    check("\033[1;31m" in always, "--color always gives no colour")


CASES = {name[5:]: fn for name, fn in list(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--update", action="store_true")
    ap.add_argument("case", choices=sorted(CASES))
    ARGS = ap.parse_args()
    try:
        CASES[ARGS.case]()
    except (Fail, subprocess.TimeoutExpired) as e:
        print(f"FAIL {ARGS.case}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"ok {ARGS.case}")
