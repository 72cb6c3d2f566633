#!/usr/bin/python3
"""Makes the saved runs the report tests render (tests/report/golden/NAME/result.json, or h1/ and
h2/ in NAME for a run of both protocols):
real `memcreep run`s on the fixtures, each cut down to a handful of stacks
and types so the files stay small. The expected renderings are then made
with `test_report.py --update`. Run again only when the result's schema
changes; usage: make_inputs.py --memcreep BIN --fixtures DIR"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
PYFIX = os.path.join(HERE, "..", "fixtures", "python")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trim(doc, stacks=6, types=8):
    for p in doc["processes"]:
        p["stacks"] = p.get("stacks", [])[:stacks]
        if "python" in p:
            for k in ("types", "lines", "cycle_garbage", "sockets"):
                p["python"][k] = p["python"].get(k, [])[:types]
    return doc


def run(args, out, name, timeout=180):
    subprocess.run([ARGS.memcreep, "run", "-o", out] + args, timeout=timeout,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for sub in ("", "h1", "h2"):
        src = os.path.join(out, sub, "result.json")
        if os.path.exists(src) and (sub or not os.path.isdir(os.path.join(out, "h1"))):
            with open(src) as f:
                doc = trim(json.load(f))
            dst = os.path.join(GOLDEN, name, sub, "result.json")
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "w") as f:
                json.dump(doc, f, indent=1)
                f.write("\n")
            print("wrote", dst)


def main():
    fx = lambda n: os.path.join(ARGS.fixtures, n)  # noqa: E731
    tmp = tempfile.mkdtemp(prefix="mc-golden-")
    try:
        run(["-i", "0.05", "--", fx("leak_linear"), "2500", "1000"], f"{tmp}/a", "leak_linear")
        run(["-i", "0.05", "--", fx("clean_steady"), "2500", "1000"], f"{tmp}/b", "clean_steady")
        run(["-i", "0.05", "--", fx("fd_leak"), "2000", "1000", "close-wait"], f"{tmp}/c",
            "close_wait")
        port = free_port()
        run(["-i", "0.05", "--top", "20", "--url", f"http://127.0.0.1:{port}/", "--proto",
             "h1,h2", "--rounds", "6", "--round-requests", "500", "--", fx("h2_server"),
             "--port", str(port), "--leak"], f"{tmp}/d", "h2_leak")
        port = free_port()
        run(["-i", "0.05", "--url", f"http://127.0.0.1:{port}/", "-c", "4", "-d", "8s", "--rounds",
             "8", "--rate", "1000", "--py-trace", "2s", "--", "/usr/bin/python3",
             os.path.join(PYFIX, "py_service.py"), str(port), "keep"], f"{tmp}/e", "py_keep")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--fixtures", required=True)
    ARGS = ap.parse_args()
    main()
