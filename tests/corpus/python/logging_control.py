"""logging_control.py - control: one handler (to /dev/null) set up once,
loggers looked up by name from a fixed set of 50 at each request, a line
logged."""
import logging
import os

import corpus

root = logging.getLogger("svc")
root.addHandler(logging.StreamHandler(open(os.devnull, "w")))
root.propagate = False


def handle(i):
    log = logging.getLogger("svc.route%d" % (i % 50))
    log.warning("request %d", i)


corpus.serve(handle)
