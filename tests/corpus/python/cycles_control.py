"""cycles_control.py - control: each request builds a parent/child cycle
that the garbage collector frees: garbage, not growth."""
import corpus


class Node:
    def __init__(self, parent=None):
        self.parent = parent
        self.children = []
        self.payload = bytes(200)


def handle(i):
    root = Node()
    for _ in range(5):
        root.children.append(Node(root))


corpus.serve(handle)
