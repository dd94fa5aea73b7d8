"""The example programs that translate the Python snippets of Robyn's WebSockets guide (examples/*.cpp)
over the wire, with Python's websockets client: exact messages and their order,
broadcasts reaching the other clients, close codes, the query / header / IP checks.

Synchronisation without sleeps: a client is known to be in its endpoint's broadcast registry once its
handler has answered one of its messages (the handler starts only after registration), so tests make
every client talk once before relying on it receiving broadcasts."""
import asyncio
import json
import re
import signal
import sys
import time
import unittest
from contextlib import AsyncExitStack

import websockets
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


async def recv(ws):
    """The next message, failing the test instead of hanging."""
    return await asyncio.wait_for(ws.recv(), timeout=harness.TIMEOUT)


class ExampleTest(unittest.IsolatedAsyncioTestCase):
    """One server process per class: PROGRAM is the example's name under build/examples."""

    PROGRAM = None

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("examples/" + cls.PROGRAM)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    async def asyncSetUp(self):
        self.clients = AsyncExitStack()
        await self.clients.__aenter__()

    async def asyncTearDown(self):
        await self.clients.aclose()

    async def connect(self, path, **kwargs):
        """A client closed at the end of the test."""
        return await self.clients.enter_async_context(websockets.connect(self.server.url(path), **kwargs))

    async def assert_closed(self, ws, code, reason=None):
        """The server closes `ws` with `code` (and `reason`) before sending anything else."""
        with self.assertRaises(ConnectionClosed) as closed:
            message = await recv(ws)
            self.fail(f"expected a close with {code}, got the message {message!r}")
        self.assertIsNotNone(closed.exception.rcvd, "no close frame received")
        self.assertEqual(closed.exception.rcvd.code, code)
        if reason is not None:
            self.assertEqual(closed.exception.rcvd.reason, reason)


# ---- echo_with_id: /web_socket ------------------------------------------------------------------------

class EchoWithId(ExampleTest):
    PROGRAM = "echo_with_id"

    async def greeted(self):
        ws = await self.connect("/web_socket")
        # on_connect's own send comes first, its returned text second.
        self.assertEqual(await recv(ws), "Connected!")
        self.assertEqual(await recv(ws), "Connection established")
        return ws

    async def test_greeting_in_order_then_echo_with_own_id(self):
        ws = await self.greeted()
        await ws.send("hello")
        first = await recv(ws)
        match = re.fullmatch(r"Echo from (\S+): hello", first)
        self.assertIsNotNone(match, first)
        self.assertRegex(match.group(1), UUID)
        await ws.send("again, with: colons")
        self.assertEqual(await recv(ws), f"Echo from {match.group(1)}: again, with: colons")

    async def test_each_connection_has_its_own_id(self):
        ids = set()
        for _ in range(3):
            ws = await self.greeted()
            await ws.send("x")
            ids.add((await recv(ws)).split()[2].rstrip(":"))
        self.assertEqual(len(ids), 3)

    async def test_binary_message_ends_with_disconnected_and_1003(self):
        # receive_text() meets a binary message: the server closes (1003), so on_close's text goes out.
        ws = await self.greeted()
        await ws.send(b"\x00\x01")
        self.assertEqual(await recv(ws), "Disconnected")
        await self.assert_closed(ws, 1003)


class EchoWithIdShutdown(unittest.IsolatedAsyncioTestCase):
    async def test_server_shutdown_sends_disconnected_then_1001(self):
        server = harness.Server("examples/echo_with_id")
        try:
            async with websockets.connect(server.url("/web_socket")) as ws:
                self.assertEqual(await recv(ws), "Connected!")
                self.assertEqual(await recv(ws), "Connection established")
                await ws.send("x")
                ws_id = (await recv(ws)).split()[2].rstrip(":")
                server.process.send_signal(signal.SIGTERM)  # graceful stop; the client answers the close
                self.assertEqual(await recv(ws), "Disconnected")
                with self.assertRaises(ConnectionClosed) as closed:
                    await recv(ws)
                self.assertEqual(closed.exception.rcvd.code, 1001)
        finally:
            status = server.stop()
        self.assertEqual(status, 0)
        log = server.stderr()
        self.assertIn(f"WebSocket {ws_id} disconnected", log)


# ---- welcome_chat: /chat --------------------------------------------------------------------------

class WelcomeChat(ExampleTest):
    PROGRAM = "welcome_chat"

    async def joined(self):
        ws = await self.connect("/chat")
        welcome = await recv(ws)
        match = re.fullmatch(r"Welcome, (\S+)!", welcome)
        self.assertIsNotNone(match, welcome)
        self.assertRegex(match.group(1), UUID)
        return ws

    async def test_welcome_then_broadcast_reaches_everyone_including_sender(self):
        a = await self.joined()
        b = await self.joined()  # b got its welcome: it is registered for broadcasts
        await a.send("hello all")
        self.assertEqual(await recv(a), "hello all")
        self.assertEqual(await recv(b), "hello all")
        await b.send("hi back")
        self.assertEqual(await recv(a), "hi back")
        self.assertEqual(await recv(b), "hi back")

    async def test_goodbye_when_the_server_closes(self):
        ws = await self.joined()
        await ws.send(b"binary")  # refused by receive_text(): the server closes with 1003
        self.assertEqual(await recv(ws), "Goodbye!")
        await self.assert_closed(ws, 1003)


# ---- broadcast_chat: /chat and /chat2 -----------------------------------------------------------------

class BroadcastChat(ExampleTest):
    PROGRAM = "broadcast_chat"

    async def test_chat_broadcast_then_confirmation_to_sender_only(self):
        a = await self.connect("/chat")
        await a.send("a here")
        a_line = await recv(a)
        a_id = re.fullmatch(r"User (\S+): a here", a_line).group(1)
        self.assertRegex(a_id, UUID)
        self.assertEqual(await recv(a), "Your message was sent")

        b = await self.connect("/chat")
        await b.send("b here")
        b_line = await recv(b)
        b_id = re.fullmatch(r"User (\S+): b here", b_line).group(1)
        self.assertNotEqual(a_id, b_id)
        self.assertEqual(await recv(b), "Your message was sent")
        self.assertEqual(await recv(a), b_line)  # the other client gets the broadcast only

        await a.send("hi")
        self.assertEqual(await recv(a), f"User {a_id}: hi")
        self.assertEqual(await recv(a), "Your message was sent")
        self.assertEqual(await recv(b), f"User {a_id}: hi")
        # b got nothing else: its next message is the answer to its own.
        await b.send("next")
        self.assertEqual(await recv(b), f"User {b_id}: next")

    async def test_chat2_you_said_then_broadcast(self):
        a = await self.connect("/chat2")
        await a.send("first")
        self.assertEqual(await recv(a), "You said: first")
        a_id = re.fullmatch(r"User (\S+): first", await recv(a)).group(1)

        b = await self.connect("/chat2")
        await b.send("b")
        self.assertEqual(await recv(b), "You said: b")
        b_line = await recv(b)
        self.assertEqual(await recv(a), b_line)

        await a.send("yo")
        self.assertEqual(await recv(a), "You said: yo")
        self.assertEqual(await recv(a), f"User {a_id}: yo")
        self.assertEqual(await recv(b), f"User {a_id}: yo")

    async def test_broadcasts_stay_on_their_endpoint(self):
        chat = await self.connect("/chat")
        await chat.send("ready")
        await recv(chat)
        await recv(chat)
        chat2 = await self.connect("/chat2")
        await chat2.send("not for /chat")
        self.assertEqual(await recv(chat2), "You said: not for /chat")
        await recv(chat2)
        await chat.send("ping")
        self.assertRegex(await recv(chat), r"^User \S+: ping$")


# ---- json_api: /api/ws ------------------------------------------------------------------------------

class JsonApi(ExampleTest):
    PROGRAM = "json_api"

    async def test_reply_has_id_echo_and_timestamp(self):
        ws = await self.connect("/api/ws")
        sent = {"n": [1, 2.5, None, True], "s": "é\"\\\n", "nested": {"k": []}}
        before = time.time()
        await ws.send(json.dumps(sent))
        reply = json.loads(await recv(ws))
        after = time.time()
        self.assertEqual(set(reply), {"id", "echo", "timestamp"})
        self.assertRegex(reply["id"], UUID)
        self.assertEqual(reply["echo"], sent)
        self.assertIsInstance(reply["timestamp"], (int, float))
        self.assertGreaterEqual(reply["timestamp"], before - 1)
        self.assertLessEqual(reply["timestamp"], after + 1)

        await ws.send("42")  # any JSON value, not only objects
        second = json.loads(await recv(ws))
        self.assertEqual(second["echo"], 42)
        self.assertEqual(second["id"], reply["id"])
        self.assertGreaterEqual(second["timestamp"], reply["timestamp"])

    async def test_invalid_json_closes_with_1007(self):
        ws = await self.connect("/api/ws")
        await ws.send("{not json")
        await self.assert_closed(ws, 1007)


# ---- notifications: /notifications --------------------------------------------------------------------

class Notifications(ExampleTest):
    PROGRAM = "notifications"

    async def test_notification_reaches_all_and_sender_is_confirmed(self):
        a = await self.connect("/notifications")
        await a.send("a online")
        self.assertEqual(await recv(a), "Notification: a online")
        self.assertEqual(await recv(a), "Notification sent!")
        b = await self.connect("/notifications")
        await b.send("b online")
        self.assertEqual(await recv(b), "Notification: b online")
        self.assertEqual(await recv(b), "Notification sent!")
        self.assertEqual(await recv(a), "Notification: b online")

        await a.send("Joker escaped")
        self.assertEqual(await recv(a), "Notification: Joker escaped")
        self.assertEqual(await recv(a), "Notification sent!")
        self.assertEqual(await recv(b), "Notification: Joker escaped")
        await b.send("ack")  # b got no confirmation for a's message
        self.assertEqual(await recv(b), "Notification: ack")


# ---- game: /game --------------------------------------------------------------------------------------

class Game(ExampleTest):
    PROGRAM = "game"

    async def player(self, greeting):
        """A connected player whose chat has gone round once; returns (client, its id)."""
        ws = await self.connect("/game")
        await ws.send(json.dumps({"type": "chat", "message": greeting}))
        event = json.loads(await recv(ws))
        self.assertEqual(event["type"], "chat_message")
        self.assertEqual(event["message"], greeting)
        self.assertRegex(event["player_id"], UUID)
        return ws, event["player_id"]

    async def test_move_and_chat_are_broadcast_as_json_events(self):
        a, a_id = await self.player("a joined")
        b, b_id = await self.player("b joined")
        self.assertEqual(json.loads(await recv(a)),
                         {"type": "chat_message", "player_id": b_id, "message": "b joined"})

        position = {"x": 3, "y": -1.5, "tags": ["run"]}
        await a.send(json.dumps({"type": "move", "position": position}))
        expected = {"type": "player_moved", "player_id": a_id, "position": position}
        self.assertEqual(json.loads(await recv(a)), expected)
        self.assertEqual(json.loads(await recv(b)), expected)

        # An unknown action type is ignored: the next event anyone sees is the following chat.
        await b.send(json.dumps({"type": "dance"}))
        await b.send(json.dumps({"type": "chat", "message": "gg"}))
        expected = {"type": "chat_message", "player_id": b_id, "message": "gg"}
        self.assertEqual(json.loads(await recv(a)), expected)
        self.assertEqual(json.loads(await recv(b)), expected)

    async def test_invalid_json_closes_with_1007(self):
        ws = await self.connect("/game")
        await ws.send("move north")
        await self.assert_closed(ws, 1007)

    async def test_action_without_type_is_a_handler_error_1011(self):
        ws = await self.connect("/game")
        await ws.send(json.dumps({"position": 1}))
        await self.assert_closed(ws, 1011)


# ---- close_on_quit: /ws and /admin_panel --------------------------------------------------------------

class CloseOnQuit(ExampleTest):
    PROGRAM = "close_on_quit"

    async def test_quit_closes_with_1000(self):
        ws = await self.connect("/ws")
        await ws.send("a")
        self.assertEqual(await recv(ws), "Got: a")
        await ws.send("quit now")  # only exactly "quit" quits
        self.assertEqual(await recv(ws), "Got: quit now")
        await ws.send("quit")
        await self.assert_closed(ws, 1000)

    async def test_admin_commands_and_shutdown(self):
        ws = await self.connect("/admin_panel")
        await ws.send("status")
        self.assertEqual(await recv(ws), "Command executed: status")
        await ws.send("shutdown")
        self.assertEqual(await recv(ws), "Shutting down connection...")
        await self.assert_closed(ws, 1000)

    async def test_kick_user_is_broadcast_to_admins(self):
        a = await self.connect("/admin_panel")
        b = await self.connect("/admin_panel")
        for ws in (a, b):
            await ws.send("whoami")
            self.assertEqual(await recv(ws), "Command executed: whoami")
        await a.send("kick_user:joker")
        self.assertEqual(await recv(a), "User joker has been kicked")
        self.assertEqual(await recv(b), "User joker has been kicked")
        await b.send("kick_user:riddler:extra")  # Python's split(":")[1]
        self.assertEqual(await recv(a), "User riddler has been kicked")
        self.assertEqual(await recv(b), "User riddler has been kicked")

    async def test_kick_user_without_id_is_a_handler_error_1011(self):
        ws = await self.connect("/admin_panel")
        await ws.send("kick_user")
        await self.assert_closed(ws, 1011)


# ---- query_and_headers: /ws, /secure_chat, /api/stream ------------------------------------------------

class QueryAndHeaders(ExampleTest):
    PROGRAM = "query_and_headers"

    async def test_gordon_the_commissioner_is_announced_to_everyone(self):
        alfred = await self.connect("/ws?name=alfred")
        await alfred.send("hi")
        self.assertEqual(await recv(alfred), "Hello alfred: hi")
        gordon = await self.connect("/ws?name=gordon&role=commissioner")
        self.assertEqual(await recv(gordon), "Gordon authorized!")  # he is registered, so he hears it
        self.assertEqual(await recv(alfred), "Gordon authorized!")
        await gordon.send("signal")
        self.assertEqual(await recv(gordon), "Hello gordon: signal")

    async def test_other_names_and_roles_are_not_announced(self):
        alfred = await self.connect("/ws?name=alfred")
        await alfred.send("hi")
        self.assertEqual(await recv(alfred), "Hello alfred: hi")
        for query in ("name=gordon&role=detective", "name=bruce&role=commissioner", "role=commissioner"):
            ws = await self.connect("/ws?" + query)
            await ws.send("m")
            name = re.search(r"name=(\w+)", query)
            self.assertEqual(await recv(ws), f"Hello {name.group(1) if name else 'None'}: m")
        await alfred.send("still quiet?")
        self.assertEqual(await recv(alfred), "Hello alfred: still quiet?")

    async def test_secure_chat_valid_token_joins_room_and_broadcasts(self):
        a = await self.connect("/secure_chat?token=gcpd-1939&room=rooftop")
        self.assertEqual(await recv(a), "Joined room: rooftop")
        b = await self.connect("/secure_chat?token=batcave-7&room=cave")
        self.assertEqual(await recv(b), "Joined room: cave")
        await b.send("ready")
        b_line = await recv(b)
        b_id = re.fullmatch(r"Room cave - (\S+): ready", b_line).group(1)
        self.assertRegex(b_id, UUID)
        self.assertEqual(await recv(a), b_line)  # on purpose, every /secure_chat client gets it
        await a.send("the signal is on")
        a_line = await recv(a)
        self.assertRegex(a_line, r"^Room rooftop - \S+: the signal is on$")
        self.assertEqual(await recv(b), a_line)

    async def test_secure_chat_bad_or_missing_token_is_closed_with_1008(self):
        for query in ("?token=forged&room=rooftop", "?room=rooftop", "?token=&room=x", ""):
            ws = await self.connect("/secure_chat" + query)
            await self.assert_closed(ws, 1008, "invalid token")

    async def test_stream_with_valid_api_key(self):
        ws = await self.connect("/api/stream", extra_headers={"x-api-key": "wayne-enterprises-key"},
                                user_agent_header="batcomputer/2")
        first, second = json.loads(await recv(ws)), json.loads(await recv(ws))
        self.assertEqual((first["seq"], second["seq"]), (1, 2))
        self.assertLessEqual(first["time"], second["time"])
        self.assertLess(abs(first["time"] - time.time()), 60)

    async def test_stream_bad_or_missing_api_key_is_closed_with_1008(self):
        for headers in ({"X-API-Key": "wrong"}, {}, {"X-API-Key-Extra": "wayne-enterprises-key"}):
            ws = await self.connect("/api/stream", extra_headers=headers)
            await self.assert_closed(ws, 1008, "invalid API key")


# ---- limited_service: /limited_service ----------------------------------------------------------------

class LimitedService(ExampleTest):
    PROGRAM = "limited_service"

    async def admitted(self, ws, probe):
        """True if `ws` is served, False if it was refused (its message then comes back as the refusal)."""
        try:
            await ws.send(probe)
        except ConnectionClosed:
            pass  # refused already: the refusal message is still there to read
        reply = await recv(ws)
        if reply == "Connection limit exceeded":
            await self.assert_closed(ws, 1008)
            return False
        self.assertEqual(reply, f"Processed: {probe}")
        return True

    async def test_sixth_connection_from_one_ip_is_refused_and_slots_come_back(self):
        first_five = []
        for i in range(5):
            ws = await self.connect("/limited_service")
            self.assertTrue(await self.admitted(ws, f"m{i}"), f"connection {i + 1} refused")
            first_five.append(ws)

        sixth = await self.connect("/limited_service")
        self.assertEqual(await recv(sixth), "Connection limit exceeded")
        await self.assert_closed(sixth, 1008)

        # The five still work.
        for i, ws in enumerate(first_five):
            self.assertTrue(await self.admitted(ws, f"again {i}"))

        # Closing one frees its slot once its handler has ended; each attempt is one round trip.
        await first_five[0].close()
        for attempt in range(200):
            ws = await self.connect("/limited_service")
            if await self.admitted(ws, f"retry {attempt}"):
                break
        else:
            self.fail("the closed connection's slot never came back")
        # And it is one slot, not more.
        seventh = await self.connect("/limited_service")
        self.assertEqual(await recv(seventh), "Connection limit exceeded")
        await self.assert_closed(seventh, 1008)


# ---- keep_alive: /monitored_service and /robust_chat --------------------------------------------------

class KeepAlive(ExampleTest):
    PROGRAM = "keep_alive"

    async def test_monitored_service_processes_messages(self):
        ws = await self.connect("/monitored_service")
        for text in ("x", "second", ""):
            await ws.send(text)
            self.assertEqual(await recv(ws), f"Processed: {text}")

    async def test_robust_chat_echoes(self):
        ws = await self.connect("/robust_chat")
        for text in ("x", "Batman"):
            await ws.send(text)
            self.assertEqual(await recv(ws), f"Echo: {text}")

    async def test_binary_message_closes_with_1003(self):
        for path in ("/monitored_service", "/robust_chat"):
            ws = await self.connect(path)
            await ws.send(b"\x01")
            await self.assert_closed(ws, 1003)


if __name__ == "__main__":
    unittest.main(verbosity=2)
