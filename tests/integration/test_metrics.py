"""Metrics over the wire: examples/chat serves /metrics in the Prometheus text format. The test drives
traffic with Python's websockets client and raw sockets, scrapes /metrics, parses it with a small
parser of its own, and checks that the counts match what it did."""
import asyncio
import re
import socket
import sys
import unittest
import urllib.request

import websockets

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """{(name, frozenset(labels)): value} of every sample, and {name: type} of every family; fails on
    any line that is neither a comment nor a well-formed sample."""
    samples, types = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise AssertionError(f"not an exposition line: {line!r}")
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples, types


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=harness.TIMEOUT) as response:
        content_type = response.headers["Content-Type"]
        return parse_exposition(response.read().decode()), content_type


def value(samples, name, **labels):
    return samples[0][(name, frozenset(labels.items()))]


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), timeout=harness.TIMEOUT)


async def wait_for(predicate):
    """Polls `predicate` (a scrape) until it holds: the server counts a close after the client sees it."""
    deadline = asyncio.get_running_loop().time() + harness.TIMEOUT
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the metrics did not reach the expected values in time")
        await asyncio.sleep(0.02)


class ChatMetrics(unittest.IsolatedAsyncioTestCase):
    def setUp(self):
        self.server = harness.Server("examples/chat")

    def tearDown(self):
        self.server.stop()

    async def test_a_fresh_server_counts_nothing_and_names_its_families(self):
        (samples, types), content_type = scrape(self.server.port)
        self.assertEqual(content_type, "text/plain; version=0.0.4; charset=utf-8")
        self.assertEqual(types["starling_connections_open"], "gauge")
        self.assertEqual(types["starling_messages_received_total"], "counter")
        self.assertEqual(types["starling_pong_rtt_seconds"], "histogram")
        self.assertNotIn("starling_backplane_connected", types)  # no backplane, no backplane families
        self.assertEqual(value((samples, types), "starling_connections_open", endpoint="/chat"), 0)
        self.assertEqual(value((samples, types), "starling_pong_rtt_seconds_bucket", endpoint="/chat", le="+Inf"), 0)

    async def test_connections_messages_and_deliveries_match_the_traffic(self):
        port = self.server.port
        clients = [await websockets.connect(self.server.url("/chat")) for _ in range(3)]
        messages = 25
        for i in range(messages):
            await clients[0].send(f"message {i}")
        for ws in clients:  # everyone, the sender included, gets every message
            for i in range(messages):
                self.assertEqual(await recv(ws), f"message {i}")
        await clients[1].send(b"\x00\x01binary")
        for ws in clients:
            self.assertEqual(await recv(ws), b"\x00\x01binary")

        s = scrape(port)[0]
        self.assertEqual(value(s, "starling_connections_open", endpoint="/chat"), 3)
        self.assertEqual(value(s, "starling_connections_opened_total", endpoint="/chat"), 3)
        self.assertEqual(value(s, "starling_messages_received_total", endpoint="/chat"), messages + 1)
        received_bytes = sum(len(f"message {i}") for i in range(messages)) + len(b"\x00\x01binary")
        self.assertEqual(value(s, "starling_received_bytes_total", endpoint="/chat"), received_bytes)
        self.assertEqual(value(s, "starling_messages_sent_total", endpoint="/chat"), 3 * (messages + 1))
        self.assertEqual(value(s, "starling_sent_bytes_total", endpoint="/chat"), 3 * received_bytes)
        self.assertEqual(value(s, "starling_deliveries_total", endpoint="/chat"), 3 * (messages + 1))
        self.assertEqual(value(s, "starling_slow_consumer_closes_total", endpoint="/chat"), 0)
        self.assertGreater(value(s, "starling_queued_bytes_high_water", endpoint="/chat"), 0)

        # One closes normally, one vanishes without a close frame, one stays.
        await clients[0].close(1000)
        clients[1].transport.abort()
        await wait_for(lambda: value(scrape(port)[0], "starling_connections_open", endpoint="/chat") == 1)
        s = scrape(port)[0]
        self.assertEqual(value(s, "starling_connections_closed_total", endpoint="/chat", code_class="normal"), 1)
        self.assertEqual(value(s, "starling_connections_closed_total", endpoint="/chat", code_class="abnormal"), 1)
        self.assertEqual(value(s, "starling_queued_bytes", endpoint="/chat"), 0)
        await clients[2].close()

    async def test_refused_handshakes_are_counted_by_status(self):
        port = self.server.port
        # No such endpoint: 404.
        sock, response = harness.raw_connect(port, path="/nowhere")
        sock.close()
        self.assertTrue(response.startswith(b"HTTP/1.1 404"))
        # An upgrade with an unsupported version: 426.
        sock, response = harness.raw_connect(port, path="/chat", extra_headers="Sec-WebSocket-Version: 8\r\n")
        sock.close()
        # A request head that is not HTTP: 400.
        with socket.create_connection(("127.0.0.1", port), timeout=harness.TIMEOUT) as raw:
            raw.sendall(b"HELLO\r\n\r\n")
            self.assertTrue(raw.recv(4096).startswith(b"HTTP/1.1 400"))
        s = scrape(port)[0]
        self.assertEqual(value(s, "starling_handshakes_refused_total", status="404"), 1)
        self.assertEqual(value(s, "starling_handshakes_refused_total", status="400")
                         + value(s, "starling_handshakes_refused_total", status="426"), 2)
        # Pages, /metrics itself included, are not refusals.
        self.assertEqual(sum(v for (name, _), v in s[0].items() if name == "starling_handshakes_refused_total"), 3)


if __name__ == "__main__":
    unittest.main()
