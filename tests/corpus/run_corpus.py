"""run_corpus.py - memcreep's published accuracy: every program of the
corpus (manifest.json) run under `memcreep run` with default options, RUNS
times each, its findings compared with the truth.

Per kind (memory, objects, fd, thread), over all runs:
  TP  the kind was expected and reported, at an acceptable site or type
  FN  expected, not reported so
  FP  reported where it was not expected (nor allowed), or at a site or
      type that is not the program's
  precision = TP / (TP + FP), recall = TP / (TP + FN)
and, for the controls (cases that expect nothing), every run whose summary
said CREEP. Exits 1 when a goal is missed (precision and recall >= 0.95 per
kind, no false CREEP), 0 when all are met.

usage: run_corpus.py --memcreep BIN --programs DIR [--runs N] [--quick]
                     [--only NAME,...] [--markdown] [--keep DIR]"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
KINDS = ["memory", "objects", "fd", "thread"]
FD_CODES = {"fd_creep", "socket_creep", "close_wait_creep"}
THREAD_CODES = {"thread_creep", "unjoined_thread_creep"}


def site_function(stack):
    at = stack.get("site", -1)
    frames = stack.get("frames", [])
    return frames[at]["function"] if 0 <= at < len(frames) else "??"


def reported(doc):
    """What a result reports, by kind: {kind: set of sites or types}."""
    out = {k: set() for k in KINDS}
    for p in doc["processes"]:
        for s in p.get("stacks", []):
            if s["verdict"] == "CREEP":
                out["memory"].add(site_function(s).split(".")[-1])
    for f in doc["summary"]["findings"]:
        if f["code"] in FD_CODES:
            out["fd"].add("")
        elif f["code"] in THREAD_CODES:
            out["thread"].add("")
        elif f["code"] == "python_objects_creep":
            out["objects"].update(t["type"] for t in f.get("types", []))
    return {k: v for k, v in out.items() if v}


def acceptable(got, names):
    """Whether every site or type reported is one of names ('*': any;
    no names: the kind has none)."""
    return not names or "*" in names or got <= set(names)


def judge(case, rep, tally):
    """Adds one run's outcome to tally[kind] = [TP, FP, FN]; returns the
    run's mistakes, as text."""
    expect, allow = case.get("expect", {}), case.get("allow", {})
    wrong = []
    for k in KINDS:
        got = rep.get(k, set())
        if k in expect:
            names = expect[k] + allow.get(k, [])
            if got and acceptable(got, names):
                tally[k][0] += 1
            elif got:
                tally[k][1] += 1
                tally[k][2] += 1
                wrong.append(f"{k} at {sorted(got)}, expected {expect[k]}")
            else:
                tally[k][2] += 1
                wrong.append(f"{k} not reported")
        elif got and not (k in allow and acceptable(got, allow[k])):
            tally[k][1] += 1
            wrong.append(f"{k} reported at {sorted(got)}, none expected")
    return wrong


def run_case(a, case, tmp):
    out = os.path.join(tmp, case["name"])
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(tmp, exist_ok=True)
    if case["lang"] == "python":
        target = [PYTHON, os.path.join(HERE, "python", case["name"])]
    else:
        target = [os.path.join(a.programs, case["name"])]
    p = subprocess.run([a.memcreep, "run", "-q", "-o", out, "--"] + target + case["args"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300)
    path = os.path.join(out, "result.json")
    if not os.path.exists(path):
        sys.exit(f"run_corpus: {case['name']}: no result (exit {p.returncode}): {p.stderr}")
    with open(path) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcreep", required=True)
    ap.add_argument("--programs", required=True, help="where the C programs were built")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="the manifest's quick subset")
    ap.add_argument("--only", default="")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--keep", help="keep every run's output under this directory")
    a = ap.parse_args()
    with open(os.path.join(HERE, "manifest.json")) as f:
        manifest = json.load(f)
    cases = manifest["cases"]
    if a.quick:
        cases = [c for c in cases if c["name"] in manifest["quick"]]
    if a.only:
        cases = [c for c in cases if c["name"] in a.only.split(",")]
    tmp = a.keep or tempfile.mkdtemp(prefix="mc-corpus-")
    tally = {k: [0, 0, 0] for k in KINDS}
    false_creep, controls, mistakes = 0, 0, []
    for r in range(a.runs):
        for case in cases:
            doc = run_case(a, case, os.path.join(tmp, f"run{r + 1}"))
            wrong = judge(case, reported(doc), tally)
            if not case.get("expect"):
                controls += 1
                if doc["summary"]["verdict"] == "CREEP":
                    false_creep += 1
                    wrong.append("summary CREEP on a control")
            if wrong:
                mistakes.append(f"run {r + 1} {case['name']}: " + "; ".join(wrong))
            print(f"run {r + 1} {case['name']:22} {doc['summary']['verdict']:8} "
                  f"{'ok' if not wrong else 'WRONG: ' + '; '.join(wrong)}", flush=True)
    ok = false_creep == 0
    if a.markdown:
        print("\n| kind | TP | FP | FN | precision | recall |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
    else:
        print()
    for k in KINDS:
        tp, fp, fn = tally[k]
        if tp + fp + fn == 0:
            continue
        prec = tp / (tp + fp) if tp + fp else 1.0
        rec = tp / (tp + fn) if tp + fn else 1.0
        ok = ok and prec >= 0.95 and rec >= 0.95
        if a.markdown:
            print(f"| {k} | {tp} | {fp} | {fn} | {prec:.2f} | {rec:.2f} |")
        else:
            print(f"{k:8} TP {tp:3} FP {fp:3} FN {fn:3}  precision {prec:.2f}  recall {rec:.2f}")
    print(f"\n{len(cases)} programs, {a.runs} runs each; controls: {false_creep} CREEP "
          f"in {controls} runs")
    for m in mistakes:
        print("  " + m)
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
