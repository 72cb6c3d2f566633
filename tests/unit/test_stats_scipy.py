"""Checks analysis/stats.c against scipy (python3-scipy) on random series,
with and without ties: Theil-Sen against scipy.stats.theilslopes, the
Mann-Kendall test against scipy.stats.kendalltau(method="asymptotic",
alternative="greater"), least squares against scipy.stats.linregress.
usage: test_stats_scipy.py STATS_CLI"""
import json
import random
import subprocess
import sys

from scipy import stats


def close(a, b, rel=1e-9, absolute=1e-12):
    return abs(a - b) <= max(absolute, rel * max(abs(a), abs(b)))


def main():
    cli = sys.argv[1]
    rng = random.Random(20261122)
    failures = 0
    for case in range(60):
        n = rng.choice([12, 13, 20, 37, 64, 128, 256])
        kind = case % 4
        x = list(range(n)) if kind != 3 else sorted(rng.randrange(n // 2) for _ in range(n))
        if kind == 0:      # linear with noise
            y = [rng.gauss(250 * i, 400) for i in x]
        elif kind == 1:    # integers with many ties (live counts)
            y = [rng.randrange(5) + i // 10 for i in x]
        elif kind == 2:    # sawtooth
            y = [float((i % 7) * 1000) for i in x]
        else:              # ties in x too (work did not move between samples)
            y = [rng.gauss(3 * i, 2) for i in x]
        inp = "".join(f"{a!r} {b!r}\n" for a, b in zip(x, y))
        out = json.loads(subprocess.run([cli], input=inp, capture_output=True, text=True,
                                        check=True).stdout)
        ts = stats.theilslopes(y, x)
        kt = stats.kendalltau(x, y, method="asymptotic", alternative="greater")
        lr = stats.linregress(x, y)
        checks = [("theil slope", out["theil_slope"], ts[0]),
                  ("theil intercept", out["theil_intercept"], ts[1]),
                  ("kendall tau", out["tau"], kt.correlation),
                  ("mann-kendall p", out["mk_p"], kt.pvalue),
                  ("ols slope", out["ols_slope"], lr.slope),
                  ("ols intercept", out["ols_intercept"], lr.intercept),
                  ("r squared", out["r2"], lr.rvalue ** 2)]
        for name, ours, ref in checks:
            if ref != ref:  # scipy's nan (no variance): ours must say "no trend"
                ok = name != "mann-kendall p" or ours == 0.5
            else:
                ok = close(ours, ref, rel=1e-7, absolute=1e-9)
            if not ok:
                failures += 1
                print(f"case {case} (n={n}, kind={kind}): {name}: ours {ours!r}, scipy {ref!r}")
    if failures:
        print(f"{failures} mismatches")
        return 1
    print("60 series: Theil-Sen, Mann-Kendall and OLS match scipy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
