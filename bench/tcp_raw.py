"""Raw TCP throughput between the two lab hosts: the physical limit a migration can reach here.

    ip netns exec ferrylab-bench .venv/bin/python bench/tcp_raw.py --streams 4 --seconds 3

A receiver process listens on the destination host's address (127.0.0.3) and a sender process
connects from the source's (127.0.0.2) with the given number of parallel streams, each a thread
that sends 1 MiB buffers for the given time, as a migration's multifd channels do. Prints one
JSON object: bytes received, the receiver's seconds from first to last byte, MiB/s and Gbit/s.
Standard library only; it must run inside the lab's network namespace.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import threading
import time

CHUNK = 1 << 20


def _receive(port: int, streams: int, ready, out) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.3", port))
    server.listen(streams)
    ready.set()
    totals, firsts, lasts = [0] * streams, [0.0] * streams, [0.0] * streams

    def drain(i: int, conn: socket.socket) -> None:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        with conn:
            while True:
                n = conn.recv_into(view)
                if not n:
                    break
                if not totals[i]:
                    firsts[i] = time.monotonic()
                totals[i] += n
                lasts[i] = time.monotonic()

    threads = []
    for i in range(streams):
        conn, _ = server.accept()
        thread = threading.Thread(target=drain, args=(i, conn))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    server.close()
    seconds = max(lasts) - min(f for f in firsts if f)
    out.put({"bytes": sum(totals), "seconds": seconds})


def measure(streams: int, seconds: float, port: int = 5299) -> dict:
    ctx = multiprocessing.get_context("fork")
    ready, out = ctx.Event(), ctx.Queue()
    receiver = ctx.Process(target=_receive, args=(port, streams, ready, out))
    receiver.start()
    if not ready.wait(10):
        raise RuntimeError("the receiver did not start")
    payload = bytes(CHUNK)
    deadline = time.monotonic() + seconds

    def send() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.2", 0))
        sock.connect(("127.0.0.3", port))
        with sock:
            while time.monotonic() < deadline:
                sock.sendall(payload)

    threads = [threading.Thread(target=send) for _ in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = out.get(timeout=30)
    receiver.join(10)
    mib_s = result["bytes"] / result["seconds"] / 2**20
    return {
        "streams": streams,
        "bytes": result["bytes"],
        "seconds": round(result["seconds"], 3),
        "mib_s": round(mib_s, 1),
        "gbit_s": round(result["bytes"] * 8 / result["seconds"] / 1e9, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.streams, args.seconds)))


if __name__ == "__main__":
    main()
