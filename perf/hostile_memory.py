"""Broker memory under hostile request frames (issue 9): what 1,000 connections that each
announce a 100 MiB frame and send nothing cost, and what 400 that each send 1 MiB of such a
frame and stop cost, against `queued.max.request.bytes` (per shard).

    perf/hostile_memory.py [SLUICE_BINARY]      (default target/release/sluice)

Starts its own broker (two shards, default config) on a free loopback port with a temporary
data dir, prints the broker's RSS before and after each attack, and stops it.
"""

import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

FRAME = 100 * 1024 * 1024


def rss(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/sluice"
    with tempfile.TemporaryDirectory() as data:
        broker = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "", "--data-dir", data],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = broker.stdout.readline()
            port = int(re.search(r"listening on [^ ]+:(\d+)", line).group(1))
            before = rss(broker.pid)
            held = []
            for _ in range(1000):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(struct.pack(">I", FRAME))
                held.append(s)
            time.sleep(2)
            print(f"1000 connections announcing 100 MiB frames: RSS {before / 1e6:.0f} MB -> {rss(broker.pid) / 1e6:.0f} MB")
            for s in held:
                s.close()
            held = []
            body = b"x" * (1 << 20)
            before = rss(broker.pid)
            for _ in range(400):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(struct.pack(">I", FRAME))
                s.setblocking(False)
                sent, started = 0, time.time()
                while sent < len(body) and time.time() - started < 0.2:
                    try:
                        sent += s.send(body[sent:])
                    except BlockingIOError:
                        time.sleep(0.001)
                held.append(s)
            time.sleep(2)
            print(f"400 connections sending 1 MiB of a 100 MiB frame (400 MB): RSS {before / 1e6:.0f} MB -> "
                  f"{rss(broker.pid) / 1e6:.0f} MB (budget: 2 shards x 256 MiB)")
            for s in held:
                s.close()
        finally:
            broker.terminate()
            broker.wait()


if __name__ == "__main__":
    main()
