"""corpus.py - the request loop every Python program of the corpus runs:
N requests (argv[1]), one every US microseconds (argv[2])."""
import sys
import time


def serve(handle, requests=4000):
    n = int(sys.argv[1]) if len(sys.argv) > 1 else requests
    us = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    for i in range(n):
        handle(i)
        if us:
            time.sleep(us / 1e6)
