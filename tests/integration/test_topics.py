"""Topics over the wire with Python's websockets client: membership and how a connection leaves its
topics however it ends, four workers with publishers on each, a slow subscriber closed by its
endpoint's policy while the others get everything (tests/topics_server), and examples/rooms."""
import asyncio
import json
import socket
import struct
import sys
import time
import unittest
import urllib.error
import urllib.request

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402
import rawws  # noqa: E402

LATE = 5.0  # how long a membership may take to appear or go after the event that changes it


async def recv(ws):
    """The next message, failing the test instead of hanging."""
    return await asyncio.wait_for(ws.recv(), timeout=harness.TIMEOUT)


async def connect(url):
    return await websockets.connect(url, open_timeout=harness.TIMEOUT, max_size=None, max_queue=None,
                                    ping_interval=None)


class TopicsServer(unittest.IsolatedAsyncioTestCase):
    """tests/topics_server with four workers."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("tests/topics_server", "--workers", "4")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    async def asyncSetUp(self):
        self.stats_ws = await connect(self.server.url("/stats"))

    async def asyncTearDown(self):
        await self.stats_ws.close()
        self.assertNotIn("threw", self.server.stderr())

    async def sizes(self):
        await self.stats_ws.send("?")
        return json.loads(await recv(self.stats_ws))["topics"]

    async def wait_size(self, topic, n):
        """Waits until `topic` has n members; each look is a round trip to the server."""
        deadline = time.monotonic() + LATE
        while (got := (await self.sizes()).get(topic, 0)) != n:
            self.assertLess(time.monotonic(), deadline, f"{topic} has {got} members, not {n}")

    async def subscriber(self, path, *topics):
        """A client in `topics` (through ?topic=), with its id."""
        query = "&".join(f"topic={t}" for t in topics)
        ws = await connect(self.server.url(f"{path}?{query}"))
        ready = await recv(ws)
        self.assertTrue(ready.startswith("ready "), ready)
        return ws, ready[6:]

    async def test_subscribe_unsubscribe_and_topics(self):
        ws, _ = await self.subscriber("/t", "m-a", "m-b")
        await ws.send("topics")
        self.assertEqual(json.loads(await recv(ws)), ["m-a", "m-b"])
        await ws.send("sub m-a")
        self.assertEqual(await recv(ws), "subscribed m-a false")  # already in it
        await ws.send("unsub m-b")
        self.assertEqual(await recv(ws), "unsubscribed m-b true")
        await ws.send("unsub m-b")
        self.assertEqual(await recv(ws), "unsubscribed m-b false")
        await ws.send("topics")
        self.assertEqual(json.loads(await recv(ws)), ["m-a"])
        sizes = await self.sizes()
        self.assertEqual(sizes.get("m-a"), 1)
        self.assertNotIn("m-b", sizes)
        await ws.send("pub m-b nobody hears this")
        await ws.send("pub m-a only m-a")
        self.assertEqual(await recv(ws), "only m-a")
        await ws.close()
        await self.wait_size("m-a", 0)

    async def test_others_leaves_the_publisher_out_and_bytes_stay_bytes(self):
        a, _ = await self.subscriber("/t", "o")
        b, _ = await self.subscriber("/t", "o")
        await a.send("pubo o to the others")
        self.assertEqual(await recv(b), "to the others")
        await a.send("pubb o raw")
        self.assertEqual(await recv(b), b"raw")
        self.assertEqual(await recv(a), b"raw")  # the first message a gets: not its own "others" one
        await a.close()
        await b.close()

    async def test_a_connection_leaves_its_topics_however_it_ends(self):
        async def ends(kind):
            topic = "end-" + kind.replace(" ", "-")
            ws, _ = await self.subscriber("/t", topic, topic + "-2")
            await self.wait_size(topic, 1)
            if kind == "client close":
                await ws.close()
            elif kind == "server close":
                await ws.send("close")
                with self.assertRaises(ConnectionClosed) as closed:
                    await recv(ws)
                self.assertEqual(closed.exception.rcvd.code, 1000)
            elif kind == "tcp drop":
                sock = ws.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                ws.transport.abort()  # a reset: no close frame, no FIN handshake
            await self.wait_size(topic, 0)
            await self.wait_size(topic + "-2", 0)

        for kind in ("client close", "server close", "tcp drop"):
            with self.subTest(kind):
                await ends(kind)

    async def test_subscribed_in_on_connect_gets_its_own_publish_after_the_greeting_first(self):
        ws = await connect(self.server.url("/greet?topic=g"))
        self.assertEqual(await recv(ws), "hello g")  # its own publish in on_connect reaches it...
        self.assertEqual(await recv(ws), "welcome")  # ...queued before the greeting, as a broadcast's
        self.assertTrue((await recv(ws)).startswith("ready "))
        await self.wait_size("g", 1)
        late = await connect(self.server.url("/greet?topic=g"))
        self.assertEqual(await recv(ws), "hello g")  # the newcomer's publish, to a member
        self.assertEqual(await recv(late), "hello g")
        self.assertEqual(await recv(late), "welcome")
        await ws.close()
        await late.close()
        await self.wait_size("g", 0)

    async def test_closed_in_on_connect_never_joins(self):
        ws = await connect(self.server.url("/greet?topic=never&close=1"))
        with self.assertRaises(ConnectionClosed) as closed:
            await recv(ws)
        self.assertEqual(closed.exception.rcvd.code, 1008)
        self.assertNotIn("never", await self.sizes())

    async def test_four_workers_publishers_on_each_every_subscriber_gets_everything_once_in_order(self):
        # Connections go to the workers in turn, so four in a row are on four different workers.
        clients = [(await self.subscriber("/t", "fan"))[0] for _ in range(8)]
        publishers = clients[:4]
        count = 100
        await self.wait_size("fan", 8)

        async def publish(p, ws):
            for i in range(count):
                await ws.send(f"pub fan {p}:{i}")

        async def receive_all(ws):
            next_of = [0] * len(publishers)
            for _ in range(count * len(publishers)):
                p, i = map(int, (await recv(ws)).split(":"))
                self.assertEqual(i, next_of[p], f"publisher {p}: got {i}, expected {next_of[p]}")
                next_of[p] += 1
            return next_of

        receivers = asyncio.gather(*[receive_all(ws) for ws in clients])
        await asyncio.gather(*[publish(p, ws) for p, ws in enumerate(publishers)])
        for got in await asyncio.wait_for(receivers, harness.TIMEOUT * 3):
            self.assertEqual(got, [count] * len(publishers))
        # Nothing more (no duplicate) before a last marker.
        await publishers[0].send("pub fan end")
        for ws in clients:
            self.assertEqual(await recv(ws), "end")
        for ws in clients:
            await ws.close()
        await self.wait_size("fan", 0)

    async def test_a_slow_subscriber_is_closed_by_policy_and_costs_the_others_nothing(self):
        messages, size = 2000, 16 * 1024  # 31 MiB per receiver, far over every buffer on the way
        slow = rawws.Conn(self.server.port, "/small?topic=slow", rcvbuf=4096)
        self.addCleanup(slow.close_socket)
        fast = [(await self.subscriber("/t", "slow"))[0] for _ in range(3)]
        await self.wait_size("slow", 4)
        padding = "x" * size

        async def read_all(ws):
            for i in range(messages):
                got = await recv(ws)
                self.assertTrue(got.startswith(f"{i}:"), f"fast subscriber: message {i} wrong or missing")

        readers = asyncio.gather(*[read_all(ws) for ws in fast[1:]])
        publisher = fast[0]
        for i in range(messages):  # paced: each after its own copy came back, as a chat client is
            await publisher.send(f"pub slow {i}:{padding}")
            self.assertTrue((await recv(publisher)).startswith(f"{i}:"))
        await asyncio.wait_for(readers, harness.TIMEOUT)

        def close_code():
            while True:
                f = slow.recv_frame("the slow subscriber's backlog, then its close frame")
                if f.opcode == rawws.CLOSE:
                    return f.close_code()[0]

        self.assertEqual(await asyncio.get_running_loop().run_in_executor(None, close_code), 1008)
        slow.close_socket()  # a closing connection stays a member until its end: this is its end
        await self.wait_size("slow", 3)
        for ws in fast:
            await ws.close()


class RoomsExample(unittest.IsolatedAsyncioTestCase):
    """examples/rooms, which README's topics section quotes."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("examples/rooms", "--workers", "2")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def rooms_page(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.server.port}/rooms", timeout=harness.TIMEOUT) as r:
            self.assertEqual(r.headers["Content-Type"], "application/json")
            return json.loads(r.read())

    async def wait_rooms(self, expected):
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + LATE
        while (got := await loop.run_in_executor(None, self.rooms_page)) != expected:
            self.assertLess(time.monotonic(), deadline, f"/rooms says {got}, not {expected}")

    async def join(self, room, user):
        ws = await connect(self.server.url(f"/ws?room={room}&user={user}"))
        welcome = json.loads(await recv(ws))
        self.assertEqual(welcome["type"], "welcome")
        self.assertEqual((welcome["room"], welcome["user"]), (room, user))
        return ws, welcome["members"]

    async def test_user_is_required(self):
        with self.assertRaises(InvalidStatusCode) as refused:
            await connect(self.server.url("/ws?room=a"))
        self.assertEqual(refused.exception.status_code, 400)

    async def test_messages_reach_only_their_room_with_join_and_leave_notices(self):
        ann, n = await self.join("north", "ann")
        self.assertEqual(n, 1)
        bob, n = await self.join("north", "bob")
        self.assertEqual(n, 2)
        self.assertEqual(json.loads(await recv(ann)), {"type": "join", "room": "north", "user": "bob", "members": 2})
        cid, _ = await self.join("south", "cid")
        await self.wait_rooms({"north": 2, "south": 1})

        await ann.send(json.dumps({"text": "hi north"}))
        expected = {"type": "message", "room": "north", "user": "ann", "text": "hi north"}
        self.assertEqual(json.loads(await recv(ann)), expected)
        self.assertEqual(json.loads(await recv(bob)), expected)
        await cid.send(json.dumps({"text": "hi south"}))
        # cid's first message is its own: nothing from north reached south.
        self.assertEqual(json.loads(await recv(cid))["text"], "hi south")

        await bob.send(json.dumps({"txt": "typo"}))
        self.assertEqual(json.loads(await recv(bob))["type"], "error")

        await bob.close()
        self.assertEqual(json.loads(await recv(ann)), {"type": "leave", "room": "north", "user": "bob", "members": 1})
        await self.wait_rooms({"north": 1, "south": 1})
        await ann.close()
        await cid.close()
        await self.wait_rooms({})

    async def test_not_json_closes_with_1007(self):
        ws, _ = await self.join("east", "dan")
        await ws.send("not json")
        with self.assertRaises(ConnectionClosed) as closed:
            await recv(ws)
        self.assertEqual(closed.exception.rcvd.code, 1007)


if __name__ == "__main__":
    unittest.main()
