"""wss:// over the wire: tests/servers/tls_server (one app, a TLS port and a plain port, 300 ms handshake
timeout), examples/echo and examples/chat with --tls-cert/--tls-key, and tests/servers/limits_server
over TLS. Certificates are made when the tests run (tls_certs.py). Python's websockets client where the
messages matter, raw sockets (rawws.py, over TLS) where the bytes do. No fixed ports and no sleeps:
every wait is on an event with a timeout."""
import asyncio
import os
import select
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import time
import unittest
import urllib.request

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402
import limits_stats  # noqa: E402
import rawws  # noqa: E402
import tls_certs  # noqa: E402
from rawws import BINARY, PING, TEXT, frame  # noqa: E402

HANDSHAKE_TIMEOUT = 0.3  # tls_server's, and limits_server's
EARLY = 0.05
LATE = 5.0
KiB = 1024
MiB = 1024 * KiB

CERTS = tempfile.TemporaryDirectory(prefix="starling-tls-")
FIRST = tls_certs.make(CERTS.name, "first")
SECOND = tls_certs.make(CERTS.name, "second")
TRUST = tls_certs.client_context(FIRST[0], SECOND[0])
# Every raw connection of these tests speaks TLS.
rawws.TLS = TRUST


def wait_closed(sock, timeout):
    """Seconds until the server closes `sock` (end of stream, reset or a TLS alert), discarding what it
    sends; None if it is still open after `timeout`."""
    start = time.monotonic()
    while True:
        remaining = start + timeout - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            return None
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except (ConnectionResetError, ssl.SSLError):
            return time.monotonic() - start


class ServedFiles:
    """The certificate and key files a server reads, in a directory of their own, so a test can
    replace them before a reload."""

    def __init__(self, pair=FIRST):
        self.directory = tempfile.TemporaryDirectory(prefix="starling-served-")
        self.cert = os.path.join(self.directory.name, "server.crt")
        self.key = os.path.join(self.directory.name, "server.key")
        self.use(pair)

    def use(self, pair):
        # Written beside and renamed over, as deployment tools do: a reload never sees half a file.
        for source, target in zip(pair, (self.cert, self.key)):
            shutil.copyfile(source, target + ".new")
            os.replace(target + ".new", target)

    def args(self):
        return ["--tls-cert", self.cert, "--tls-key", self.key]


class TLSServer(unittest.TestCase):
    """tls_server: the same endpoints on a TLS port and a plain port."""

    def setUp(self):
        self.files = ServedFiles()
        self.server = harness.Server("tests/tls_server", *self.files.args())
        self.addCleanup(self.server.stop)
        self.addCleanup(self.files.directory.cleanup)
        self.tls_port = self.server.port
        self.plain_port = int(self.server.banner[4])

    def wss(self, path):
        return f"wss://127.0.0.1:{self.tls_port}{path}"

    def ws(self, path):
        return f"ws://127.0.0.1:{self.plain_port}{path}"

    def connect(self, path, context=TRUST):
        return websockets.connect(self.wss(path), ssl=context, open_timeout=harness.TIMEOUT)

    async def assert_echoes(self, ws, text="still here"):
        await ws.send(text)
        self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), text)

    def assert_healthy(self):
        async def check():
            async with self.connect("/echo") as ws:
                await self.assert_echoes(ws)
            async with websockets.connect(self.ws("/echo")) as ws:
                await self.assert_echoes(ws)
        harness.run(check())
        self.assertTrue(self.server.alive(), self.server.stderr())

    # ---- the API over TLS ----

    def test_echo_text_binary_large_and_many(self):
        async def scenario():
            async with self.connect("/echo") as ws:
                self.assertEqual(tls_certs.peer_fingerprint(ws), tls_certs.fingerprint(FIRST[0]))
                await self.assert_echoes(ws, "hello")
                await ws.send(b"\x00\xff\x01")
                self.assertEqual(await ws.recv(), b"\x00\xff\x01")
                large = os.urandom(900 * KiB)  # many TLS records each way, under the 1 MiB limit
                await ws.send(large)
                self.assertEqual(await ws.recv(), large)
                for i in range(500):
                    await ws.send(f"message {i}")
                for i in range(500):
                    self.assertEqual(await ws.recv(), f"message {i}")
            self.assertEqual(ws.close_code, 1000)
        harness.run(scenario())

    def test_alpn_http_1_1_and_tls_1_2_at_least(self):
        async def scenario():
            context = tls_certs.client_context(FIRST[0])
            context.set_alpn_protocols(["h2", "http/1.1"])
            async with self.connect("/echo", context) as ws:
                ssl_object = ws.transport.get_extra_info("ssl_object")
                self.assertEqual(ssl_object.selected_alpn_protocol(), "http/1.1")
                self.assertIn(ssl_object.version(), ("TLSv1.2", "TLSv1.3"))
                await self.assert_echoes(ws)
            # A client limited to TLS 1.2 is served too.
            context = tls_certs.client_context(FIRST[0])
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            async with self.connect("/echo", context) as ws:
                self.assertEqual(ws.transport.get_extra_info("ssl_object").version(), "TLSv1.2")
                await self.assert_echoes(ws)
        harness.run(scenario())

    def test_typed_parameters_and_dependencies(self):
        async def scenario():
            async with self.connect("/typed?n=42") as ws:
                await ws.send("hi")
                self.assertEqual(await ws.recv(), "hello n=42: hi")
            with self.assertRaises(InvalidStatusCode) as refused:
                async with self.connect("/typed?n=many"):
                    pass
            self.assertEqual(refused.exception.status_code, 400)
        harness.run(scenario())

    def test_broadcast_reaches_both_ports(self):
        async def scenario():
            async with self.connect("/broadcast") as secure, websockets.connect(self.ws("/broadcast")) as plain:
                # Both are members once each has received a broadcast of its own.
                for ws, text in ((secure, "from wss"), (plain, "from ws")):
                    await ws.send(text)
                for ws in (secure, plain):
                    got = {await asyncio.wait_for(ws.recv(), harness.TIMEOUT) for _ in range(2)}
                    self.assertEqual(got, {"from wss", "from ws"})
                await plain.send(b"\x01\x02")
                self.assertEqual(await secure.recv(), b"\x01\x02")
                self.assertEqual(await plain.recv(), b"\x01\x02")
        harness.run(scenario())

    def test_sigterm_closes_both_ports_with_1001(self):
        async def scenario():
            async with self.connect("/echo") as secure, websockets.connect(self.ws("/echo")) as plain:
                await self.assert_echoes(secure)
                await self.assert_echoes(plain)
                self.server.process.send_signal(signal.SIGTERM)
                for ws in (secure, plain):
                    with self.assertRaises(ConnectionClosed):
                        await asyncio.wait_for(ws.recv(), harness.TIMEOUT)
                    self.assertEqual(ws.close_code, 1001)
        harness.run(scenario())
        self.assertEqual(self.server.process.wait(timeout=harness.TIMEOUT), 0)

    # ---- reload ----

    def reload(self):
        async def ask():
            async with self.connect("/reload") as ws:
                await ws.send("reload")
                return await ws.recv()
        return harness.run(ask())

    def test_reload_serves_the_new_certificate_to_new_connections_only(self):
        async def scenario():
            async with self.connect("/echo") as old:
                self.assertEqual(tls_certs.peer_fingerprint(old), tls_certs.fingerprint(FIRST[0]))
                self.files.use(SECOND)
                async with self.connect("/reload") as control:
                    await control.send("reload")
                    self.assertEqual(await control.recv(), "reloaded")
                    async with self.connect("/echo") as new:
                        self.assertEqual(tls_certs.peer_fingerprint(new), tls_certs.fingerprint(SECOND[0]))
                        await self.assert_echoes(new)
                    await self.assert_echoes(old)  # untouched by the reload

                    # A key that does not match its certificate: the reload fails, saying which file,
                    # and the server keeps the certificate it had.
                    shutil.copyfile(FIRST[1], self.files.key)
                    await control.send("reload")
                    answer = await control.recv()
                    self.assertTrue(answer.startswith("failed: "), answer)
                    self.assertIn(self.files.key, answer)
                    self.assertIn("does not match", answer)
                    # And a file that is gone.
                    os.remove(self.files.key)
                    await control.send("reload")
                    answer = await control.recv()
                    self.assertIn(self.files.key, answer)
                    self.assertIn("cannot be read", answer)
                async with self.connect("/echo") as after:
                    self.assertEqual(tls_certs.peer_fingerprint(after), tls_certs.fingerprint(SECOND[0]))
                    await self.assert_echoes(after)
                await self.assert_echoes(old)
        harness.run(scenario())
        self.assertIn("TLS reload failed", self.server.stderr())

    def test_sighup_reloads(self):
        self.files.use(SECOND)
        self.server.process.send_signal(signal.SIGHUP)
        wanted = tls_certs.fingerprint(SECOND[0])

        async def until_reloaded():
            # The signal is handled on the server's own time: new connections until one shows it.
            deadline = time.monotonic() + harness.TIMEOUT
            while True:
                async with self.connect("/echo") as ws:
                    if tls_certs.peer_fingerprint(ws) == wanted:
                        await self.assert_echoes(ws)
                        return
                self.assertLess(time.monotonic(), deadline, "SIGHUP did not reload the certificate")
        harness.run(until_reloaded())
        self.assertTrue(self.server.alive())

    # ---- clients that do not speak TLS, or not in time ----

    def test_plain_http_and_garbage_to_the_tls_port_are_dropped(self):
        for junk in (b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", os.urandom(3000),
                     b"\x16\x03\x01\x00\x05hello"):  # the start of a TLS record that is no ClientHello
            with socket.create_connection(("127.0.0.1", self.tls_port), timeout=harness.TIMEOUT) as sock:
                sock.sendall(junk)
                self.assertIsNotNone(wait_closed(sock, LATE), f"still open after sending {junk[:20]!r}")
        self.assert_healthy()

    def test_tls_handshake_that_never_completes_is_dropped_at_the_handshake_timeout(self):
        # One connection that sends nothing, one that sends the first bytes of a ClientHello.
        started = time.monotonic()
        silent = socket.create_connection(("127.0.0.1", self.tls_port), timeout=harness.TIMEOUT)
        self.addCleanup(silent.close)
        half = socket.create_connection(("127.0.0.1", self.tls_port), timeout=harness.TIMEOUT)
        self.addCleanup(half.close)
        half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        for sock in (silent, half):
            self.assertIsNotNone(wait_closed(sock, HANDSHAKE_TIMEOUT + LATE), "a stalled TLS handshake was never dropped")
            self.assertGreater(time.monotonic() - started, HANDSHAKE_TIMEOUT - EARLY)
        self.assert_healthy()

    def test_one_deadline_covers_the_tls_handshake_and_the_upgrade(self):
        # TLS done at once, then no HTTP request: dropped at the handshake timeout counted from accept.
        started = time.monotonic()
        sock = rawws.open_socket(self.tls_port)
        self.addCleanup(sock.close)
        waited = wait_closed(sock, HANDSHAKE_TIMEOUT + LATE)
        self.assertIsNotNone(waited, "an upgrade request that never came was never dropped")
        self.assertGreater(time.monotonic() - started, HANDSHAKE_TIMEOUT - EARLY)
        self.assert_healthy()

    def test_handshake_time_spent_in_tls_counts_against_the_upgrade(self):
        # A server with a 1 s handshake timeout: the client waits 0.6 s before its ClientHello, then
        # sends no request. Dropped about 1 s after connecting, not 1 s after the TLS handshake.
        files = ServedFiles()
        self.addCleanup(files.directory.cleanup)
        server = harness.Server("tests/limits_server", *files.args(), "--handshake-timeout-ms", "1000")
        self.addCleanup(server.stop)
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=harness.TIMEOUT)
        started = time.monotonic()
        # The server says nothing before the client's hello: this wait is for an event that must not come.
        self.assertEqual(select.select([raw], [], [], 0.6)[0], [])
        sock = TRUST.wrap_socket(raw, server_hostname="127.0.0.1")
        self.addCleanup(sock.close)
        waited = wait_closed(sock, LATE)
        self.assertIsNotNone(waited)
        total = time.monotonic() - started
        self.assertGreater(total, 1.0 - EARLY)
        self.assertLess(total, 1.55, "the upgrade got a handshake timeout of its own after the TLS handshake")

    # ---- set-up errors name the file ----

    def test_listen_fails_naming_the_file(self):
        files = ServedFiles()
        self.addCleanup(files.directory.cleanup)
        missing = os.path.join(files.directory.name, "missing.crt")
        garbage = os.path.join(files.directory.name, "garbage.crt")
        with open(garbage, "w") as f:
            f.write("not a certificate\n")
        cases = [
            (["--tls-cert", missing, "--tls-key", files.key], missing, "cannot be read"),
            (["--tls-cert", garbage, "--tls-key", files.key], garbage, "not usable"),
            (["--tls-cert", files.cert, "--tls-key", SECOND[1]], SECOND[1], "does not match"),
        ]
        for args, named, why in cases:
            with self.assertRaises(RuntimeError) as failed:
                harness.Server("examples/echo", *args)
            self.assertIn(named, str(failed.exception))
            self.assertIn(why, str(failed.exception))


class TLSExamples(unittest.TestCase):
    """examples/echo and examples/chat with --tls-cert / --tls-key: wss:// and https on --port."""

    def setUp(self):
        self.files = ServedFiles()
        self.addCleanup(self.files.directory.cleanup)

    def test_echo_serves_wss(self):
        with harness.Server("examples/echo", *self.files.args(), "--workers", "2") as server:
            async def scenario():
                async with websockets.connect(f"wss://127.0.0.1:{server.port}/echo", ssl=TRUST) as ws:
                    await ws.send("over TLS")
                    self.assertEqual(await ws.recv(), "over TLS")
            harness.run(scenario())

    def test_idle_tls_connections_stay_small(self):
        # What an idle wss:// connection holds: asio::ssl's two 17 KiB record buffers and the BIO pair
        # OpenSSL reads and writes through (17 KiB each way), on top of a plain connection's 10 KiB:
        # about 75 KiB. Nothing it wrote is kept once it is idle (session/tls_stream.hpp), and a
        # message that fits one TLS record is parsed in place, not reassembled in a buffer of its own.
        if harness.instrumented(harness.binary("examples/echo")):
            self.skipTest("RSS says nothing about memory in a sanitizer build")
        count = 200
        # meson test sets MALLOC_PERTURB_, which fills freed blocks and so keeps them resident: RSS
        # would count memory the server gave back.
        with harness.Server("examples/echo", *self.files.args(), "--workers", "1", env={"MALLOC_PERTURB_": "0"}) as server:
            url = f"wss://127.0.0.1:{server.port}/echo"

            async def one(text):
                ws = await websockets.connect(url, ssl=TRUST)
                await ws.send(text)
                assert await ws.recv() == text
                return ws

            async def scenario():
                for ws in [await one("warm") for _ in range(10)]:
                    await ws.close()
                baseline = harness.vm_rss_kib(server.process.pid)
                conns = []
                for _ in range(count // 50):
                    conns += await asyncio.gather(*(one("x" * 3000) for _ in range(50)))
                per_connection = (harness.vm_rss_kib(server.process.pid) - baseline) / count
                for ws in conns:
                    await ws.close()
                return per_connection
            per_connection = harness.run(scenario())
        self.assertLess(per_connection, 88, f"{per_connection:.1f} KiB per idle TLS connection")

    def test_chat_serves_its_page_over_https_and_chat_over_wss(self):
        with harness.Server("examples/chat", *self.files.args()) as server:
            url = f"https://127.0.0.1:{server.port}/"
            with urllib.request.urlopen(url, timeout=harness.TIMEOUT, context=TRUST) as response:
                self.assertEqual(response.status, 200)
                self.assertIn("text/html", response.headers["Content-Type"])
                self.assertIn(b"wss:", response.read())

            async def scenario():
                chat = f"wss://127.0.0.1:{server.port}/chat"
                async with websockets.connect(chat, ssl=TRUST) as a, websockets.connect(chat, ssl=TRUST) as b:
                    await a.send("hello from a")
                    self.assertEqual(await a.recv(), "hello from a")
                    self.assertEqual(await b.recv(), "hello from a")
            harness.run(scenario())


class LimitsOverTLS(unittest.TestCase):
    """limits_server with --tls-cert: its bounds hold over TLS, and others are served meanwhile."""

    @classmethod
    def setUpClass(cls):
        cls.files = ServedFiles()
        cls.server = harness.Server("tests/limits_server", *cls.files.args())

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.files.directory.cleanup()

    def counts(self):
        return limits_stats.connection_counts(self.server.port)

    def assert_healthy(self):
        conn = rawws.Conn(self.server.port, "/echo")
        try:
            conn.send(TEXT, "still serving")
            conn.expect(TEXT, "still serving")
            conn.send_close(1000)
            conn.expect_close([1000])
            conn.expect_eof()
        finally:
            conn.close_socket()
        self.assertTrue(self.server.alive(), self.server.stderr())

    def test_message_over_the_limit_closes_1009(self):
        conn = rawws.Conn(self.server.port, "/echo")
        self.addCleanup(conn.close_socket)
        conn.send(TEXT, "x" * 1001)
        conn.expect_fail(1009)
        self.assert_healthy()

    def test_client_that_stops_reading_is_released(self):
        # /stalled floods the client, which never reads: write_timeout 300 ms, close_timeout 300 ms.
        conn = rawws.Conn(self.server.port, "/stalled", rcvbuf=4096)
        self.addCleanup(conn.close_socket)
        conn.send(TEXT, "flood 100000 16384")
        deadline = time.monotonic() + 0.3 + 0.3 + LATE
        while self.counts()["/stalled"] != 0:
            self.assertLess(time.monotonic(), deadline, "a TLS client that stopped reading was never released")
        self.assert_healthy()

    def test_slow_reader_gets_everything(self):
        conn = rawws.Conn(self.server.port, "/stalled", rcvbuf=16384)
        self.addCleanup(conn.close_socket)
        conn.send(TEXT, "flood 200 4096")
        for i in range(200):
            opcode, payload = conn.recv_message(f"flood message {i}")
            self.assertEqual((opcode, int.from_bytes(payload[:8], "big"), len(payload)), (BINARY, i, 4096))
        conn.send_close(1000)
        conn.expect_close([1000])
        conn.expect_eof()

    def test_ping_flood_from_a_client_that_never_reads_is_bounded(self):
        conn = rawws.Conn(self.server.port, "/echo", rcvbuf=4096)
        self.addCleanup(conn.close_socket)
        measure = not harness.instrumented(harness.binary("tests/limits_server"))
        baseline = harness.vm_rss_kib(self.server.process.pid)
        block = frame(PING, b"p" * 125) * 512
        conn.sock.setblocking(False)
        sent, end = 0, time.monotonic() + 20
        while sent < 30 * MiB and time.monotonic() < end:
            if not select.select([], [conn.sock], [], 2.0)[1]:
                break  # the server stopped reading: it waits for us to read its pongs
            try:
                sent += conn.sock.send(block)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                continue
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                break
        self.assert_healthy()
        if measure:
            growth = harness.vm_rss_kib(self.server.process.pid) - baseline
            # A pong per ping would be hundreds of MiB; what is held is a handful of pongs, one read
            # buffer, and this connection's TLS buffers.
            self.assertLess(growth, 16 * KiB, f"RSS grew by {growth} KiB under a TLS ping flood of {sent} bytes")

    def test_503_limit_counts_tls_connections_too(self):
        # 20 connections at most: over it, a TLS client is closed before its handshake (it could not
        # read a plain 503), and a slot frees when one closes.
        conns = [rawws.Conn(self.server.port, "/echo") for _ in range(20)]
        try:
            with self.assertRaises((ssl.SSLError, ConnectionResetError, OSError, rawws.ProtocolError)):
                extra = rawws.Conn(self.server.port, "/echo")
                extra.close_socket()
        finally:
            for c in conns:
                c.send_close(1000)
                c.expect_close([1000])
                c.close_socket()
        deadline = time.monotonic() + LATE
        while sum(v for k, v in self.counts().items()) != 0:
            self.assertLess(time.monotonic(), deadline)
        self.assert_healthy()


if __name__ == "__main__":
    unittest.main()
