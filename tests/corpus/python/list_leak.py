"""list_leak.py - leak: every request's record kept in a module-level
history that nothing trims."""
import corpus

HISTORY = []


class Record:
    def __init__(self, i):
        self.id = i
        self.path = "/api/items/%d" % i
        self.headers = {"x-id": str(i)}


def handle(i):
    scratch = [bytes(64) for _ in range(20)]  # the request's own work
    HISTORY.append(Record(i))
    del scratch


corpus.serve(handle)
