"""pool_control.py - control: buffers taken from a free list that grows to
the peak concurrency (32) and is reused from then on."""
import corpus

FREE = []


def handle(i):
    held = []
    for _ in range(1 + (i * 37) % 32):
        held.append(FREE.pop() if FREE else bytearray(4096))
    FREE.extend(held)


corpus.serve(handle)
