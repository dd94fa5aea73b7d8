"""The Redis backplane over the wire: a real redis-server on a free port and two tests/topics_server
processes on it, with Python websockets clients on each. Publish, broadcast and send_to cross from
one process to the other; then Redis is killed and started again under them: local delivery goes
on, what was published meanwhile is counted as dropped, and both processes link again by
themselves. Skipped, saying so, only when Debian's redis-server is not installed."""
import asyncio
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import websockets

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402
from test_metrics import scrape, value  # noqa: E402

REDIS = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
LATE = 10.0  # how long a link to Redis may take to be made (again)
PROBE = 0.3  # how long one probe waits to arrive before the next is sent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A redis-server of our own, in memory only, on `port`; started() returns once it says it is
    ready to accept connections."""

    def __init__(self, port):
        self.port = port
        self.dir = tempfile.TemporaryDirectory()
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir.name, "--loglevel", "notice"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + harness.TIMEOUT
        seen = b""
        while b"Ready to accept connections" not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.process.stdout], [], [], remaining)[0]:
                self.kill()
                raise TimeoutError(f"redis-server did not get ready: {seen.decode(errors='replace')}")
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"redis-server exited: {seen.decode(errors='replace')}")
            seen += chunk
        return self

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=harness.TIMEOUT)
        if self.process:
            self.process.stdout.close()
        self.process = None


async def recv(ws, timeout=harness.TIMEOUT):
    return await asyncio.wait_for(ws.recv(), timeout=timeout)


async def connect(url):
    return await websockets.connect(url, open_timeout=harness.TIMEOUT, ping_interval=None)


@unittest.skipIf(REDIS is None, "redis-server is not installed (Debian package redis-server): the Redis backplane is not tested")
class RedisBackplane(unittest.IsolatedAsyncioTestCase):
    def setUp(self):
        self.redis = Redis(free_port()).start()
        self.addCleanup(self.redis.kill)
        prefix = f"test{os.getpid()}:"
        self.nodes = [harness.Server("tests/topics_server", "--workers", "2", "--redis", str(self.redis.port),
                                     "--prefix", prefix) for _ in range(2)]
        for node in self.nodes:
            self.addCleanup(node.stop)

    async def client(self, node, *topics):
        query = "&".join(f"topic={t}" for t in topics)
        ws = await connect(self.nodes[node].url(f"/t?{query}"))
        ready = await recv(ws)
        self.assertTrue(ready.startswith("ready "), ready)
        self.addAsyncCleanup(ws.close)
        return ws, ready[6:]

    async def stats(self, node):
        async with websockets.connect(self.nodes[node].url("/stats"), open_timeout=harness.TIMEOUT) as ws:
            await ws.send("?")
            return json.loads(await recv(ws))

    async def wait_stats(self, node, condition, what):
        """Waits until the node's /stats satisfy `condition`; each look is a round trip."""
        deadline = time.monotonic() + LATE
        while not condition(s := await self.stats(node)):
            self.assertLess(time.monotonic(), deadline, f"node {node}: {what}; stats {s}")

    async def linked(self, publisher, local, remote, topic="x"):
        """Probes until a publish on `publisher` reaches the first of `remote` (clients of the other
        node in the topic) through Redis: both links are up and the topic's subscription is in place.
        `local` are the publisher's node's clients in the topic, which get each probe at once. Then
        every client has read up to the last probe, so later messages are the test's own."""
        deadline = time.monotonic() + LATE
        n = 0
        while True:
            last = f"probe {n}"
            await publisher.send(f"pub {topic} {last}")
            for ws in local:
                self.assertEqual(await recv(ws), last)
            try:
                got = await recv(remote[0], PROBE)
                break
            except asyncio.TimeoutError:
                pass
            self.assertLess(time.monotonic(), deadline, "the two processes never linked through Redis")
            n += 1
        # An earlier probe may have come late; the last one follows it (one publisher, in order).
        # Anything else (a message published during an outage) must never arrive.
        for i, ws in enumerate(remote):
            m = got if i == 0 else await recv(ws)
            while m != last:
                self.assertTrue(m.startswith("probe "), f"expected a probe, got {m!r}")
                m = await recv(ws)

    async def test_publish_broadcast_and_send_to_cross_processes(self):
        a, _ = await self.client(0, "x")
        b, b_id = await self.client(1, "x")
        b2, _ = await self.client(1, "x")
        await self.linked(a, [a], [b, b2])

        await a.send("pub x hello")
        self.assertEqual(await recv(a), "hello")  # once: its own node's copy, not also Redis's
        self.assertEqual(await recv(b), "hello")
        self.assertEqual(await recv(b2), "hello")
        await b.send("pubo x back")
        self.assertEqual(await recv(a), "back")
        self.assertEqual(await recv(b2), "back")
        await a.send("pubb x raw")
        for ws in (a, b, b2):
            self.assertEqual(await recv(ws), b"raw")

        await a.send("bcast everyone")
        for ws in (a, b, b2):
            self.assertEqual(await recv(ws), "everyone")

        await a.send(f"to {b_id} psst")
        self.assertEqual(await recv(a), "sent true")
        self.assertEqual(await recv(b), "psst")

        # Nothing arrived twice: the next thing each gets is a marker sent last.
        await b.send("pub x end")
        for ws in (a, b, b2):
            self.assertEqual(await recv(ws), "end")
        stats = await self.stats(0)
        self.assertTrue(stats["backplane"]["connected"])
        self.assertEqual(stats["backplane"]["dropped"], 0)
        self.assertEqual(stats["topics"], {"x": 1})  # sizes are per process

    async def test_redis_killed_and_restarted_mid_test(self):
        a, _ = await self.client(0, "x")
        a2, _ = await self.client(0, "x")
        b, _ = await self.client(1, "x")
        await self.linked(a, [a, a2], [b])

        self.redis.kill()
        await self.wait_stats(0, lambda s: not s["backplane"]["connected"], "did not notice Redis going away")
        # Redis is gone: delivery within the process goes on, and the publish is counted as dropped.
        await a.send("pub x during the outage")
        self.assertEqual(await recv(a), "during the outage")
        self.assertEqual(await recv(a2), "during the outage")
        await self.wait_stats(0, lambda s: s["backplane"]["dropped"] >= 1, "did not count the dropped publish")
        for node in self.nodes:
            self.assertTrue(node.alive())
        # The outage as a Prometheus scrape shows it.
        samples, _ = await asyncio.to_thread(scrape, self.nodes[0].port)
        self.assertEqual(value(samples, "starling_backplane_connected"), 0)
        self.assertGreaterEqual(value(samples, "starling_backplane_dropped_total"), 1)
        self.assertGreaterEqual(value(samples, "starling_backplane_published_total"), 1)

        self.redis.start()  # the same port: both processes link again by themselves and resubscribe
        await self.linked(a, [a, a2], [b])  # and "during the outage" never reaches b
        stats = (await self.stats(0))["backplane"]
        self.assertTrue(stats["connected"])
        self.assertGreaterEqual(stats["reconnects"], 2)  # both links of node 0
        samples, _ = await asyncio.to_thread(scrape, self.nodes[0].port)
        self.assertEqual(value(samples, "starling_backplane_connected"), 1)
        self.assertEqual(value(samples, "starling_backplane_reconnects_total"), stats["reconnects"])
        await self.wait_stats(1, lambda s: s["backplane"]["connected"] and s["backplane"]["reconnects"] >= 2,
                              "node 1 did not link again")
        for node in self.nodes:
            self.assertIn("link to 127.0.0.1", node.stderr())
            self.assertIn("is back", node.stderr())
            self.assertNotIn("threw", node.stderr())


if __name__ == "__main__":
    unittest.main()
