"""The coroutine API over the wire, with Python's websockets
client: lifecycle, echo, JSON, broadcast, send_to, close codes, disconnects, query and headers."""
import asyncio
import json
import socket
import struct
import sys
import unittest

import websockets
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402
import rawws  # noqa: E402


class CoroutineApi(unittest.IsolatedAsyncioTestCase):
    # Four workers whatever the machine: broadcast and send_to cross worker threads (and the
    # ThreadSanitizer build checks them for races).
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("tests/coroutine_api_server", "--workers", "4")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def url(self, path):
        return self.server.url(path)

    async def stats(self, path):
        async with websockets.connect(self.url("/stats")) as ws:
            await ws.send(path)
            return json.loads(await ws.recv())

    async def eventually(self, path, predicate):
        """Asks /stats until predicate(stats) holds; each question is a round trip, bounded in count."""
        for _ in range(500):
            s = await self.stats(path)
            if predicate(s):
                return s
        self.fail(f"condition never held for {path}: {s}")

    async def test_greeting_first_then_echo_and_farewell_last(self):
        async with websockets.connect(self.url("/greet")) as ws:
            greeting = await ws.recv()
            self.assertTrue(greeting.startswith("welcome "))
            await ws.send("hello")
            self.assertEqual(await ws.recv(), "hello")
            await ws.send("close")  # the handler returns: the server closes with 1000
            self.assertEqual(await ws.recv(), "goodbye")  # on_close text, the final message
            with self.assertRaises(ConnectionClosed) as closed:
                await ws.recv()
            self.assertEqual(closed.exception.rcvd.code, 1000)

    async def test_ids_are_uuid_v4_and_distinct(self):
        ids = []
        for _ in range(3):
            async with websockets.connect(self.url("/greet")) as ws:
                ids.append((await ws.recv()).split()[1])
        self.assertEqual(len(set(ids)), 3)
        for i in ids:
            parts = i.split("-")
            self.assertEqual([len(p) for p in parts], [8, 4, 4, 4, 12])
            self.assertEqual(parts[2][0], "4")
            self.assertIn(parts[3][0], "89ab")

    async def test_empty_on_connect_text_sends_nothing(self):
        async with websockets.connect(self.url("/echo")) as ws:
            await ws.send("first")
            self.assertEqual(await ws.recv(), "first")

    async def test_json_round_trip(self):
        async with websockets.connect(self.url("/json")) as ws:
            await ws.send(json.dumps({"n": [1, 2.5, None, True], "s": "é\"\\\n"}))
            reply = json.loads(await ws.recv())
            self.assertEqual(reply["resp"], "Whooo??")
            self.assertEqual(reply["msg"], {"n": [1, 2.5, None, True], "s": "é\"\\\n"})
            self.assertEqual(len(reply["ws_id"]), 36)

    async def test_invalid_json_closes_with_1007(self):
        async with websockets.connect(self.url("/json")) as ws:
            await ws.send("{not json")
            with self.assertRaises(ConnectionClosed) as closed:
                await ws.recv()
            self.assertEqual(closed.exception.rcvd.code, 1007)

    async def test_handler_return_closes_with_1000(self):
        async with websockets.connect(self.url("/once")) as ws:
            await ws.send("x")
            self.assertEqual(await ws.recv(), "got x")
            with self.assertRaises(ConnectionClosed) as closed:
                await ws.recv()
            self.assertEqual(closed.exception.rcvd.code, 1000)

    async def test_handler_exception_closes_with_1011_and_others_are_served(self):
        async with websockets.connect(self.url("/echo")) as bystander:
            async with websockets.connect(self.url("/throw")) as ws:
                await ws.send("boom")
                with self.assertRaises(ConnectionClosed) as closed:
                    await ws.recv()
                self.assertEqual(closed.exception.rcvd.code, 1011)
            await bystander.send("still here")
            self.assertEqual(await bystander.recv(), "still here")

    async def test_client_close_reaches_handler_with_its_code_and_on_close_runs_once(self):
        before = (await self.stats("/echo"))["on_close_calls"]
        async with websockets.connect(self.url("/echo")) as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(4002, "done here")
        self.assertEqual(ws.close_code, 4002)
        s = await self.eventually("/echo", lambda s: s["last_disconnect"] == "4002 done here" and s["connections"] == 0)
        self.assertEqual(s["on_close_calls"], before + 1)

    async def test_abrupt_drop_runs_on_close_once_and_leaves_the_registry(self):
        before = (await self.stats("/room"))["on_close_calls"]
        raw, response = harness.raw_connect(self.server.port, "/room")
        self.assertIn(b"101 Switching Protocols", response)
        await self.eventually("/room", lambda s: s["connections"] == 1)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()  # RST, no close frame
        s = await self.eventually("/room", lambda s: s["connections"] == 0)
        self.assertEqual(s["on_close_calls"], before + 1)
        # A broadcast afterwards reaches the living and does not fail on the dead.
        async with websockets.connect(self.url("/room")) as ws:
            await ws.send("all:after the drop")
            self.assertEqual(await ws.recv(), "after the drop")

    async def test_broadcast_reaches_every_client_in_order(self):
        clients = [await websockets.connect(self.url("/room")) for _ in range(3)]
        try:
            await self.eventually("/room", lambda s: s["connections"] == 3)
            for i in range(20):
                await clients[0].send(f"all:m{i}")
            for c in clients:
                self.assertEqual([await c.recv() for _ in range(20)], [f"m{i}" for i in range(20)])
            # Concurrent senders (possibly on different worker threads): every receiver gets every
            # message, and each sender's messages in the order it sent them.
            for i in range(30):
                await clients[i % 3].send(f"all:s{i % 3}-{i}")
            for c in clients:
                got = [await c.recv() for _ in range(30)]
                self.assertEqual(sorted(got), sorted(f"s{i % 3}-{i}" for i in range(30)))
                for sender in range(3):
                    mine = [m for m in got if m.startswith(f"s{sender}-")]
                    self.assertEqual(mine, [f"s{sender}-{i}" for i in range(sender, 30, 3)])
            await clients[0].send("bytes:raw")
            for c in clients:
                self.assertEqual(await c.recv(), b"raw")
        finally:
            for c in clients:
                await c.close()

    async def test_broadcast_to_others_excludes_the_sender(self):
        a = await websockets.connect(self.url("/room"))
        b = await websockets.connect(self.url("/room"))
        try:
            await self.eventually("/room", lambda s: s["connections"] == 2)
            await a.send("others:not for a")
            self.assertEqual(await b.recv(), "not for a")
            await a.send("all:for both")
            self.assertEqual(await a.recv(), "for both")  # a's first message: it never got "not for a"
        finally:
            await a.close()
            await b.close()

    async def test_send_to_reaches_exactly_one(self):
        a, b, c = [await websockets.connect(self.url("/room")) for _ in range(3)]
        try:
            await b.send("id")
            b_id = await b.recv()
            await a.send(f"to:{b_id}:psst")
            self.assertEqual(await a.recv(), "sent")
            self.assertEqual(await b.recv(), "psst")
            await a.send("to:00000000-0000-4000-8000-000000000000:lost")
            self.assertEqual(await a.recv(), "unknown")
            await c.send("id")  # c's first message is the answer to its own question: it got nothing else
            self.assertEqual(len(await c.recv()), 36)
        finally:
            for ws in (a, b, c):
                await ws.close()

    async def test_query_params_headers_client_and_path(self):
        url = self.url("/inspect?room=first&name=J%C3%BCrgen+M&room=last&flag&sp=a%20b")
        async with websockets.connect(url, extra_headers={"X-API-Key": "k123"}, user_agent_header="tester/1") as ws:
            info = json.loads(await ws.recv())
        self.assertEqual(info["query"]["room"], ["first", "last"])
        self.assertEqual(info["query"]["name"], ["Jürgen M"])
        self.assertEqual(info["query"]["sp"], ["a b"])
        self.assertEqual(info["query"]["flag"], [""])
        self.assertEqual(info["room_last"], "last")
        self.assertEqual(info["room_first"], "first")
        self.assertEqual(info["headers"]["X-Api-Key"], "k123")
        self.assertEqual(info["headers"]["user-agent"], "tester/1")
        self.assertEqual(info["ip"], "127.0.0.1")
        self.assertGreater(info["port"], 0)
        self.assertEqual(info["path"], "/inspect")

    async def test_receive_with_deadline(self):
        async with websockets.connect(self.url("/deadline")) as ws:
            self.assertEqual(await ws.recv(), "timeout")
            await ws.send("hi")
            reply = await ws.recv()
            while reply == "timeout":  # a deadline may have passed just before "hi" arrived
                reply = await ws.recv()
            self.assertEqual(reply, "got hi")

    async def test_json_forms_typed_fields(self):
        """/json_forms: send_json(key, value, ...) with doc.get<T> and get_or, as the client reads them."""
        message = {"n": 42, "big": 5000000000, "ratio": 0.25, "ok": True, "name": "Zoë \"z\"",
                   "player": {"score": 7, "tags": ["fast", "new"]}}
        async with websockets.connect(self.url("/json_forms")) as ws:
            await ws.send(json.dumps(message))
            reply = json.loads(await self.next_json_reply(ws))
            self.assertEqual(reply, {"type": "fields", "n": 42, "big": 5000000000, "ratio": 0.25, "ok": True,
                                     "name": "Zoë \"z\"", "score": 7, "first_tag": "fast", "echo": message})

            # Missing or of another type: null (get<T>), or the fallback (get_or); never a failure.
            wrong = {"n": "42", "big": 1.5, "ratio": "x", "ok": 1, "name": 3, "player": {"score": 2.5, "tags": []}}
            await ws.send(json.dumps(wrong))
            reply = json.loads(await self.next_json_reply(ws))
            self.assertEqual(reply, {"type": "fields", "n": None, "big": None, "ratio": None, "ok": None,
                                     "name": "anonymous", "score": None, "first_tag": None, "echo": wrong})
            await ws.send("{}")
            reply = json.loads(await self.next_json_reply(ws))
            self.assertEqual(reply["name"], "anonymous")
            self.assertIsNone(reply["n"])
            # Out of int's range, though an integer: null too.
            await ws.send(json.dumps({"n": 2 ** 40}))
            self.assertIsNone(json.loads(await self.next_json_reply(ws))["n"])

    async def test_json_forms_escaping_round_trip(self):
        """Quotes, backslashes, control characters and UTF-8 through the builder come back unchanged."""
        text = "quote \" backslash \\ newline \n tab \t nul \x00 bell \x07 unit \x1f é € 🐦"
        async with websockets.connect(self.url("/json_forms")) as ws:
            await ws.send(json.dumps({"text": text}))
            raw = await self.next_json_reply(ws)
            self.assertNotIn("\x00", raw)  # control characters travel escaped
            self.assertIn("é € 🐦", raw)  # UTF-8 as it is, not as \u escapes
            self.assertEqual(json.loads(raw), {"type": "text", "text": text, "length": len(text.encode())})

    async def test_json_forms_receive_with_deadline(self):
        async with websockets.connect(self.url("/json_forms")) as ws:
            self.assertEqual(json.loads(await ws.recv()), {"type": "timeout"})
            await ws.send(json.dumps({"n": 1}))
            self.assertEqual(json.loads(await self.next_json_reply(ws))["n"], 1)

    async def test_json_forms_invalid_json_closes_with_1007(self):
        async with websockets.connect(self.url("/json_forms")) as ws:
            await ws.send("{not json")
            with self.assertRaises(ConnectionClosed) as closed:
                while True:  # timeouts may come first
                    await ws.recv()
            self.assertEqual(closed.exception.rcvd.code, 1007)

    @staticmethod
    async def next_json_reply(ws):
        """The next message that is not a timeout: a deadline may pass just before a message arrives."""
        while True:
            raw = await ws.recv()
            if json.loads(raw) != {"type": "timeout"}:
                return raw

    async def test_server_close_with_code_and_reason(self):
        async with websockets.connect(self.url("/quit")) as ws:
            await ws.send("a")
            self.assertEqual(await ws.recv(), "Got: a")
            await ws.send("quit")
            with self.assertRaises(ConnectionClosed) as closed:
                await ws.recv()
            self.assertEqual(closed.exception.rcvd.code, 4001)
            self.assertEqual(closed.exception.rcvd.reason, "bye now")

    async def test_ping_is_answered(self):
        async with websockets.connect(self.url("/echo")) as ws:
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, timeout=harness.TIMEOUT)

    async def test_unknown_path_is_404(self):
        with self.assertRaises(websockets.exceptions.InvalidStatusCode) as failed:
            await websockets.connect(self.url("/nowhere"))
        self.assertEqual(failed.exception.status_code, 404)


class HttpPages(unittest.TestCase):
    """app.get(): plain HTTP answers on the WebSocket port (coroutine_api_server's /page, /hello,
    /broken, and /echo, which is also a WebSocket endpoint)."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("tests/coroutine_api_server")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def request(self, method, target, headers=""):
        """One request on its own connection; the server answers and closes. Returns (status,
        headers, body)."""
        return rawws.http_answer(self.server.port,
                                 f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())

    def test_fixed_page(self):
        status, headers, body = self.request("GET", "/page")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], ["text/html; charset=utf-8"])
        self.assertEqual(headers["content-length"], ["12"])
        self.assertEqual(body, b"<p>hello</p>")

    def test_page_built_per_request_sees_the_target(self):
        status, _, body = self.request("GET", "/hello?name=starling")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"you asked for /hello?name=starling")

    def test_head_has_the_headers_without_the_body(self):
        status, headers, body = self.request("HEAD", "/page")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-length"], ["12"])
        self.assertEqual(body, b"")

    def test_other_methods_get_405_with_allow(self):
        status, headers, _ = self.request("POST", "/page", "Content-Length: 0\r\n")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], ["GET, HEAD"])

    def test_a_throwing_page_is_a_500_and_the_server_lives(self):
        status, _, body = self.request("GET", "/broken")
        self.assertEqual(status, 500)
        self.assertEqual(self.request("GET", "/page")[0], 200)

    def test_unknown_path_is_404(self):
        self.assertEqual(self.request("GET", "/nowhere")[0], 404)

    def test_a_shared_path_serves_the_page_and_upgrades_websockets(self):
        status, _, body = self.request("GET", "/echo")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"the echo endpoint speaks WebSocket")

        async def upgrade():
            async with websockets.connect(self.server.url("/echo")) as ws:
                await ws.send("still a websocket")
                return await asyncio.wait_for(ws.recv(), harness.TIMEOUT)

        self.assertEqual(harness.run(upgrade()), "still a websocket")


class EchoExample(unittest.IsolatedAsyncioTestCase):
    """build/examples/echo, as Robyn's acceptance tests use an echo endpoint."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("examples/echo")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    async def test_text_and_binary_byte_exact_at_length_boundaries(self):
        async with websockets.connect(self.server.url("/echo"), max_size=None) as ws:
            for size in (0, 1, 125, 126, 127, 65535, 65536, 131072):
                text = ("é" * size)[: size // 2] + "a" * (size - 2 * (size // 2))  # multi-byte text
                await ws.send(text)
                self.assertEqual(await ws.recv(), text)
                data = bytes((i * 7 + 3) % 256 for i in range(size))
                await ws.send(data)
                echoed = await ws.recv()
                self.assertIsInstance(echoed, bytes)
                self.assertEqual(echoed, data)

    async def test_non_utf8_binary_comes_back_as_binary(self):
        async with websockets.connect(self.server.url("/echo")) as ws:
            await ws.send(b"\xff\xfe\x00\xc0")
            self.assertEqual(await ws.recv(), b"\xff\xfe\x00\xc0")

    async def test_fragmented_message_is_reassembled(self):
        async with websockets.connect(self.server.url("/echo")) as ws:
            await ws.send(["frag", "men", "ted"])
            self.assertEqual(await ws.recv(), "fragmented")

    async def test_200_concurrent_clients(self):
        async def one(i):
            async with websockets.connect(self.server.url("/echo")) as ws:
                for j in range(5):
                    await ws.send(f"client {i} message {j}")
                    self.assertEqual(await ws.recv(), f"client {i} message {j}")
        await asyncio.gather(*(one(i) for i in range(200)))

    async def test_port_zero_printed_the_real_port(self):
        self.assertGreater(self.server.port, 0)


class ChatExample(unittest.IsolatedAsyncioTestCase):
    """build/examples/chat --workers 4: every message to every client, sender included, type kept, no
    greeting; the clients land on different workers."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("examples/chat", "--workers", "4")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    async def test_broadcast_keeps_type_and_reaches_the_sender(self):
        clients = [await websockets.connect(self.server.url("/chat")) for _ in range(3)]
        try:
            # No greeting: each client's first message is its own "ready" broadcast coming back. Once
            # every client has seen its own, all three are registered.
            for i, c in enumerate(clients):
                await c.send(f"ready {i}")
                while await asyncio.wait_for(c.recv(), harness.TIMEOUT) != f"ready {i}":
                    pass
            await clients[1].send("hello, text")
            await clients[2].send(b"\x00\xffbinary")
            for c in clients:
                got = []
                while len(got) < 2:  # skip the other clients' "ready" messages still queued
                    m = await asyncio.wait_for(c.recv(), harness.TIMEOUT)
                    if not (isinstance(m, str) and m.startswith("ready ")):
                        got.append(m)
                self.assertEqual(sorted(got, key=repr), sorted(["hello, text", b"\x00\xffbinary"], key=repr))
        finally:
            for c in clients:
                await c.close()

    async def test_every_client_gets_every_senders_messages_in_order_across_workers(self):
        clients = [await websockets.connect(self.server.url("/chat"), max_queue=None) for _ in range(8)]
        try:
            for i, c in enumerate(clients):
                await c.send(f"ready {i}")
                while await asyncio.wait_for(c.recv(), harness.TIMEOUT) != f"ready {i}":
                    pass
            per_sender = 25

            async def send_all(i, c):  # each client's messages in order; all clients at once
                for n in range(per_sender):
                    await c.send(f"{i}:{n}")

            await asyncio.gather(*[send_all(i, c) for i, c in enumerate(clients)])
            for c in clients:
                seen = {i: [] for i in range(len(clients))}
                while sum(map(len, seen.values())) < len(clients) * per_sender:
                    m = await asyncio.wait_for(c.recv(), harness.TIMEOUT)
                    if m.startswith("ready "):
                        continue
                    sender, n = map(int, m.split(":"))
                    seen[sender].append(n)
                for sender, numbers in seen.items():
                    self.assertEqual(numbers, list(range(per_sender)), f"messages of client {sender} out of order")
        finally:
            for c in clients:
                await c.close()



class ScoreboardExample(unittest.IsolatedAsyncioTestCase):
    """build/examples/scoreboard, README's walk-through: JSON fields read and written, a coroutine
    on_connect that closes, a coroutine on_close that broadcasts, and the disconnect's code and reason
    as the handler sees them."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("examples/scoreboard", "--workers", "2")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    async def recv(self, ws):
        return await asyncio.wait_for(ws.recv(), harness.TIMEOUT)

    async def join(self, name):
        """A member: greeted, and its first score has come back through the broadcast."""
        ws = await websockets.connect(self.server.url(f"/scores?player={name}"))
        self.assertEqual(await self.recv(ws), f"welcome, {name}")
        return ws

    async def test_on_connect_that_closes_sends_nothing_else(self):
        async with websockets.connect(self.server.url("/scores")) as ws:
            with self.assertRaises(ConnectionClosed) as closed:
                self.fail(f"got a message: {await self.recv(ws)!r}")
            self.assertEqual(closed.exception.rcvd.code, 1008)
            self.assertEqual(closed.exception.rcvd.reason, "player missing")

    async def test_scores_joins_departures_and_the_close_code_seen_by_the_handler(self):
        ann = await self.join("ann")
        try:
            await ann.send(json.dumps({"points": 1}))  # once it comes back, ann is a member
            self.assertEqual(json.loads(await self.recv(ann)), {"player": "ann", "points": 1, "total": 1})
            self.assertEqual(await self.recv(ann), "keep going")
            bob = await self.join("bob")
            self.assertEqual(await self.recv(ann), "bob joined")
            await bob.send(json.dumps({"points": 99}))
            update = {"player": "bob", "points": 99, "total": 99}
            self.assertEqual(json.loads(await self.recv(bob)), update)
            self.assertEqual(json.loads(await self.recv(ann)), update)
            self.assertEqual(await self.recv(bob), "keep going")
            await bob.send(json.dumps({"points": "many"}))
            self.assertEqual(await self.recv(bob), "points must be an integer")
            await bob.send(json.dumps({"points": 1}))
            self.assertEqual(json.loads(await self.recv(bob))["total"], 100)
            self.assertEqual(await self.recv(bob), "bob wins")
            self.assertEqual(json.loads(await self.recv(ann))["total"], 100)
            await bob.close(code=4000, reason="done for today")
            self.assertEqual(await self.recv(ann), "bob left")
            await ann.send("not json")
            with self.assertRaises(ConnectionClosed) as closed:
                self.fail(f"got a message: {await self.recv(ann)!r}")
            self.assertEqual(closed.exception.rcvd.code, 1007)
        finally:
            await ann.close()
        self.assertIn("bob left: 4000 done for today", self.server.stderr())


if __name__ == "__main__":
    unittest.main(verbosity=2)
