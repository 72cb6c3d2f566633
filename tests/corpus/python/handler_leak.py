"""handler_leak.py - leak: a logging handler added to the same logger at
every request (the classic per-request addHandler)."""
import io
import logging

import corpus

log = logging.getLogger("svc")
log.propagate = False


def handle(i):
    h = logging.StreamHandler(io.StringIO())
    log.addHandler(h)


corpus.serve(handle, 3000)
