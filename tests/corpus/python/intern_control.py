"""intern_control.py - control: header names interned from a set of 200:
each is kept once, at its first sight."""
import sys

import corpus

SEEN = {}


def handle(i):
    name = sys.intern("x-header-%d" % ((i * 7919) % 200))
    SEEN[name] = SEEN.get(name, 0) + 1


corpus.serve(handle)
