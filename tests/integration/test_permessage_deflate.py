"""permessage-deflate (RFC 7692) over the wire, against tests/servers/deflate_server: Python's
websockets client (which offers compression by default) with and without context takeover, raw
frames for what no polite client sends (RSV1 where it is not allowed, bombs, corrupt data, bad
offers), and fan-out to a mix of compressing and plain receivers."""
import asyncio
import os
import random
import unittest
import zlib

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

import harness
import rawws
from rawws import BINARY, CLOSE, CONT, PING, TEXT

SERVER = "tests/deflate_server"
BOTH = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


def deflate(data, wbits=15, level=6):
    """A message compressed as permessage-deflate sends it: raw deflate, sync flush, tail removed."""
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate(payload, d=None):
    d = d or zlib.decompressobj(-15)
    return d.decompress(payload + b"\x00\x00\xff\xff")


def deflating_conn(port, path, offer="permessage-deflate"):
    conn = rawws.Conn(port, path, headers=[("Sec-WebSocket-Extensions", offer)])
    return conn


def extensions_line(ws):
    return ws.response_headers.get("Sec-WebSocket-Extensions")


class PythonClient(unittest.TestCase):
    """Python's websockets client, whose permessage-deflate is its own implementation."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(SERVER)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def url(self, path):
        return f"ws://127.0.0.1:{self.server.port}{path}"

    def messages(self):
        rng = random.Random(5)
        noise = bytes(rng.getrandbits(8) for _ in range(50000))
        text = "".join(f"line {i}: the quick brown fox, héllo wörld ✓\n" for i in range(5000))
        return ["hi", "x" * 255, "x" * 256, "y" * 1000, text, noise, b"\x00" * 300, "", b"", text[:700]]

    async def round_trips(self, path, expect_line, **connect):
        async with websockets.connect(self.url(path), max_size=None, **connect) as ws:
            self.assertEqual(extensions_line(ws), expect_line)
            for m in self.messages():
                await ws.send(m)
                self.assertEqual(await ws.recv(), m)
            # A fragmented message from the client, compressed as one stream over its fragments.
            parts = [f"part {i} " * 50 for i in range(20)]
            await ws.send(iter(parts))
            self.assertEqual(await ws.recv(), "".join(parts))
            await ws.send(iter([b"\x01" * 5000, b"\x02" * 5000]))
            self.assertEqual(await ws.recv(), b"\x01" * 5000 + b"\x02" * 5000)

    def test_default_no_context_takeover(self):
        harness.run(self.round_trips("/echo", BOTH))

    def test_context_takeover_both_ways(self):
        # Python's offer is "permessage-deflate; client_max_window_bits": nothing to name back.
        harness.run(self.round_trips("/takeover", "permessage-deflate"))

    def test_client_asks_for_no_server_context_takeover(self):
        factory = ClientPerMessageDeflateFactory(server_no_context_takeover=True, client_max_window_bits=True)
        harness.run(self.round_trips("/takeover", "permessage-deflate; server_no_context_takeover",
                                     extensions=[factory], compression=None))

    def test_window_bits_both_ways(self):
        factory = ClientPerMessageDeflateFactory(server_max_window_bits=12, client_max_window_bits=True)
        harness.run(self.round_trips("/window", BOTH + "; server_max_window_bits=10; client_max_window_bits=9",
                                     extensions=[factory], compression=None))
        # Asking for a window the server cannot keep to (8: zlib makes none) leaves it uncompressed.
        factory = ClientPerMessageDeflateFactory(server_max_window_bits=8)
        harness.run(self.round_trips("/echo", None, extensions=[factory], compression=None))

    def test_compression_off(self):
        harness.run(self.round_trips("/plain", None))
        harness.run(self.round_trips("/echo", None, compression=None))


class RawFrames(unittest.TestCase):
    """Frames written by hand, on connections that negotiated compression."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(SERVER)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def conn(self, path="/echo", offer="permessage-deflate"):
        conn = deflating_conn(self.server.port, path, offer)
        self.addCleanup(conn.close_socket)
        return conn

    def test_rfc_example_frames(self):
        c = self.conn()
        self.assertTrue(c.deflate)
        # RFC 7692 7.2.3.1, whole and fragmented; 7.2.3.3 stored block; 7.2.3.4 BFINAL; 7.2.3.5 two blocks.
        c.send(TEXT, bytes([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), rsv=4)
        c.expect(TEXT, "Hello")
        c.send(TEXT, bytes([0xf2, 0x48, 0xcd]), fin=False, rsv=4)
        c.send(CONT, bytes([0xc9, 0xc9, 0x07, 0x00]))
        c.expect(TEXT, "Hello")
        c.send(TEXT, bytes([0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]), rsv=4)
        c.expect(TEXT, "Hello")
        c.send(TEXT, bytes([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]), rsv=4)
        c.expect(TEXT, "Hello")
        c.send(TEXT, bytes([0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]), rsv=4)
        c.expect(TEXT, "Hello")
        # Uncompressed messages stay allowed; a ping between fragments too.
        c.send(TEXT, b"plain")
        c.expect(TEXT, "plain")
        c.send(BINARY, deflate(b"ab" * 100)[:3], fin=False, rsv=4)
        c.send(PING, b"p")
        c.expect(0xA, b"p")
        c.send(CONT, deflate(b"ab" * 100)[3:])
        c.expect(BINARY, b"ab" * 100)
        c.send_close(1000)
        c.expect_close(1000)

    def test_server_compresses_at_and_above_the_threshold(self):
        c = self.conn()
        for size, compressed in ((255, False), (256, True), (10000, True)):
            c.send(TEXT, deflate(b"z" * size), rsv=4)
            f = c.recv_frame()
            self.assertEqual((f.opcode, f.fin, f.rsv == 4), (TEXT, True, compressed), size)
            self.assertEqual(inflate(f.payload) if compressed else f.payload, b"z" * size)
            if compressed:
                self.assertLess(len(f.payload), size // 4)
        c.send_close(1000)
        c.expect_close(1000)

    def test_context_takeover_is_on_the_wire(self):
        c = self.conn("/takeover")
        self.assertEqual(c.response_headers["sec-websocket-extensions"], ["permessage-deflate"])
        message = b"".join(b"%d the same long line, again and again\n" % i for i in range(30))
        ours, theirs = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
        sizes = []
        for _ in range(3):
            body = ours.compress(message) + ours.flush(zlib.Z_SYNC_FLUSH)
            c.send(TEXT, body[:-4], rsv=4)  # in the client's own running stream
            f = c.recv_frame()
            self.assertEqual(f.rsv, 4)
            self.assertEqual(inflate(f.payload, theirs), message)  # in the server's running stream
            sizes.append(len(f.payload))
        # With the window kept, a repeated message costs a few bytes.
        self.assertLess(sizes[1], sizes[0] // 2)
        # Without context takeover (/echo), each message stands alone: an inflater reset each time works.
        c2 = self.conn()
        for _ in range(2):
            c2.send(TEXT, deflate(message), rsv=4)
            f = c2.recv_frame()
            self.assertEqual(inflate(f.payload), message)

    def test_rsv1_on_control_or_continuation_is_1002(self):
        c = self.conn()
        c.send(PING, b"x", rsv=4)
        c.expect_fail(1002)
        c = self.conn()
        c.send(TEXT, deflate(b"abc")[:1], fin=False, rsv=4)
        c.send(CONT, deflate(b"abc")[1:], rsv=4)
        c.expect_fail(1002)
        c = self.conn()
        c.send(CLOSE, rawws.close_payload(1000), rsv=4)
        c.expect_fail(1002)

    def test_rsv1_without_negotiation_is_1002(self):
        for path, offer in (("/plain", "permessage-deflate"), ("/echo", "x-webkit-deflate-frame")):
            c = self.conn(path, offer)
            self.assertFalse(c.deflate)
            self.assertNotIn("sec-websocket-extensions", c.response_headers)
            c.send(TEXT, deflate(b"Hello"), rsv=4)
            c.expect_fail(1002)

    def test_bad_offers_are_declined_and_the_connection_goes_on(self):
        for offer in ("permessage-deflate; server_max_window_bits=16", "permessage-deflate; mystery=1",
                      "permessage-deflate; client_no_context_takeover=1",
                      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                      "permessage-deflate; server_max_window_bits"):
            c = self.conn("/echo", offer)
            self.assertNotIn("sec-websocket-extensions", c.response_headers, offer)
            c.send(TEXT, b"still here " * 50)
            c.expect(TEXT, b"still here " * 50)  # RSV1 clear: recv_frame refuses RSV bits here
            c.send_close(1000)
            c.expect_close(1000)
        # A bad offer, then a good one: the good one is taken.
        c = self.conn("/echo", "permessage-deflate; mystery, permessage-deflate; server_max_window_bits=11")
        self.assertEqual(c.response_headers["sec-websocket-extensions"], [BOTH + "; server_max_window_bits=11"])
        c.send(TEXT, deflate(b"w" * 4000), rsv=4)
        f = c.recv_frame()
        self.assertEqual(zlib.decompressobj(-11).decompress(f.payload + b"\x00\x00\xff\xff"), b"w" * 4000)

    def test_corrupt_data_closes_1007(self):
        for junk in (b"\xff\xff\xff", b"\x00\x05\x00\x00\x00hello", bytes(random.Random(1).getrandbits(8) for _ in range(3000))):
            c = self.conn()
            c.send(BINARY, junk, rsv=4)
            c.expect_fail(1007)
        # Deflate data that inflates to text that is not UTF-8.
        c = self.conn()
        c.send(TEXT, deflate(b"ok \xff\xfe"), rsv=4)
        c.expect_fail(1007)
        # A message cut short inside a block is what arrived: whatever inflated (nothing hangs).
        c = self.conn()
        c.send(TEXT, deflate(b"Hello world")[:4], rsv=4)
        code_or_text = c.recv_frame()
        self.assertIn(code_or_text.opcode, (TEXT, CLOSE))

    def test_bomb_gets_1009_memory_stays_bounded_others_are_served(self):
        path = harness.binary(SERVER)
        bomb = deflate(b"\x00" * (64 * 1024 * 1024), level=9)  # 64 MiB in about 64 KiB
        self.assertLess(len(bomb), 1024 * 1024)  # under the 1 MiB message limit of /echo
        small_bomb = deflate(b"\x00" * (4 * 1024 * 1024), level=9)  # for /small's 64 KiB limit
        before = harness.vm_rss_kib(self.server.process.pid)
        bombers = [self.conn() for _ in range(8)] + [self.conn("/small") for _ in range(8)]
        bystander = self.conn()
        for i, c in enumerate(bombers):
            c.send(BINARY, bomb if i < 8 else small_bomb, rsv=4)
        bystander.send(TEXT, deflate(b"served " * 100), rsv=4)
        f = bystander.recv_frame()
        self.assertEqual(inflate(f.payload), b"served " * 100)
        for c in bombers:
            c.expect_fail(1009)
        after = harness.vm_rss_kib(self.server.process.pid)
        if not harness.instrumented(path):
            # 8 x 64 MiB inflated would be 512 MiB; each inflation stops one byte past 1 MiB.
            self.assertLess(after - before, 48 * 1024, f"RSS grew from {before} to {after} KiB")
        bystander.send(TEXT, b"still fine")
        bystander.expect(TEXT, "still fine")


class FanOut(unittest.TestCase):
    """A publish and a broadcast reach compressing, plain and context-takeover receivers, each in the
    form it negotiated."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(SERVER)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_mixed_receivers_get_the_right_bytes(self):
        port = self.server.port
        raw = [deflating_conn(port, "/room") for _ in range(2)]
        raw_plain = rawws.Conn(port, "/room")  # no offer: plain frames
        raw_takeover = deflating_conn(port, "/room_takeover")
        raw_window = deflating_conn(port, "/room", "permessage-deflate; server_max_window_bits=10")
        everyone = raw + [raw_plain, raw_takeover, raw_window]
        for conn in everyone:
            self.addCleanup(conn.close_socket)
        big = ("news for everyone! " * 100).encode()
        small = b"short"

        async def scenario():
            url = f"ws://127.0.0.1:{port}"
            async with websockets.connect(url + "/room") as a, websockets.connect(url + "/room_plain") as b, \
                    websockets.connect(url + "/room_takeover") as c:
                self.assertEqual(extensions_line(a), BOTH)
                self.assertIsNone(extensions_line(b))
                self.assertEqual(extensions_line(c), "permessage-deflate")
                # Membership is live once each client's handler runs: a round of pings settles it.
                for ws in (a, b, c):
                    await ws.ping()
                for conn in everyone:
                    conn.send(PING, b"sync")
                    conn.expect(0xA, b"sync")
                for payload in (big, small, big):
                    await b.send(payload.decode())
                    for ws in (a, b, c):
                        self.assertEqual(await asyncio.wait_for(ws.recv(), 10), payload.decode())
                # A broadcast reaches the sender's endpoint only.
                await a.send("broadcast " + big.decode())
                self.assertEqual(await asyncio.wait_for(a.recv(), 10), big.decode())

        harness.run(scenario())
        takeover_inflater = zlib.decompressobj(-15)
        compressed_forms = []
        for payload in (big, small, big):
            for conn in everyone:
                f = conn.recv_frame()
                self.assertEqual(f.opcode, TEXT)
                compressed = len(payload) >= 256 and conn is not raw_plain
                self.assertEqual(f.rsv == 4, compressed)
                if conn is raw_takeover and compressed:
                    self.assertEqual(inflate(f.payload, takeover_inflater), payload)
                elif conn is raw_window and compressed:
                    self.assertEqual(zlib.decompressobj(-10).decompress(f.payload + b"\x00\x00\xff\xff"), payload)
                else:
                    self.assertEqual(inflate(f.payload) if compressed else f.payload, payload)
                if conn in raw and compressed:
                    compressed_forms.append(f.payload)
        # Receivers with the same setting share one compressed form, byte for byte.
        self.assertEqual(len(set(compressed_forms)), 1)
        # The broadcast to /room: the /room raw connections, not the others.
        for conn in raw + [raw_window]:
            f = conn.recv_frame()
            self.assertEqual(inflate(f.payload, zlib.decompressobj(-10 if conn is raw_window else -15)), big)


if __name__ == "__main__":
    unittest.main(verbosity=2)
