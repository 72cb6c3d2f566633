"""lru_control.py - control: functools.lru_cache(maxsize=256) over keys
drawn from a range of 2000: it fills, then evicts."""
import functools

import corpus


@functools.lru_cache(maxsize=256)
def render(key):
    return "<li>%d</li>" % key * 8


def handle(i):
    render((i * 7919) % 2000)


corpus.serve(handle)
