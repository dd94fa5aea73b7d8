#!/usr/bin/python3
"""Server memory per connection under each permessage-deflate setting, measured: starts
tests/deflate_server from a build directory, opens N connections to one endpoint with Python's
websockets client (which offers compression), has each echo one message (so a connection with
context takeover has made its codecs), then reads the server's RSS. The same for N connections that
are only opened. Prints a markdown table: KiB of RSS per connection above the server's RSS before.

  bench/deflate_memory.py [--build-dir build] [--connections 500] [--size 1000]
"""
import argparse
import asyncio
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
os.environ.setdefault("STARLING_BUILD_ROOT", str(ROOT / "build"))

import websockets  # noqa: E402

import harness  # noqa: E402


async def measure(port, pid, path, count, size, echo, compression):
    before = harness.vm_rss_kib(pid)
    url = f"ws://127.0.0.1:{port}{path}"
    clients = []
    for _ in range(count):
        clients.append(await websockets.connect(url, compression=compression, max_size=None))
    text = ("%08d the message each connection echoes, compressible " % 0) * (size // 60 + 1)
    text = text[:size]
    if echo:
        # One connection at a time: what stays is what a connection keeps, not the peak of 500
        # messages in flight at once.
        for ws in clients:
            await ws.send(text)
            assert await ws.recv() == text
    # A round trip on each, so that the server has finished with what it was sent.
    for ws in clients:
        await ws.ping()
    after = harness.vm_rss_kib(pid)
    negotiated = clients[0].response_headers.get("Sec-WebSocket-Extensions") or "none"
    for ws in clients:
        await ws.close()
    return (after - before) / count, negotiated


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=str(ROOT / "build"))
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()
    rows = [("/plain", "off", "deflate"), ("/echo", "on, no context takeover (default)", "deflate"),
            ("/takeover", "on, context takeover both ways", "deflate"),
            ("/window", "on, no context takeover, windows 10 and 9 bits", "deflate")]
    print(f"| endpoint | compression | negotiated | KiB per connection, opened | KiB per connection, after one {args.size}-byte echo |")
    print("|---|---|---|--:|--:|")
    for path, label, compression in rows:
        results = []
        for echo in (False, True):
            # A fresh server per measurement: nothing left from the previous one.
            server = subprocess.Popen([os.path.join(args.build_dir, "tests", "deflate_server"), "--port", "0",
                                       "--workers", "1"], stdout=subprocess.PIPE)
            try:
                port = int(server.stdout.readline().split()[2])
                per, negotiated = asyncio.run(measure(port, server.pid, path, args.connections, args.size, echo, compression))
                results.append(per)
            finally:
                server.terminate()
                server.wait()
        print(f"| `{path}` | {label} | `{negotiated}` | {results[0]:.1f} | {results[1]:.1f} |")


if __name__ == "__main__":
    main()
