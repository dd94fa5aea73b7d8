"""Hostile clients against examples/echo with its default settings: what each one may cost the server,
and that the server keeps serving everyone else meanwhile.

- a client that floods pings and never reads: a few pongs wait for it, not one per ping;
- a client that keeps sending after a close has begun (its own close, a protocol error, a message
  over the limit): released within close_timeout (5 s) + 2 s, however much it sends;
- clients that send and never read (1 MiB messages, 1-byte messages): at most 8 MiB each;
- clients that have drained what they were sent: at most 1 MiB each (the spare buffers each worker
  keeps are counted in, shared out among the clients);
- connections that sent only the header of a large frame: at most 64 KiB each.

Memory is the server's RSS delta, which says nothing in sanitizer builds (shadow memory, quarantine):
there the memory bounds are skipped and only the behaviour is checked. No sleeps: every wait is on an
event (a socket becoming readable or writable, a close) with a timeout."""
import os
import select
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402
import rawws  # noqa: E402
from rawws import BINARY, CLOSE, PING, TEXT, frame  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
CLOSE_TIMEOUT = 5.0  # the default websocket_options::close_timeout
RELEASE_SLACK = 2.0  # what the server may take beyond it to release a connection


def send_for(sock, data, seconds):
    """Sends `data` over and over for `seconds` (or until the server drops the connection), never
    reading. Returns the time the server dropped it (the send failed), or None if it never did."""
    end = time.monotonic() + seconds
    sock.setblocking(False)
    view = memoryview(data)
    sent = 0
    while time.monotonic() < end:
        if not select.select([], [sock], [], min(0.2, max(0.0, end - time.monotonic())))[1]:
            continue
        try:
            sent += sock.send(view[sent % len(data):])
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic()
    return None


def wait_dropped(sock, timeout):
    """Reads and discards until the server closes TCP. Returns when, or None after `timeout`."""
    sock.setblocking(True)
    end = time.monotonic() + timeout
    while True:
        remaining = end - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            return None
        try:
            if not sock.recv(1 << 20):
                return time.monotonic()
        except ConnectionResetError:
            return time.monotonic()


def fill_until_refused(sock, data, settle=1.0, limit=30.0):
    """Sends `data` repeatedly until the server has stopped taking bytes for `settle` seconds (its
    reader paused: the client's messages wait in the server's bounded buffers and in the kernel).
    Returns the bytes sent."""
    sock.setblocking(False)
    sent = 0
    view = memoryview(data)
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if not select.select([], [sock], [], settle)[1]:
            return sent
        try:
            sent += sock.send(view[sent % len(data):])
        except BlockingIOError:
            pass
    raise AssertionError(f"the server kept reading for {limit} s from a client that never reads")


class Attacks(unittest.TestCase):
    server_env = None

    def setUp(self):
        self.server = harness.Server("examples/echo", env=self.server_env)
        self.addCleanup(self.server.stop)
        self.measure_memory = not harness.instrumented(harness.binary("examples/echo"))
        # Warm up every worker (its shared read buffer, Asio's recycled memory) so that the RSS delta
        # is what the attack costs.
        for _ in range(8):
            self.echo_check()
        self.baseline = harness.vm_rss_kib(self.server.process.pid)

    def rss_growth_kib(self):
        return harness.vm_rss_kib(self.server.process.pid) - self.baseline

    def echo_check(self, payload="still serving"):
        """An ordinary client is served: the server is alive and not starved."""
        conn = rawws.Conn(self.server.port, "/echo")
        try:
            conn.send(TEXT, payload)
            conn.expect(TEXT, payload)
            conn.send_close(1000)
            conn.expect_close([1000])
        finally:
            conn.close_socket()

    def small_window_client(self):
        """A connection whose own receive window is small, so what the server sends it piles up in
        the server, not in this process's kernel buffers."""
        return rawws.Conn(self.server.port, "/echo", rcvbuf=4096)

    def test_ping_flood_from_a_client_that_never_reads(self):
        conn = self.small_window_client()
        ping = frame(PING, b"p" * 125)
        total = 60 * MiB
        sent = 0
        conn.sock.setblocking(False)
        block = ping * 512
        end = time.monotonic() + 30
        # 60 MB of pings, or as much as the server takes before it closes the flooder.
        while sent < total and time.monotonic() < end:
            if not select.select([], [conn.sock], [], 2.0)[1]:
                break  # the server stopped reading: it is waiting for us to read its pongs
            try:
                sent += conn.sock.send(block)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        self.echo_check()
        if self.measure_memory:
            growth = self.rss_growth_kib()
            # A pong per ping would be hundreds of MiB here; the bound in README is 64 MiB, and what
            # is really held is a handful of pongs and one read buffer.
            self.assertLess(growth, 16 * KiB, f"RSS grew by {growth} KiB under a ping flood of {sent} bytes")
        conn.close_socket()

    def test_peers_that_keep_sending_after_a_close_has_begun_are_released(self):
        junk = frame(BINARY, b"j" * 1000) * 64

        def their_close(conn):
            conn.send_close(1000)

        def protocol_error(conn):
            conn.send_raw(bytes([0x83, 0x80, 0, 0, 0, 0]))  # reserved opcode 3: 1002

        def too_big(conn):
            conn.send_raw(rawws.frame_header(BINARY, 2 * MiB) + b"keyk")  # over the 1 MiB default: 1009

        results = {}

        def attack(name, begin_close, then_silent):
            conn = rawws.Conn(self.server.port, "/echo")
            begin_close(conn)
            started = time.monotonic()
            # Keep sending for longer than the close timeout, or, for the silent variant, for most
            # of it and then stop: either way the deadline must hold.
            seconds = CLOSE_TIMEOUT - 1.0 if then_silent else CLOSE_TIMEOUT + RELEASE_SLACK + 3.0
            dropped = send_for(conn.sock, junk, seconds)
            if dropped is None:
                dropped = wait_dropped(conn.sock, CLOSE_TIMEOUT + RELEASE_SLACK + 3.0)
            results[name] = None if dropped is None else dropped - started
            conn.close_socket()

        cases = {"their own close": their_close, "a protocol error": protocol_error, "a message too big": too_big}
        threads = []
        for name, begin in cases.items():
            for silent in (False, True):
                t = threading.Thread(target=attack, args=(f"{name}{', then silent' if silent else ''}", begin, silent))
                t.start()
                threads.append(t)
        # Meanwhile, everyone else is served.
        self.echo_check("served during the attack")
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(len(results), 6)
        for name, took in results.items():
            self.assertIsNotNone(took, f"{name}: never released")
            self.assertLess(took, CLOSE_TIMEOUT + RELEASE_SLACK, f"{name}: released after {took:.1f} s")
        self.echo_check()

    def never_reading_clients(self, count, message):
        conns = [self.small_window_client() for _ in range(count)]
        threads = [threading.Thread(target=fill_until_refused, args=(c.sock, message)) for c in conns]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        return conns

    def test_clients_that_send_large_messages_and_never_read_pin_at_most_8_mib(self):
        count = 4
        conns = self.never_reading_clients(count, frame(BINARY, b"m" * MiB))
        self.echo_check()
        if self.measure_memory:
            per_client = self.rss_growth_kib() / count
            self.assertLess(per_client, 8 * KiB, f"{per_client:.0f} KiB per client that never reads")
        # Once they read, they get their echoes; then what is left per client is small.
        for c in conns:
            c.sock.setblocking(True)
            c.sock.settimeout(5)
            c.sock.shutdown(socket.SHUT_WR)  # nothing more from us: the server drains and ends
        for c in conns:
            self.assertIsNotNone(wait_dropped(c.sock, 60), "the server did not finish a draining client")
            c.close_socket()
        self.echo_check()

    def test_clients_that_send_tiny_messages_and_never_read_pin_at_most_8_mib(self):
        count = 4
        conns = self.never_reading_clients(count, frame(TEXT, b"x") * 4096)
        self.echo_check()
        if self.measure_memory:
            per_client = self.rss_growth_kib() / count
            self.assertLess(per_client, 8 * KiB, f"{per_client:.0f} KiB per client that never reads")
        for c in conns:
            c.close_socket()

    def test_clients_that_have_drained_hold_at_most_1_mib(self):
        # Each worker keeps up to 4 MiB of spare message buffers for reuse, whatever the number of
        # clients: with enough clients, that is a small part of each one's share.
        count = 24
        conns = [rawws.Conn(self.server.port, "/echo") for _ in range(count)]
        payload = b"d" * MiB
        for _ in range(3):
            for c in conns:
                c.send(BINARY, payload)
            for c in conns:
                c.expect(BINARY, payload)
        if self.measure_memory:
            per_client = self.rss_growth_kib() / count
            self.assertLess(per_client, 1 * KiB, f"{per_client:.0f} KiB per drained client")
        for c in conns:
            c.send_close(1000)
            c.expect_close([1000])
            c.close_socket()

    def test_connections_that_sent_only_a_large_frames_header_hold_at_most_64_kib(self):
        count = 200
        conns = []
        for _ in range(count):
            c = rawws.Conn(self.server.port, "/echo")
            # The header of a 1 MiB frame and 10 bytes of it: 24 bytes in all.
            c.send_raw(rawws.frame_header(BINARY, MiB) + b"\0\0\0\0" + b"0123456789")
            conns.append(c)
        self.echo_check()  # every header has been read once this round trip is done on each worker
        self.echo_check()
        if self.measure_memory:
            per_connection = self.rss_growth_kib() / count
            self.assertLess(per_connection, 64, f"{per_connection:.1f} KiB per connection that sent 24 bytes")
        for c in conns:
            c.close_socket()


if __name__ == "__main__":
    unittest.main(verbosity=2)
