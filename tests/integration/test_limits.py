"""Safe by default, over the wire: every limit of README's "Limits and defaults" table, driven against
tests/servers/limits_server (small limits: 1000-byte messages on /echo, 4000 on /big, 100-byte frames
on /frames, the 1 MiB default on /default, 1024-byte request heads, a 300 ms handshake timeout, 20
connections, a 300 ms close timeout, a 2 s shutdown timeout).

Each case checks what the offending client sees (close code, HTTP status, dropped TCP) AND that the
server still serves others afterwards. Raw sockets (rawws.py) where the bytes matter, Python's
websockets client elsewhere. No fixed ports and no sleeps: every wait is on an event with a timeout."""
import asyncio
import os
import select
import signal
import socket
import subprocess
import sys
import time
import unittest

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402
import limits_stats  # noqa: E402
import rawws  # noqa: E402
from rawws import BINARY, CONT, TEXT, frame, printable  # noqa: E402

SERVER = "tests/limits_server"
MiB = 1024 * 1024
TOO_BIG = 1009

# What limits_server configures (keep in sync with tests/servers/limits_server.cpp).
ECHO_LIMIT, BIG_LIMIT, FRAME_LIMIT, DEFAULT_LIMIT = 1000, 4000, 100, MiB
MAX_HEADER_BYTES = 1024
HANDSHAKE_TIMEOUT = 0.3
MAX_CONNECTIONS = 20
CLOSE_TIMEOUT = 0.3
SHUTDOWN_TIMEOUT = 2.0
WRITE_TIMEOUT = 0.3  # /stalled
MESSAGE_TIMEOUT = 0.3  # /trickle
# Timers never fire early; a little under the configured value absorbs clock granularity. The upper
# bounds are generous (sanitizer builds, loaded machines) yet far below "never".
EARLY = 0.05
LATE = 5.0


def wait_closed(sock, timeout):
    """Waits until the server closes `sock` (EOF or reset), discarding what it sends. Returns the
    seconds waited, or None if the socket is still open after `timeout`."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            return None
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except ConnectionResetError:
            return time.monotonic() - start


def request_of_size(port, size, path="/echo"):
    """An upgrade request whose head (request line, fields, blank line) is exactly `size` bytes."""
    request, _ = rawws.upgrade_request(port, path, headers=[("X-Pad", "")])
    pad = size - len(request)
    assert pad >= 0, f"a request of {size} bytes cannot be built"
    request, _ = rawws.upgrade_request(port, path, headers=[("X-Pad", "p" * pad)])
    assert len(request) == size
    return request


class LimitsTestCase(unittest.TestCase):
    """One limits_server per class (restarted if a case crashed it)."""
    server_args = ()
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(SERVER, *cls.server_args)

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.stop()

    def setUp(self):
        if not self.server.alive():
            type(self).server = harness.Server(SERVER, *self.server_args)

    @property
    def port(self):
        return self.server.port

    def connect(self, path="/echo"):
        conn = rawws.Conn(self.port, path)
        self.addCleanup(conn.close_socket)
        return conn

    def echo(self, conn, opcode, payload):
        conn.send(opcode, payload)
        conn.expect(opcode, payload)

    def assert_healthy(self, path="/echo"):
        """The process lives and a fresh websockets client on `path` echoes, then closes with 1000."""
        self.assertTrue(self.server.alive(), f"server died: {self.server.stderr()}")

        async def round_trip():
            async with websockets.connect(self.server.url(path), open_timeout=harness.TIMEOUT) as ws:
                await ws.send("still serving?")
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), "still serving?")
                await ws.send(b"\x00\x01\xfe\xff")
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), b"\x00\x01\xfe\xff")
            self.assertEqual(ws.close_code, 1000)

        harness.run(round_trip())

    def counts(self):
        """connection_count() of every endpoint, /stats itself not counted."""
        return limits_stats.connection_counts(self.port)

    async def wait_for_members(self, path, n):
        """Waits until `path` has n connections: a client's handshake completes before the server
        adds it to the registry, and a broadcast reaches only members."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + LATE
        while (await loop.run_in_executor(None, self.counts))[path] != n:
            self.assertLess(time.monotonic(), deadline, f"{path} did not reach {n} connections")

    def assert_counts_return_to_zero(self):
        """Every endpoint's connection count reaches zero within LATE seconds; each look is a round
        trip."""
        deadline = time.monotonic() + LATE
        while True:
            counts = self.counts()
            if not any(counts.values()):
                return
            if time.monotonic() > deadline:
                self.fail(f"connection counts did not return to zero within {LATE} s: {counts}")


class MessageSize(LimitsTestCase):
    """websocket_options::max_message_size / max_frame_size: inclusive limit, 1009 above it, decided
    from the frame header; per endpoint (endpoint.options) and the 1 MiB default."""

    def test_message_of_exactly_the_limit_is_echoed(self):
        conn = self.connect()
        self.echo(conn, TEXT, printable(ECHO_LIMIT))
        self.echo(conn, BINARY, os.urandom(ECHO_LIMIT))
        self.echo(conn, TEXT, "")
        conn.send_close(1000)
        conn.expect_close([1000])
        conn.expect_eof()

    def test_one_byte_over_the_limit_closes_1009(self):
        for opcode in (TEXT, BINARY):
            with self.subTest(opcode=opcode):
                conn = self.connect()
                self.echo(conn, TEXT, "before")
                conn.send(opcode, printable(ECHO_LIMIT + 1))
                conn.expect_fail(TOO_BIG)
                self.assert_healthy()

    def test_fragmented_message_of_exactly_the_limit_is_echoed(self):
        conn = self.connect()
        payload = printable(ECHO_LIMIT)
        conn.send(TEXT, payload[:600], fin=False)
        conn.send(CONT, payload[600:], fin=True)
        conn.expect(TEXT, payload)
        # Ten fragments of 100 bytes, binary.
        payload = os.urandom(ECHO_LIMIT)
        for i in range(10):
            conn.send(BINARY if i == 0 else CONT, payload[i * 100:(i + 1) * 100], fin=(i == 9))
        conn.expect(BINARY, payload)

    def test_fragmented_message_one_byte_over_closes_1009(self):
        # Each fragment is well under the limit; only their sum is over it.
        conn = self.connect()
        conn.send(TEXT, printable(600), fin=False)
        conn.send(CONT, printable(ECHO_LIMIT + 1 - 600), fin=True)
        conn.expect_fail(TOO_BIG)
        self.assert_healthy()
        # The same in eleven frames of 91 bytes (1001), the last of them the one too many.
        conn = self.connect()
        for i in range(11):
            conn.send(BINARY if i == 0 else CONT, os.urandom(91), fin=(i == 10))
        conn.expect_fail(TOO_BIG)
        self.assert_healthy()

    def test_size_is_decided_from_the_frame_header(self):
        # A header announcing 1 TiB and not one byte of payload: the server cannot be waiting to buffer
        # it, the header alone earns the 1009. Likewise a 16-bit length of limit + 1.
        for announced in (ECHO_LIMIT + 1, 1 << 40):
            with self.subTest(announced=announced):
                conn = self.connect()
                conn.send_raw(rawws.frame_header(BINARY, announced) + os.urandom(4))
                conn.expect_fail(TOO_BIG)
        # A continuation header that pushes the total over the limit, before its payload arrives.
        conn = self.connect()
        conn.send(TEXT, printable(900), fin=False)
        conn.send_raw(rawws.frame_header(CONT, 101) + os.urandom(4))
        conn.expect_fail(TOO_BIG)
        self.assert_healthy()

    def test_per_endpoint_override(self):
        # /big allows 4000 where /echo allows 1000; each endpoint keeps its own limit.
        big = self.connect("/big")
        self.echo(big, TEXT, printable(ECHO_LIMIT + 1))
        self.echo(big, BINARY, os.urandom(BIG_LIMIT))
        small = self.connect("/echo")
        small.send(TEXT, printable(ECHO_LIMIT + 1))
        small.expect_fail(TOO_BIG)
        self.echo(big, TEXT, printable(BIG_LIMIT))  # /echo's failure left /big alone
        big.send(BINARY, os.urandom(BIG_LIMIT + 1))
        big.expect_fail(TOO_BIG)
        self.assert_healthy("/big")
        self.assert_healthy("/echo")

    def test_frame_size_limit(self):
        # /frames: 100-byte frames, 4000-byte messages. A message of 40 full frames is fine; a single
        # 101-byte frame is not, even in a message far under the message limit.
        conn = self.connect("/frames")
        payload = printable(BIG_LIMIT)
        for i in range(40):
            conn.send(TEXT if i == 0 else CONT, payload[i * 100:(i + 1) * 100], fin=(i == 39))
        conn.expect(TEXT, payload)
        self.echo(conn, BINARY, os.urandom(FRAME_LIMIT))
        conn.send(BINARY, os.urandom(FRAME_LIMIT + 1))
        conn.expect_fail(TOO_BIG)
        # A 101-byte continuation frame too.
        conn = self.connect("/frames")
        conn.send(TEXT, printable(50), fin=False)
        conn.send(CONT, printable(FRAME_LIMIT + 1), fin=True)
        conn.expect_fail(TOO_BIG)
        self.assert_healthy("/frames")

    def test_default_limit_is_one_mebibyte(self):
        # /default sets no endpoint options: README's default, 1,048,576 bytes inclusive.
        async def scenario():
            async with websockets.connect(self.server.url("/default"), max_size=2 * MiB,
                                          open_timeout=harness.TIMEOUT) as ws:
                payload = os.urandom(DEFAULT_LIMIT)
                await ws.send(payload)
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), payload)
                text = printable(DEFAULT_LIMIT).decode()
                await ws.send(text)
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), text)
                await ws.send(os.urandom(DEFAULT_LIMIT + 1))
                with self.assertRaises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), harness.TIMEOUT)
                self.assertIsNotNone(closed.exception.rcvd, "no close frame from the server")
                self.assertEqual(closed.exception.rcvd.code, TOO_BIG)

        harness.run(scenario())
        self.assert_healthy("/default")

    def test_counts_return_to_zero_after_violations(self):
        conn = self.connect("/big")
        conn.send(TEXT, printable(BIG_LIMIT + 1))
        conn.expect_fail(TOO_BIG)
        self.assert_counts_return_to_zero()


class HeaderSize(LimitsTestCase):
    """server_options::max_header_bytes (1024 here): a head of exactly the limit is served, one byte
    more gets 431."""

    def test_head_of_exactly_the_limit_is_accepted(self):
        request = request_of_size(self.port, MAX_HEADER_BYTES)
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=rawws.WAIT)
        self.addCleanup(sock.close)
        sock.sendall(request)
        head, rest = rawws.read_http_response(sock)
        status, _, _ = rawws.parse_http_head(head)
        self.assertEqual(status, 101)
        self.assertEqual(rest, b"")
        sock.sendall(frame(TEXT, "after a full head"))
        self.assertEqual(sock.recv(100), b"\x81\x11after a full head")

    def test_head_one_byte_over_the_limit_gets_431(self):
        request = request_of_size(self.port, MAX_HEADER_BYTES + 1)
        status, _, headers, sock = rawws.http_exchange(self.port, request)
        self.addCleanup(sock.close)
        self.assertEqual(status, 431)
        self.assertEqual(headers.get("connection"), ["close"])
        self.assertIsNotNone(wait_closed(sock, LATE), "the server kept the connection after its 431")
        self.assert_healthy()

    def test_oversized_head_in_small_pieces_gets_431(self):
        # The limit counts bytes across reads: sent in 64-byte segments, never more than 64 at a time.
        request = request_of_size(self.port, 3 * MAX_HEADER_BYTES)
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=rawws.WAIT)
        self.addCleanup(sock.close)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for i in range(0, len(request), 64):
                sock.sendall(request[i:i + 64])
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before we finished: read the answer
        head, _ = rawws.read_http_response(sock)
        self.assertEqual(rawws.parse_http_head(head)[0], 431)
        self.assert_healthy()

    def test_endless_header_gets_431(self):
        # A header line that never ends: refused once the limit is reached, not buffered forever.
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=rawws.WAIT)
        self.addCleanup(sock.close)
        try:
            sock.sendall(b"GET /echo HTTP/1.1\r\nX-Endless: " + b"x" * (4 * MAX_HEADER_BYTES))
        except (BrokenPipeError, ConnectionResetError):
            pass
        head, _ = rawws.read_http_response(sock)
        self.assertEqual(rawws.parse_http_head(head)[0], 431)
        self.assert_healthy()

    def test_long_request_line_gets_431(self):
        request, _ = rawws.upgrade_request(self.port, "/echo?pad=" + "q" * MAX_HEADER_BYTES)
        status, _, _, sock = rawws.http_exchange(self.port, request)
        sock.close()
        self.assertEqual(status, 431)
        self.assert_healthy()


class HandshakeTimeout(LimitsTestCase):
    """server_options::handshake_timeout (300 ms here): a client that does not send its whole request
    in time is dropped, without stalling anybody else."""

    def open_raw(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=rawws.WAIT)
        self.addCleanup(sock.close)
        return sock

    def test_half_request_is_dropped_while_others_are_served(self):
        start = time.monotonic()
        slow = self.open_raw()
        slow.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        # Meanwhile another client connects and is served in full.
        self.assert_healthy()
        waited = wait_closed(slow, LATE)
        self.assertIsNotNone(waited, f"half request still open {LATE} s later")
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, HANDSHAKE_TIMEOUT - EARLY, "dropped before the handshake timeout")
        self.assert_healthy()

    def test_silent_connection_is_dropped(self):
        start = time.monotonic()
        silent = self.open_raw()
        self.assertIsNotNone(wait_closed(silent, LATE), "a connection that sends nothing stays open")
        self.assertGreaterEqual(time.monotonic() - start, HANDSHAKE_TIMEOUT - EARLY)
        self.assert_healthy()

    def test_trickling_client_is_dropped(self):
        # The timeout is for the whole request, not between bytes: a client that sends one byte
        # whenever the server has been quiet for 20 ms (a slowloris) is still dropped, long before its
        # ~1000-byte request could be complete (that would take 20 s).
        request = request_of_size(self.port, 1000)
        start = time.monotonic()
        sock = self.open_raw()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        dropped = False
        for i in range(len(request)):
            try:
                sock.sendall(request[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
            if wait_closed(sock, 0.02) is not None:
                dropped = True
                break
            if time.monotonic() - start > LATE:
                break
        self.assertTrue(dropped, f"a trickling client kept its connection for {time.monotonic() - start:.1f} s")
        self.assertGreaterEqual(time.monotonic() - start, HANDSHAKE_TIMEOUT - EARLY)
        self.assert_healthy()

    def test_upgraded_connection_is_not_subject_to_the_handshake_timeout(self):
        # The deadline ends with the handshake: a connection that stays quiet after its upgrade, for
        # several handshake timeouts, is still open and echoes.
        conn = self.connect()
        self.assertIsNone(wait_closed(conn.sock, 4 * HANDSHAKE_TIMEOUT), "upgraded connection dropped")
        self.echo(conn, TEXT, "still here")


class ConnectionLimit(LimitsTestCase):
    """server_options::max_connections (20 here): with 20 open, the next is answered 503 (README), and
    once one closes a new one is accepted. A fresh server per case: every open socket counts."""

    def setUp(self):
        type(self).server = harness.Server(SERVER)
        self.addCleanup(self.server.stop)

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def expect_503(self):
        """The next connection is answered 503 with a body, and the server closes it."""
        request, _ = rawws.upgrade_request(self.port, "/echo")
        status, headers, body = rawws.http_answer(self.port, request)
        self.assertEqual(status, 503)
        self.assertEqual(headers.get("connection"), ["close"])
        self.assertEqual(body, b"Too many connections")

    def accept_eventually(self, path="/echo"):
        """A new connection once a slot is free. The server frees a slot when it has closed the old
        socket, a moment after the client saw the end; each attempt is a round trip, bounded."""
        for _ in range(200):
            try:
                return self.connect(path)
            except rawws.ProtocolError as e:
                if "503" not in str(e):
                    raise
        self.fail("no slot was freed: every attempt answered 503")

    def test_503_at_the_limit_and_a_slot_frees_on_close(self):
        conns = [self.connect("/echo" if i % 2 else "/big") for i in range(MAX_CONNECTIONS)]
        for i, conn in enumerate(conns):
            self.echo(conn, TEXT, f"client {i}")
        self.expect_503()
        self.expect_503()  # refusing does not use a slot up

        # Python's websockets client sees the same refusal.
        async def refused():
            with self.assertRaises(InvalidStatusCode) as raised:
                async with websockets.connect(self.server.url("/echo"), open_timeout=harness.TIMEOUT):
                    pass
            self.assertEqual(raised.exception.status_code, 503)

        harness.run(refused())
        # The open clients are unaffected.
        for i, conn in enumerate(conns):
            self.echo(conn, BINARY, b"client %d" % i)

        # One closes cleanly: a new one gets in, and then the server is full again.
        conns[0].send_close(1000)
        conns[0].expect_close([1000])
        conns[0].expect_eof()
        newcomer = self.accept_eventually()
        self.echo(newcomer, TEXT, "newcomer")
        self.expect_503()

        # One vanishes with a reset (SO_LINGER 0): its slot is freed too.
        conns[1].sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conns[1].close_socket()
        another = self.accept_eventually("/big")
        self.echo(another, TEXT, "another")
        self.expect_503()

    def test_handshaking_connections_count_and_are_freed_by_the_handshake_timeout(self):
        # README: "Open connections (handshaking or upgraded)". 20 sockets that never send a byte fill
        # the server; the handshake timeout drops them, and the server accepts again. The 20 connect
        # back to back and the 21st follows at once: the kernel has completed all 21 TCP handshakes
        # and the server accepts them in order, so the 21st must find 20 already counted. Three rounds,
        # each ended by the handshake timeout. This server's handshake timeout is 2 s, not 300 ms: on a
        # loaded machine, opening 20 sockets can take longer than 300 ms, and the first ones would be
        # dropped before the 21st arrives.
        type(self).server = harness.Server(SERVER, "--handshake-timeout-ms", "2000")
        self.addCleanup(self.server.stop)
        for round_number in range(3):
            with self.subTest(round=round_number):
                idle = []
                for _ in range(MAX_CONNECTIONS):
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=rawws.WAIT)
                    self.addCleanup(sock.close)
                    idle.append(sock)
                self.expect_503()
                for sock in idle:
                    self.assertIsNotNone(wait_closed(sock, LATE), "an idle connection outlived the handshake timeout")
                    sock.close()
                conn = self.accept_eventually()
                self.echo(conn, TEXT, "in after the idle ones left")
                conn.send_close(1000)
                conn.expect_close([1000])
                conn.expect_eof()
                conn.close_socket()
                self.accept_eventually().close_socket()  # the slot of the one just closed is free again


class CloseTimeout(LimitsTestCase):
    """websocket_options::close_timeout (300 ms here): a peer that never answers our close frame is
    dropped."""

    def test_peer_that_never_answers_our_close_is_dropped(self):
        conn = self.connect()
        conn.send(TEXT, "please close")
        start = time.monotonic()
        conn.expect_close([4000])
        # We do not answer. Meanwhile others are served.
        self.assert_healthy()
        waited = wait_closed(conn.sock, LATE)
        self.assertIsNotNone(waited, f"the server still holds the connection {LATE} s after its close frame")
        self.assertGreaterEqual(time.monotonic() - start, CLOSE_TIMEOUT - EARLY,
                                "dropped before the close timeout")
        self.assert_counts_return_to_zero()

    def test_peer_that_keeps_sending_instead_of_answering_is_dropped(self):
        # Data instead of the close frame does not keep the connection alive.
        conn = self.connect("/big")
        conn.send(TEXT, "please close")
        conn.expect_close([4000])
        start = time.monotonic()
        dropped = False
        while time.monotonic() - start < LATE:
            try:
                conn.send(TEXT, "are you there?")
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
            if wait_closed(conn.sock, 0.02) is not None:
                dropped = True
                break
        self.assertTrue(dropped, f"a peer sending data instead of a close frame kept its connection {LATE} s")
        self.assert_counts_return_to_zero()
        self.assert_healthy("/big")

    def test_peer_that_answers_gets_a_clean_close(self):
        conn = self.connect()
        conn.send(TEXT, "please close")
        code, reason = conn.expect_close([4000])
        self.assertEqual(reason, b"asked to close")
        conn.send_close(4000)
        conn.expect_eof()
        self.assert_counts_return_to_zero()

FLOOD_QUEUE_LIMIT = 64 * 1024  # max_queued_bytes of /flood
# (/broadcast and /broadcast_drop allow 1 MiB, 64 messages of slack: the fast Python clients must never
# meet the policy, even when a loaded machine runs their readers late.)
BURST_MESSAGES = 2000        # 16 KiB each: 31 MiB per receiver, far over every buffer on the way
BURST_SIZE = 16 * 1024
RSS_GROWTH_LIMIT_KIB = 8 * 1024  # the queue limit, a 64-frame write in flight, allocator slack
IDLE_TIMEOUT = 0.3


def numbered(i, size):
    return i.to_bytes(8, "big") + b"n" * (size - 8)


class SlowConsumer(LimitsTestCase):
    """A broadcast meets a client that never reads (a small receive window, nothing read) while three
    others keep up. The fast ones get every message, the server's memory stays bounded, and the slow
    one gets the endpoint's slow_consumer policy: 1008 (default) or its messages dropped."""

    def run_burst(self, path, afterwards):
        """Connects a slow client and three fast ones to `path`; the first fast one publishes
        BURST_MESSAGES numbered messages, each after its own copy came back (a paced publisher, as a
        chat client is). Then runs `afterwards(slow, fast)` in the same event loop. Returns (the slow
        client, growth of the server's RSS in KiB during the burst, what `afterwards` returned)."""
        slow = rawws.Conn(self.port, path, rcvbuf=4096)
        self.addCleanup(slow.close_socket)
        pid = self.server.process.pid

        async def scenario():
            fast = [await websockets.connect(self.server.url(path), open_timeout=harness.TIMEOUT,
                                             max_size=None, max_queue=None, ping_interval=None) for _ in range(3)]
            try:
                await self.wait_for_members(path, 4)
                baseline = peak = harness.vm_rss_kib(pid)

                async def read_all(ws):
                    for i in range(BURST_MESSAGES):
                        got = await asyncio.wait_for(ws.recv(), harness.TIMEOUT)
                        self.assertEqual(got, numbered(i, BURST_SIZE), f"fast client: message {i} wrong or missing")

                readers = asyncio.gather(*[read_all(ws) for ws in fast[1:]])
                publisher = fast[0]
                for i in range(BURST_MESSAGES):
                    await publisher.send(numbered(i, BURST_SIZE))
                    self.assertEqual(await asyncio.wait_for(publisher.recv(), harness.TIMEOUT), numbered(i, BURST_SIZE))
                    if i % 50 == 0:
                        peak = max(peak, harness.vm_rss_kib(pid))
                await asyncio.wait_for(readers, harness.TIMEOUT)
                peak = max(peak, harness.vm_rss_kib(pid))
                return peak - baseline, await afterwards(slow, fast)
            finally:
                for ws in fast:
                    await ws.close()

        growth, result = harness.run(scenario())
        return slow, growth, result

    def assert_memory_bounded(self, growth_kib):
        if not harness.instrumented(harness.binary(SERVER)):  # sanitizers' RSS says nothing
            self.assertLess(growth_kib, RSS_GROWTH_LIMIT_KIB, "the slow client's backlog grew the server's memory")

    def read_numbered(self, conn, until):
        """Reads binary numbered messages until `until(opcode, payload)` is true; returns their
        indices and that last frame."""
        indices = []
        while True:
            opcode, payload = conn.recv_message("the slow client's backlog")
            if until(opcode, payload):
                return indices, (opcode, payload)
            self.assertEqual(opcode, BINARY)
            self.assertEqual(len(payload), BURST_SIZE)
            indices.append(int.from_bytes(payload[:8], "big"))

    def test_close_policy_closes_the_slow_client_with_1008(self):
        async def afterwards(slow, fast):
            # What the slow client finds when it finally reads: a gapless prefix of the burst (the
            # backlog not yet written was dropped), then 1008.
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self.read_numbered, slow, lambda op, _: op == rawws.CLOSE)

        slow, growth, (indices, (_, payload)) = self.run_burst("/broadcast", afterwards)
        self.assert_memory_bounded(growth)
        self.assertEqual(indices, list(range(len(indices))))
        self.assertLess(len(indices), BURST_MESSAGES)
        code, reason = rawws.Frame(True, 0, rawws.CLOSE, payload).close_code()
        self.assertEqual(code, 1008)
        self.assertIn(b"slow consumer", reason)
        slow.send_close(1008)
        slow.expect_eof()
        self.assert_counts_return_to_zero()
        self.assert_healthy()

    def test_drop_policy_skips_messages_and_keeps_the_slow_client(self):
        async def afterwards(slow, fast):
            # The slow client now reads; the publisher sends markers until one reaches it (the first
            # ones may still meet a full queue and be dropped for it).
            loop = asyncio.get_running_loop()
            reading = loop.run_in_executor(None, self.read_numbered, slow, lambda op, _: op == TEXT)
            publisher = fast[0]
            deadline = time.monotonic() + LATE
            while not reading.done():
                self.assertLess(time.monotonic(), deadline, "no marker reached the slow client")
                await publisher.send("marker")
                while await asyncio.wait_for(publisher.recv(), harness.TIMEOUT) != "marker":
                    pass
            members = (await loop.run_in_executor(None, self.counts))["/broadcast_drop"]
            return await reading, members

        slow, growth, ((indices, (_, payload)), members) = self.run_burst("/broadcast_drop", afterwards)
        self.assert_memory_bounded(growth)
        self.assertEqual(payload, b"marker")
        self.assertEqual(indices, sorted(set(indices)), "messages out of order or repeated")
        self.assertLess(len(indices), BURST_MESSAGES, "nothing was dropped: the slow client was not slow")
        self.assertGreater(len(indices), 0)
        self.assertEqual(members, 4, "the slow client is no longer a member")
        # Still served: our close is answered.
        slow.send_close(1000)
        while slow.recv_message("the answer to our close")[0] != rawws.CLOSE:
            pass
        slow.expect_eof()


class BroadcastBurst(LimitsTestCase):
    """A handler that broadcasts a burst bigger than max_queued_bytes without yielding queues it all
    before anything can be written. Readers that keep up are not slow consumers: each gets the whole
    burst, under either policy. (The policy is for clients whose socket stops taking bytes.)"""

    BURST = 200  # of BURST_SIZE: 3.1 MiB, three times the 1 MiB limit of /broadcast and /broadcast_drop

    def test_readers_that_keep_up_get_a_burst_larger_than_the_queue_limit(self):
        for path in ("/broadcast", "/broadcast_drop"):
            with self.subTest(path=path):
                async def scenario():
                    clients = [await websockets.connect(self.server.url(path), open_timeout=harness.TIMEOUT,
                                                        max_size=None, max_queue=None, ping_interval=None)
                               for _ in range(3)]
                    try:
                        await self.wait_for_members(path, 3)
                        await clients[0].send(f"burst {self.BURST} {BURST_SIZE}")
                        for n, ws in enumerate(clients):
                            for i in range(self.BURST):
                                got = await asyncio.wait_for(ws.recv(), harness.TIMEOUT)
                                self.assertEqual(got, numbered(i, BURST_SIZE), f"client {n}: message {i}")
                        # Still open and served: an echo through the same endpoint reaches all three.
                        await clients[1].send("still here")
                        for ws in clients:
                            self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), "still here")
                    finally:
                        for ws in clients:
                            await ws.close()

                harness.run(scenario())
                self.assert_counts_return_to_zero()


class SendBackpressure(LimitsTestCase):
    """`co_await send...` suspends while the connection's queue is over max_queued_bytes: a handler
    flooding a client that does not read is held at the client's pace, and the server's memory with
    it. /flood sends 2000 messages of 16 KiB (31 MiB) to a client that reads nothing at first."""

    def test_send_suspends_above_the_high_water_mark(self):
        pid = self.server.process.pid
        measure = not harness.instrumented(harness.binary(SERVER))
        baseline = harness.vm_rss_kib(pid)
        conn = self.connect_slow()
        conn.send(TEXT, f"flood {BURST_MESSAGES} {BURST_SIZE}")
        # Follow the handler's progress until it stops moving (several /stats round trips in a row
        # with the same count). Bytes sent and not read can only sit in the kernel's socket buffers
        # (a few MiB on loopback) or in our queue (max_queued_bytes).
        deadline = time.monotonic() + LATE
        sent, same, peak = 0, 0, baseline
        while same < 5:
            self.assertLess(time.monotonic(), deadline, "the flood's progress never settled")
            now = limits_stats.stats(self.port)["flood sent"]
            same = same + 1 if now == sent and now > 0 else 0
            sent = now
            peak = max(peak, harness.vm_rss_kib(pid))
        kernel_buffers = 8 * MiB
        self.assertLess(sent * BURST_SIZE, kernel_buffers + FLOOD_QUEUE_LIMIT + BURST_SIZE,
                        f"{sent} messages queued for a client that reads nothing: send() did not wait")
        self.assertLess(sent, BURST_MESSAGES)
        if measure:
            self.assertLess(peak - baseline, RSS_GROWTH_LIMIT_KIB)
        # Reading resumes the handler; every message arrives, in order, whole.
        for i in range(BURST_MESSAGES):
            conn.expect(BINARY, numbered(i, BURST_SIZE), f"flood message {i}")
        self.assertEqual(limits_stats.stats(self.port)["flood sent"], BURST_MESSAGES)
        conn.send_close(1000)
        conn.expect_close([1000])
        conn.expect_eof()
        self.assert_healthy()

    def connect_slow(self):
        conn = rawws.Conn(self.port, "/flood", rcvbuf=64 * 1024)
        self.addCleanup(conn.close_socket)
        return conn


class IdleTimeout(LimitsTestCase):
    """websocket_options::idle_timeout (300 ms on /idle): silence gets a ping, a pong keeps the
    connection, silence after the ping closes it with 1001 "idle timeout" and runs on_close."""

    def test_silent_peer_is_pinged_then_closed_1001(self):
        closes_before = limits_stats.stats(self.port)["idle on_close"]
        conn = self.connect("/idle")
        self.echo(conn, TEXT, "awake")
        for round_ in range(2):
            started = time.monotonic()
            ping = conn.recv_frame(f"ping {round_ + 1}")
            self.assertEqual(ping.opcode, rawws.PING)
            self.assertGreaterEqual(time.monotonic() - started, IDLE_TIMEOUT - EARLY, "pinged before the idle timeout")
            conn.send(rawws.PONG, ping.payload)  # alive: the connection stays
        self.echo(conn, TEXT, "still here")
        ping = conn.recv_frame("a third ping")
        self.assertEqual(ping.opcode, rawws.PING)
        started = time.monotonic()  # now silent
        code, reason = conn.expect_close([1001])
        self.assertEqual(reason, b"idle timeout")
        self.assertGreaterEqual(time.monotonic() - started, IDLE_TIMEOUT - EARLY)
        conn.expect_eof()  # we never answer the close frame either: dropped after the close timeout
        self.assertEqual(limits_stats.stats(self.port)["idle on_close"], closes_before + 1)
        self.assertEqual(self.counts()["/idle"], 0)
        self.assert_healthy("/idle")

    def test_silence_while_the_server_is_busy_is_not_idleness(self):
        # /idle_busy's handler takes 1 s over "busy" (more than two idle timeouts) and its inbox holds
        # one message, so the server stops reading this client meanwhile. The client, waiting for
        # answers, says nothing; no ping and no close may come, only the echoes, in order.
        conn = self.connect("/idle_busy")
        for text in ("busy", "after 1", "after 2"):
            conn.send(TEXT, text)
        for text in ("busy", "after 1", "after 2"):
            conn.expect(TEXT, text)
        conn.send_close(1000)
        conn.expect_close([1000])
        conn.expect_eof()

    def test_a_peer_that_keeps_talking_is_not_pinged(self):
        conn = self.connect("/idle")
        # Back-to-back echoes for three idle timeouts: every answer must be the echo, never a ping,
        # since the peer is never silent.
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < 3 * IDLE_TIMEOUT:
            self.echo(conn, TEXT, f"message {i}")
            i += 1
        conn.send_close(1000)
        conn.expect_close([1000])
        conn.expect_eof()


class WriteTimeout(LimitsTestCase):
    """websocket_options::write_timeout (300 ms on /stalled): a client whose socket takes no byte for
    that long while data waits for it is closed, and released within the close timeout after."""

    def test_client_that_stops_reading_is_released(self):
        conn = rawws.Conn(self.port, "/stalled", rcvbuf=4096)
        self.addCleanup(conn.close_socket)
        conn.send(TEXT, "flood 100000 16384")  # far more than the kernel's buffers hold
        started = time.monotonic()
        deadline = started + WRITE_TIMEOUT + CLOSE_TIMEOUT + LATE
        while self.counts()["/stalled"] != 0:
            self.assertLess(time.monotonic(), deadline, "a client that stopped reading was never released")
        self.assertGreater(time.monotonic() - started, WRITE_TIMEOUT - EARLY, "released before the write timeout")
        self.assert_healthy()

    def test_client_that_reads_slowly_is_not_closed(self):
        # The writer waits for the socket often, but never for 300 ms: every message arrives.
        conn = rawws.Conn(self.port, "/stalled", rcvbuf=16384)
        self.addCleanup(conn.close_socket)
        conn.send(TEXT, f"flood 200 {BURST_SIZE}")
        for i in range(200):
            conn.expect(BINARY, numbered(i, BURST_SIZE), f"flood message {i}")
        conn.send_close(1000)
        conn.expect_close([1000])
        conn.expect_eof()


class MessageTimeout(LimitsTestCase):
    """websocket_options::message_timeout (300 ms on /trickle): a message must arrive whole within
    that time of its first bytes, however its sender paces them."""

    def test_message_trickled_too_slowly_is_closed_1008(self):
        conn = self.connect("/trickle")
        payload = b"t" * 1000
        wire = frame(BINARY, payload)
        started = time.monotonic()
        sent = 0
        # One byte every 50 ms: the connection is never idle, and the message never completes in time.
        # The wait for the server's close frame paces the bytes.
        while not select.select([conn.sock], [], [], 0.05)[0]:
            self.assertLess(sent, len(wire) - 1, "the whole message went out before any close")
            conn.send_raw(wire[sent:sent + 1])
            sent += 1
        code, reason = conn.expect_close([1008])
        self.assertIn(b"message timeout", reason)
        self.assertGreater(time.monotonic() - started, MESSAGE_TIMEOUT - EARLY)
        self.assert_healthy()

    def test_message_in_time_is_echoed_and_the_next_one_gets_its_own_time(self):
        conn = self.connect("/trickle")
        for i in range(3):
            first, second = frame(TEXT, f"part {i} ", fin=False), frame(CONT, "end")
            conn.send_raw(first)
            conn.send_raw(second)
            conn.expect(TEXT, f"part {i} end")
        conn.send_close(1000)
        conn.expect_close([1000])


class SendAfterTheClientVanished(LimitsTestCase):
    """A handler that only sends (/ticker: "tick N" every 20 ms) ends when its client drops TCP
    without a close frame: its next send throws websocket_disconnect."""

    def wait_for_ended(self, expected):
        deadline = time.monotonic() + LATE
        while limits_stats.stats(self.port)["ticker ended"] != expected:
            self.assertLess(time.monotonic(), deadline, "the send-only handler did not end")

    def test_reset_and_plain_close_end_the_handler(self):
        ended = limits_stats.stats(self.port)["ticker ended"]
        for reset in (True, False):
            conn = rawws.Conn(self.port, "/ticker")
            conn.expect(TEXT, "tick 1")
            conn.expect(TEXT, "tick 2")
            if reset:  # SO_LINGER 0: an RST
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close_socket()
            ended += 1
            self.wait_for_ended(ended)
        self.assertEqual(self.counts()["/ticker"], 0)


class BroadcastFromOnConnect(LimitsTestCase):
    """A broadcast made in on_connect reaches everyone, the connecting client included (it is not in
    the endpoint's registry yet, since nothing else may reach it before its greeting)."""

    def test_connecting_client_gets_its_own_broadcast(self):
        first = self.connect("/joined")
        first.expect(TEXT, "joined")
        self.echo(first, TEXT, "first is a member now")
        second = self.connect("/joined")
        second.expect(TEXT, "joined")
        first.expect(TEXT, "joined")  # the second one's arrival
        self.echo(second, TEXT, "and so is the second")


class Shutdown(unittest.TestCase):
    """SIGTERM: every open client gets a close frame with 1001, and the process exits 0 within
    server_options::shutdown_timeout (2 s here; 500 ms in the case that needs it to expire)."""

    def start(self, *args, env=None):
        server = harness.Server(SERVER, *args, env=env)
        self.addCleanup(lambda: server.alive() and server.stop(signal.SIGKILL))
        return server

    def terminate(self, server):
        """Sends SIGTERM; returns (exit status, seconds until exit)."""
        start = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            status = server.process.wait(timeout=SHUTDOWN_TIMEOUT + LATE)
        except subprocess.TimeoutExpired:
            self.fail(f"the server did not exit {SHUTDOWN_TIMEOUT + LATE} s after SIGTERM")
        return status, time.monotonic() - start

    def test_sigterm_closes_every_client_with_1001_and_exits_0(self):
        server = self.start()
        paths = ["/echo", "/echo", "/big", "/frames", "/default", "/lingering"]

        async def scenario():
            clients = [await websockets.connect(server.url(p), open_timeout=harness.TIMEOUT) for p in paths]
            for i, ws in enumerate(clients):
                await ws.send(f"client {i}")
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), f"client {i}")
            # A raw client that never answers the close frame (dropped after its 300 ms close timeout,
            # well within the shutdown timeout), and one half-way through its handshake (dropped by the
            # handshake timeout).
            raw = rawws.Conn(server.port, "/big")
            self.addCleanup(raw.close_socket)
            half = socket.create_connection(("127.0.0.1", server.port), timeout=rawws.WAIT)
            self.addCleanup(half.close)
            half.sendall(b"GET /echo HTTP/1.1\r\n")
            status, took = await asyncio.get_running_loop().run_in_executor(None, self.terminate, server)
            for ws in clients:
                with self.assertRaises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), harness.TIMEOUT)
                self.assertIsNotNone(closed.exception.rcvd, "closed without a close frame")
                self.assertEqual(closed.exception.rcvd.code, 1001)
            return status, took, raw

        status, took, raw = harness.run(scenario())
        code, _ = raw.expect_close([1001])
        self.assertEqual(status, 0, server.stderr())
        self.assertLess(took, SHUTDOWN_TIMEOUT + 1.0, "shutdown took longer than its timeout")
        server.process.stdout.close()

    def test_peer_that_never_answers_is_dropped_at_the_shutdown_timeout(self):
        # /lingering's close timeout is 30 s; the shutdown timeout (1.5 s) wins: the process does not
        # wait for the peer, drops it (its coroutines end and free it: LeakSanitizer checks that in
        # the ASan build), and still exits 0. (1.5 s, not less: under AddressSanitizer the polite
        # client's close frame must still be written before the loops stop.)
        server = self.start("--shutdown-timeout-ms", "1500")
        stubborn = [rawws.Conn(server.port, "/lingering") for _ in range(3)]
        for conn in stubborn:
            self.addCleanup(conn.close_socket)
            conn.send(TEXT, "hello")
            conn.expect(TEXT, "hello")
        polite = rawws.Conn(server.port, "/echo")
        self.addCleanup(polite.close_socket)
        polite.send(TEXT, "hello")  # its handler runs: the connection is in the endpoint's registry
        polite.expect(TEXT, "hello")
        status, took = self.terminate(server)
        for conn in stubborn:
            conn.expect_close([1001])
            self.assertIsNotNone(wait_closed(conn.sock, LATE), "a stubborn peer still connected after exit")
        polite.expect_close([1001])
        self.assertEqual(status, 0, f"exit status {status}: {server.stderr()}")
        self.assertGreaterEqual(took, 1.5 - EARLY, "exited before the shutdown timeout with peers still open")
        self.assertLess(took, 1.5 + LATE)
        server.process.stdout.close()

    def test_connection_still_in_on_connect_gets_1001(self):
        # /slow_connect's on_connect takes 500 ms; the connection is upgraded but not yet in its
        # endpoint's registry when the SIGTERM comes. It still gets its 1001, and no greeting after.
        server = self.start()
        conn = rawws.Conn(server.port, "/slow_connect")
        self.addCleanup(conn.close_socket)
        status, took = self.terminate(server)
        code, reason = conn.expect_close([1001])
        self.assertEqual(reason, b"server shutting down")
        self.assertIsNotNone(wait_closed(conn.sock, LATE))
        self.assertEqual(status, 0, server.stderr())
        server.process.stdout.close()

    def test_sigterm_right_after_listening_is_graceful(self):
        # Tests and tools wait for "listening on N" and may signal at once: the SIGTERM must already
        # mean a graceful shutdown (exit 0), not the default action (killed by the signal).
        server = self.start()
        status, took = self.terminate(server)
        self.assertEqual(status, 0)
        self.assertLess(took, SHUTDOWN_TIMEOUT)
        server.process.stdout.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
