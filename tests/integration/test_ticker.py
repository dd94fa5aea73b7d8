"""Ticks beside a receive loop on one connection, over the wire with Python's websockets client:
examples/ticker (numbered ticks every 100 ms, "ping" answered with "pong", how its connections end),
and run_concurrently's endings on the /ticks endpoints of tests/coroutine_api_server, which record how
each call ended (/stats "endings").

Timing is asserted loosely: order and counts are exact, durations only have generous bounds (the
server's schedule is fixed, so a lower bound holds; an upper one only catches a stuck ticker)."""
import asyncio
import json
import os
import socket
import struct
import sys
import time
import unittest

import websockets
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402


async def recv(ws):
    """The next message, failing the test instead of hanging."""
    return await asyncio.wait_for(ws.recv(), timeout=harness.TIMEOUT)


async def closed_code(ws):
    """Reads until the server closes; the close code it sent and the messages before it. The close
    must come within the timeout: ticks that go on for ever fail the test rather than hang it."""
    messages = []

    async def read_to_the_end():
        try:
            while True:
                messages.append(await ws.recv())
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    code = await asyncio.wait_for(read_to_the_end(), timeout=harness.TIMEOUT)
    return code, messages


def drop(raw):
    """Closes a raw socket with a reset: no close frame, no FIN handshake."""
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()


class TickerExample(unittest.IsolatedAsyncioTestCase):
    """examples/ticker, the program README's run_concurrently section quotes."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("examples/ticker")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def url(self):
        return self.server.url("/ticker")

    def assertNoHandlerErrors(self):
        self.assertNotIn("threw", self.server.stderr())

    async def test_ticks_are_numbered_in_order_at_about_100_ms(self):
        async with websockets.connect(self.url()) as ws:
            self.assertEqual(await recv(ws), "tick 1")
            first = time.monotonic()
            for n in range(2, 12):
                self.assertEqual(await recv(ws), f"tick {n}")
            elapsed = time.monotonic() - first
        # Ten intervals of 100 ms on the server's fixed schedule: never much less than a second (the
        # margin is for when tick 1 itself was read late); the upper bound only catches a stall.
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 5.0)

    async def test_ping_gets_pong_between_ticks(self):
        async with websockets.connect(self.url()) as ws:
            self.assertEqual(await recv(ws), "tick 1")
            expected_tick = 2
            for _ in range(3):
                await ws.send("ping")
                # Ticks keep coming in order while the ping is answered; the pong comes within a few.
                for _ in range(5):
                    message = await recv(ws)
                    if message == "pong":
                        break
                    self.assertEqual(message, f"tick {expected_tick}")
                    expected_tick += 1
                else:
                    self.fail("no pong within five ticks")
                # And the ticks go on after the pong, without a gap.
                self.assertEqual(await recv(ws), f"tick {expected_tick}")
                expected_tick += 1
        self.assertNoHandlerErrors()

    async def test_other_messages_get_no_answer_and_ticks_go_on(self):
        async with websockets.connect(self.url()) as ws:
            self.assertEqual(await recv(ws), "tick 1")
            await ws.send("hello")
            await ws.send("ping")
            received = []
            while "pong" not in received:
                received.append(await recv(ws))
                self.assertLess(len(received), 10)
            self.assertEqual([m for m in received if m != "pong"],
                             [f"tick {n}" for n in range(2, 2 + len(received) - 1)])

    async def test_client_close_ends_the_connection_and_a_new_client_starts_at_tick_1(self):
        async with websockets.connect(self.url()) as ws:
            self.assertEqual(await recv(ws), "tick 1")
            self.assertEqual(await recv(ws), "tick 2")
            await ws.close(1000)
        self.assertEqual(ws.close_code, 1000)  # the server answered the close handshake
        for _ in range(3):
            async with websockets.connect(self.url()) as ws:
                self.assertEqual(await recv(ws), "tick 1")
        self.assertTrue(self.server.alive())
        self.assertNoHandlerErrors()

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.server.process.pid}/fd"))

    async def test_dropped_clients_do_not_leave_the_server_stuck(self):
        # A client kept open meanwhile: its pings are the round trips the waits below count in. Its
        # ticks are never read, so its queue is unbounded.
        async with websockets.connect(self.url(), max_queue=None) as probe:
            await asyncio.wait_for(await probe.ping(), timeout=harness.TIMEOUT)
            baseline = self.open_fds()
            for _ in range(20):
                raw, response = harness.raw_connect(self.server.port, "/ticker")
                self.assertIn(b"101 Switching Protocols", response)
                drop(raw)
            # Clients dropped while ticks were being sent to them, too.
            for _ in range(5):
                async with websockets.connect(self.url()) as ws:
                    self.assertEqual(await recv(ws), "tick 1")
                    ws.transport.abort()
            # Every dropped connection is torn down: the server's open descriptors come back to what
            # they were. (That the handler itself ends is checked in RunConcurrentlyEndings, where
            # the server records it.)
            for _ in range(500):
                if self.open_fds() == baseline:
                    break
                await asyncio.wait_for(await probe.ping(), timeout=harness.TIMEOUT)
            self.assertEqual(self.open_fds(), baseline)
        async with websockets.connect(self.url()) as ws:
            self.assertEqual(await recv(ws), "tick 1")
            await ws.send("ping")
            self.assertIn("pong", [await recv(ws) for _ in range(3)])
        self.assertTrue(self.server.alive())
        self.assertNoHandlerErrors()

    async def test_many_tickers_at_once_each_count_from_1(self):
        clients = [await websockets.connect(self.url()) for _ in range(20)]
        try:
            for ws in clients:
                self.assertEqual(await recv(ws), "tick 1")
            for ws in clients:
                self.assertEqual(await recv(ws), "tick 2")
        finally:
            await asyncio.gather(*(ws.close() for ws in clients))


class RunConcurrentlyEndings(unittest.IsolatedAsyncioTestCase):
    """How run_concurrently ends, seen from the server: each /ticks* handler records "returned",
    "disconnect CODE" or "error: MESSAGE" for the call, and /stats reports them with the number of
    connections still open. The ticker there ticks every 50 ms."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("tests/coroutine_api_server", "--workers", "2")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def url(self, path):
        return self.server.url(path)

    async def stats(self, path):
        async with websockets.connect(self.url("/stats")) as ws:
            await ws.send(path)
            return json.loads(await recv(ws))

    async def next_ending(self, path, before):
        """Waits (round trips to /stats, bounded in count) until `path` recorded one more ending and
        has no connection left; returns that ending."""
        for _ in range(500):
            s = await self.stats(path)
            if len(s["endings"]) > before and s["connections"] == 0:
                self.assertEqual(len(s["endings"]), before + 1, s["endings"])
                return s["endings"][-1]
        self.fail(f"{path} never ended: {s}")

    async def endings_so_far(self, path):
        return len((await self.stats(path))["endings"])

    def log_lines(self, needle):
        return [line for line in self.server.stderr().splitlines() if needle in line]

    async def test_client_close_ends_both_sides_as_a_quiet_disconnect(self):
        before = await self.endings_so_far("/ticks")
        logged_before = len(self.log_lines("/ticks "))
        async with websockets.connect(self.url("/ticks")) as ws:
            self.assertEqual(await recv(ws), "tick 1")
            await ws.send("ping")
            self.assertIn("pong", [await recv(ws) for _ in range(3)])
            await ws.close(1000)
        self.assertEqual(ws.close_code, 1000)
        self.assertEqual(await self.next_ending("/ticks", before), "disconnect 1000")
        self.assertEqual(self.log_lines("/ticks ")[logged_before:], [])

    async def test_tcp_drop_ends_both_sides_as_a_disconnect(self):
        before = await self.endings_so_far("/ticks")
        logged_before = len(self.log_lines("/ticks "))
        raw, response = harness.raw_connect(self.server.port, "/ticks")
        self.assertIn(b"101 Switching Protocols", response)
        raw.recv(64)  # the first tick: both sides are running
        drop(raw)
        self.assertEqual(await self.next_ending("/ticks", before), "disconnect 1006")
        self.assertEqual(self.log_lines("/ticks ")[logged_before:], [])

    async def test_ticker_returning_cancels_a_pending_receive_text(self):
        # The reader waits in receive_text() for a message that never comes; only the cancellation
        # ends it, and only then does the handler return and the server close with 1000.
        before = await self.endings_so_far("/ticks_three")
        async with websockets.connect(self.url("/ticks_three")) as ws:
            code, messages = await closed_code(ws)
        self.assertEqual(messages, ["tick 1", "tick 2", "tick 3"])
        self.assertEqual(code, 1000)
        self.assertEqual(await self.next_ending("/ticks_three", before), "returned")

    async def test_reader_returning_cancels_the_tickers_timer_wait(self):
        before = await self.endings_so_far("/ticks")
        async with websockets.connect(self.url("/ticks")) as ws:
            self.assertEqual(await recv(ws), "tick 1")
            await ws.send("stop")
            code, messages = await closed_code(ws)
        self.assertEqual(code, 1000)
        self.assertEqual(messages, [f"tick {n}" for n in range(2, 2 + len(messages))])
        self.assertEqual(await self.next_ending("/ticks", before), "returned")

    async def test_receive_with_timeout_returning_ends_the_ticker(self):
        # /ticks_quiet's reader gives up after 300 ms of silence, while the ticker waits on its timer.
        before = await self.endings_so_far("/ticks_quiet")
        started = time.monotonic()
        async with websockets.connect(self.url("/ticks_quiet")) as ws:
            code, messages = await closed_code(ws)
        self.assertEqual(code, 1000)
        self.assertGreaterEqual(len(messages), 2)  # 300 ms of 50 ms ticks
        self.assertEqual(messages, [f"tick {n}" for n in range(1, 1 + len(messages))])
        self.assertGreater(time.monotonic() - started, 0.25)
        self.assertEqual(await self.next_ending("/ticks_quiet", before), "returned")

    async def test_an_error_in_the_ticker_is_logged_once_with_its_own_message(self):
        before = await self.endings_so_far("/ticks_fail")
        async with websockets.connect(self.url("/ticks_fail")) as ws:
            code, messages = await closed_code(ws)
        self.assertEqual(messages, ["tick 1", "tick 2"])
        self.assertEqual(code, 1011)
        self.assertEqual(await self.next_ending("/ticks_fail", before), "error: tick source failed")
        self.assertEqual(self.log_lines("handler for /ticks_fail threw"),
                         ["log: handler for /ticks_fail threw: tick source failed"] * (before + 1))
        self.assertNotIn("multiple exceptions", self.server.stderr())

    async def test_an_error_in_the_reader_is_logged_once_with_its_own_message(self):
        before = await self.endings_so_far("/ticks")
        logged_before = len(self.log_lines("handler for /ticks threw"))
        async with websockets.connect(self.url("/ticks")) as ws:
            self.assertEqual(await recv(ws), "tick 1")
            await ws.send("boom")
            code, _ = await closed_code(ws)
        self.assertEqual(code, 1011)
        self.assertEqual(await self.next_ending("/ticks", before), "error: reader failed on boom")
        self.assertEqual(self.log_lines("handler for /ticks threw")[logged_before:],
                         ["log: handler for /ticks threw: reader failed on boom"])
        self.assertNotIn("multiple exceptions", self.server.stderr())
        # The server serves the next client as before.
        async with websockets.connect(self.url("/ticks")) as ws:
            self.assertEqual(await recv(ws), "tick 1")


if __name__ == "__main__":
    unittest.main()
