"""The event API over the wire with Python's websockets client:
Robyn's own legacy acceptance flow on examples/events, every snippet of examples/event_snippets, and
tests/servers/event_api_server for close handlers, ordering, binary messages, parameters and DI."""
import asyncio
import socket
import struct
import sys
import unittest

import websockets
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), timeout=harness.TIMEOUT)


async def expect_closed(test, ws, code):
    with test.assertRaises(ConnectionClosed) as closed:
        await recv(ws)
    test.assertEqual(closed.exception.rcvd.code, code)
    return closed.exception.rcvd


class RobynLegacyFlow(unittest.IsolatedAsyncioTestCase):
    """Robyn's own WebSocket test flow, run against build/examples/events."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("examples/events")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    async def test_the_whole_flow(self):
        async with websockets.connect(self.server.url("/web_socket?one=ONE&two=TWO")) as ws:
            self.assertEqual(await recv(ws), "Hello world, from ws")
            await ws.send("first")
            got = {await recv(ws) for _ in range(3)}
            self.assertEqual(got, {"This is a broadcast message", "This is a message to self", "Whaaat??"})
            await ws.send("second")
            self.assertEqual(await recv(ws), "Whooo??")
            await ws.send("third")
            got = {await recv(ws) for _ in range(3)}
            self.assertEqual(got, {"ONE", "TWO", "*chika* *chika* Slim Shady."})
            await ws.send("fourth")
            self.assertEqual(await recv(ws), "Connection closed")
            await expect_closed(self, ws, 1000)

    async def test_the_cycle_is_per_connection_and_broadcast_reaches_others(self):
        async with websockets.connect(self.server.url("/web_socket")) as a, \
                   websockets.connect(self.server.url("/web_socket")) as b:
            self.assertEqual(await recv(a), "Hello world, from ws")
            self.assertEqual(await recv(b), "Hello world, from ws")
            await a.send("1")
            self.assertEqual(len({await recv(a) for _ in range(3)}), 3)
            self.assertEqual(await recv(b), "This is a broadcast message")  # b only sees the broadcast
            await b.send("1")  # b's own cycle starts at its first message
            self.assertEqual({await recv(b) for _ in range(3)},
                             {"This is a broadcast message", "This is a message to self", "Whaaat??"})
            self.assertEqual(await recv(a), "This is a broadcast message")


class EventSnippets(unittest.IsolatedAsyncioTestCase):
    """Each event-API snippet of Robyn's WebSockets guide (examples/event_snippets)."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("examples/event_snippets")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def url(self, path):
        return self.server.url(path)

    async def test_replies_per_event(self):
        async with websockets.connect(self.url("/web_socket")) as ws:
            self.assertEqual(await recv(ws), "Connected to ws")
            await ws.send("x")
            self.assertEqual(await recv(ws), "Hello world, from ws")

    async def test_send_to_self_sync_and_async(self):
        for path in ("/sync_send_to", "/async_send_to"):
            async with websockets.connect(self.url(path)) as ws:
                await ws.send("x")
                self.assertEqual(await recv(ws), "This is a message to self")
                await ws.send("y")  # the empty reply sent nothing: the next message is the next self-send
                self.assertEqual(await recv(ws), "This is a message to self")

    async def test_broadcast_reaches_every_client_of_that_path_only(self):
        for path in ("/sync_broadcast", "/async_broadcast"):
            async with websockets.connect(self.url(path)) as a, websockets.connect(self.url(path)) as b, \
                       websockets.connect(self.url("/async_send_to")) as elsewhere:
                await b.send("sync")  # b is registered once it got an answer to its own message
                self.assertEqual(await recv(b), "This is a message to self")
                self.assertEqual(await recv(a), "This is a message to self")
                await a.send("go")
                self.assertEqual(await recv(a), "This is a message to self")
                self.assertEqual(await recv(b), "This is a message to self")
                await elsewhere.send("mine")  # its first message is its own answer, not a's broadcast
                self.assertEqual(await recv(elsewhere), "This is a message to self")

    async def test_gordon_query_check(self):
        async with websockets.connect(self.url("/query?name=gordon&desg=commissioner")) as gordon:
            await gordon.send("x")
            self.assertEqual(await recv(gordon), "Gordon authorized to login!")
        async with websockets.connect(self.url("/query?name=joker&desg=commissioner")) as joker:
            await joker.send("x")
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(joker.recv(), timeout=0.3)

    async def test_close_on_disconnect(self):
        async with websockets.connect(self.url("/close")) as ws:
            await ws.send("hello")
            self.assertEqual(await recv(ws), "Message received")
            await ws.send("disconnect")
            self.assertEqual(await recv(ws), "Closing connection")
            await expect_closed(self, ws, 1000)


class EventApiServer(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("tests/event_api_server")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def url(self, path):
        return self.server.url(path)

    async def close_calls(self):
        async with websockets.connect(self.url("/stats")) as ws:
            await ws.send("?")
            return int(await recv(ws))

    async def wait_close_calls(self, expected):
        for _ in range(500):
            n = await self.close_calls()
            if n >= expected:
                return n
        return n

    async def test_close_handler_runs_once_for_client_close_server_close_and_drop(self):
        before = await self.close_calls()
        async with websockets.connect(self.url("/counted")) as ws:  # client close
            await ws.send("x")
            self.assertEqual(await recv(ws), "ok")
        self.assertEqual(await self.wait_close_calls(before + 1), before + 1)
        async with websockets.connect(self.url("/counted")) as ws:  # server close
            await ws.send("bye")
            self.assertEqual(await recv(ws), "ok")
            await expect_closed(self, ws, 1000)
        self.assertEqual(await self.wait_close_calls(before + 2), before + 2)
        raw, response = harness.raw_connect(self.server.port, "/counted")  # abrupt drop
        self.assertIn(b"101", response)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()
        self.assertEqual(await self.wait_close_calls(before + 3), before + 3)
        self.assertEqual(await self.close_calls(), before + 3)  # and never again

    async def test_slow_handler_delays_only_its_own_connection_in_order(self):
        async with websockets.connect(self.url("/slow")) as slow, websockets.connect(self.url("/slow")) as fast:
            await slow.send("slow 1")
            await slow.send("quick 2")
            await fast.send("quick")
            self.assertEqual(await recv(fast), "done quick")  # while slow 1 is still being handled
            self.assertEqual([await recv(slow), await recv(slow)], ["done slow 1", "done quick 2"])

    async def test_binary_to_a_text_handler_closes_1003_and_bytes_handlers_take_it(self):
        async with websockets.connect(self.url("/text_only")) as ws:
            await ws.send("a")
            self.assertEqual(await recv(ws), "text a")
            await ws.send(b"\x00\x01")
            await expect_closed(self, ws, 1003)
        async with websockets.connect(self.url("/bytes")) as ws:
            await ws.send(b"\x00\x01\xff")
            self.assertEqual(await recv(ws), "bytes 3")
            await ws.send("four")
            self.assertEqual(await recv(ws), "bytes 4")

    async def test_typed_parameters_and_dependencies_in_event_handlers(self):
        async with websockets.connect(self.url("/typed?user=bruce&times=3")) as ws:
            self.assertEqual(await recv(ws), "hi bruce")
            await ws.send("ab")
            self.assertEqual(await recv(ws), "ababab 1")
        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as failed:
            await websockets.connect(self.url("/typed?times=3"))
        self.assertEqual(failed.exception.status_code, 400)

    async def test_send_to_unknown_id_is_reported(self):
        async with websockets.connect(self.url("/send_to")) as ws:
            await ws.send("00000000-0000-4000-8000-000000000000")
            self.assertEqual(await recv(ws), "unknown id")
            await ws.send("me")
            first, second = await recv(ws), await recv(ws)
            self.assertTrue(first.startswith("for "))
            self.assertEqual(second, "delivered")

    async def test_both_apis_in_one_app(self):
        async with websockets.connect(self.url("/coroutine")) as ws:
            self.assertEqual(await recv(ws), "coroutine endpoint")


if __name__ == "__main__":
    unittest.main(verbosity=2)
