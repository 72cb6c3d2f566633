"""py_workload.py - an allocation-heavy Python program (about 2 s plain on
the benchmark machine): request-like objects built, kept in a rolling
window, serialized and dropped, as a service's handlers do."""
import collections
import json
import sys


class Request:
    def __init__(self, i):
        self.id = i
        self.headers = {"x-id": str(i), "accept": "application/json", "n": i % 7}
        self.path = f"/api/items/{i % 1000}"
        self.body = [i, i * 2, "payload-%d" % i]


def handle(req):
    doc = {"id": req.id, "path": req.path, "items": [x for x in req.body], "h": req.headers}
    return json.dumps(doc)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300000
    window = collections.deque(maxlen=5000)
    total = 0
    for i in range(n):
        r = Request(i)
        window.append(r)
        total += len(handle(r))
    print(total)


if __name__ == "__main__":
    main()
