"""py_snapshot.py - a heap of N tracked objects (one-element lists), kept
for S seconds: what one Python snapshot costs at that size. Run plain, it
also times a full collection and gc.get_objects() of the same heap, for
comparison (printed as "gc.collect MS get_objects MS").
usage: py_snapshot.py N SECONDS [plain]"""
import gc
import sys
import time


def main():
    n, secs = int(sys.argv[1]), float(sys.argv[2])
    keep = [[i] for i in range(n)]
    if len(sys.argv) > 3:
        t = time.perf_counter()
        gc.collect()
        c = time.perf_counter() - t
        t = time.perf_counter()
        objs = gc.get_objects()
        g = time.perf_counter() - t
        del objs
        print(f"gc.collect {c * 1000:.1f} get_objects {g * 1000:.1f}")
    end = time.monotonic() + secs
    while time.monotonic() < end:
        time.sleep(0.05)
    return len(keep)


main()
