"""dict_leak.py - leak: a memo keyed by request id, so no key is ever seen
twice and nothing is evicted."""
import corpus

MEMO = {}


def price(order_id):
    return {"order": order_id, "total": order_id * 3, "currency": "EUR",
            "lines": [order_id, order_id + 1]}


def handle(i):
    if i not in MEMO:
        MEMO[i] = price(i)


corpus.serve(handle)
