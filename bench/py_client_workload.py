"""py_client_workload.py - a Python client that opens an httpx.Client per
request (and so an SSL context, with the system's CA certificates loaded
into OpenSSL), as seed 002's services do: the allocation-heavy native work
under a deep Python stack.
usage: py_client_workload.py URL REQUESTS"""
import sys

import httpx


def main():
    url, n = sys.argv[1], int(sys.argv[2])
    for _ in range(n):
        with httpx.Client() as c:
            c.get(url)


main()
