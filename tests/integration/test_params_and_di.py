"""Typed query parameters, dependency injection and routers over the wire:
the query_params, dependencies, subrouter and di_chat examples, and tests/servers/params_server."""
import json
import sys
import unittest
import urllib.request

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402
import rawws  # noqa: E402


def http_get(port, target):
    """The status, content type and body the server answers to a WebSocket upgrade request."""
    request, _ = rawws.upgrade_request(port, target)
    status, headers, body = rawws.http_answer(port, request)
    return status, headers.get("content-type", [""])[0], body.decode()


class QueryParamsExample(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("examples/query_params")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    async def test_with_query_string(self):
        async with websockets.connect(self.server.url("/ws?room=chat&page=5")) as ws:
            self.assertEqual(await ws.recv(), "connected to chat")
            await ws.send("hi")
            self.assertEqual(await ws.recv(), "room=chat page=5 msg=hi")

    async def test_defaults_without_query_string(self):
        async with websockets.connect(self.server.url("/ws")) as ws:
            self.assertEqual(await ws.recv(), "connected to default")
            await ws.send("hi")
            self.assertEqual(await ws.recv(), "room=default page=1 msg=hi")

    async def test_invalid_page_is_rejected_with_400_before_the_upgrade(self):
        status, content_type, body = http_get(self.server.port, "/ws?room=chat&page=abc")
        self.assertEqual(status, 400)
        self.assertEqual(content_type, "text/plain")
        self.assertEqual(body, "Invalid value 'abc' for parameter 'page': expected integer")
        with self.assertRaises(InvalidStatusCode) as failed:
            await websockets.connect(self.server.url("/ws?page=99999999999"))
        self.assertEqual(failed.exception.status_code, 400)


    async def test_room_that_is_not_utf8_is_rejected_with_400(self):
        # %FF decodes to a byte that is not UTF-8; the message quotes it percent-encoded, as sent.
        for target, quoted in (("/ws?room=%FF", "%FF"), ("/ws?room=caf%E9&page=2", "caf%E9"),
                               ("/ws?room=%E2%82%AC%E2%82", "\u20ac%E2%82")):
            with self.subTest(target=target):
                status, content_type, body = http_get(self.server.port, target)
                self.assertEqual((status, content_type), (400, "text/plain"))
                self.assertEqual(body, f"Invalid value '{quoted}' for parameter 'room': expected UTF-8 text")
        async with websockets.connect(self.server.url("/ws?room=caf%C3%A9")) as ws:
            self.assertEqual(await ws.recv(), "connected to caf\u00e9")


class ParamsServer(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("tests/params_server")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    async def stats(self):
        async with websockets.connect(self.server.url("/stats")) as ws:
            await ws.send("?")
            return json.loads(await ws.recv())

    async def test_missing_required_parameter_runs_nothing_and_registers_nothing(self):
        before = await self.stats()
        status, content_type, body = http_get(self.server.port, "/required")
        self.assertEqual((status, content_type, body), (400, "text/plain", "Missing required parameter: 'room'"))
        after = await self.stats()
        self.assertEqual(after["on_connect"], before["on_connect"])
        self.assertEqual(after["handler"], before["handler"])
        async with websockets.connect(self.server.url("/required?room=r1")) as ws:
            self.assertEqual(await ws.recv(), "in r1")
        self.assertEqual((await self.stats())["on_connect"], before["on_connect"] + 1)

    async def test_every_coercion(self):
        async with websockets.connect(self.server.url("/typed?flag=YES&level=high&limit=7&tag=a&tag=b&ratio=2.25&small=-128")) as ws:
            self.assertEqual(json.loads(await ws.recv()),
                             {"flag": True, "level": "high", "limit": 7, "tags": ["a", "b"], "ratio": 2.25, "small": -128})
        async with websockets.connect(self.server.url("/typed")) as ws:
            self.assertEqual(json.loads(await ws.recv()),
                             {"flag": False, "level": "low", "limit": None, "tags": [], "ratio": 0.5, "small": 0})

    async def test_invalid_values_name_the_expected_type(self):
        cases = {
            "flag=maybe": "Invalid value 'maybe' for parameter 'flag': expected boolean",
            "level=medium": "Invalid value 'medium' for parameter 'level': expected enum value name",
            "limit=": "Invalid value '' for parameter 'limit': expected integer",
            "ratio=fast": "Invalid value 'fast' for parameter 'ratio': expected number",
            "small=128": "Invalid value '128' for parameter 'small': expected integer",
            "limit=5x": "Invalid value '5x' for parameter 'limit': expected integer",
        }
        for query, message in cases.items():
            with self.subTest(query=query):
                self.assertEqual(http_get(self.server.port, "/typed?" + query), (400, "text/plain", message))

    async def test_close_policy_sends_1008_with_the_message(self):
        async with websockets.connect(self.server.url("/close_policy")) as ws:
            with self.assertRaises(ConnectionClosed) as closed:
                await ws.recv()
        self.assertEqual(closed.exception.rcvd.code, 1008)
        self.assertEqual(closed.exception.rcvd.reason, "Missing required parameter: 'page'")
        async with websockets.connect(self.server.url("/close_policy?page=3")) as ws:
            self.assertEqual(await ws.recv(), "page 3")

    def test_close_policy_reason_is_utf8_and_fits_a_close_frame(self):
        # Raw sockets, to see the reason's bytes: a value that is not UTF-8 is quoted percent-encoded,
        # and a message longer than a close frame holds is cut at a code point boundary.
        for query, expected in (("page=%FF", "Invalid value '%FF' for parameter 'page': expected integer"),
                                ("page=" + "%C3%A9" * 80, None)):
            with self.subTest(query=query[:20]):
                conn = rawws.Conn(self.server.port, "/close_policy?" + query)
                self.addCleanup(conn.close_socket)
                code, reason = conn.expect_close(1008)  # checks the reason is UTF-8
                conn.send_close(1000)
                conn.expect_eof()
                self.assertLessEqual(len(reason), 123)
                text = reason.decode("utf-8")
                if expected is not None:
                    self.assertEqual(text, expected)
                else:
                    full = "Invalid value '" + "\u00e9" * 80 + "' for parameter 'page': expected integer"
                    self.assertTrue(full.startswith(text), text)
                    self.assertGreater(len(reason), 121, "cut more than the one code point that did not fit")

    async def test_parameters_in_any_order_in_handler_and_callbacks(self):
        before = await self.stats()
        async with websockets.connect(self.server.url("/callbacks?user=gordon")) as ws:
            self.assertEqual(await ws.recv(), "hello from on_connect, gordon")
            self.assertEqual(await ws.recv(), "hello, gordon")
        for _ in range(200):  # on_close runs as the connection ends; ask until it has
            after = await self.stats()
            if after["on_close"] > before["on_close"]:
                break
        self.assertEqual(after["on_close"], before["on_close"] + 1)
        self.assertEqual(after["on_close_saw_user"], before["on_close_saw_user"] + 1)


class DependencyExamples(unittest.IsolatedAsyncioTestCase):
    async def test_dependencies_example(self):
        with harness.Server("examples/dependencies") as server:
            async with websockets.connect(server.url("/web_socket_di")) as ws:
                self.assertEqual(await ws.recv(), "connect: GLOBAL DEPENDENCY ROUTER DEPENDENCY")
                for _ in range(2):
                    await ws.send("x")
                    self.assertEqual(await ws.recv(), "handler: GLOBAL DEPENDENCY ROUTER DEPENDENCY")

    async def test_subrouter_example(self):
        with harness.Server("examples/subrouter") as server:
            async with websockets.connect(server.url("/sub_router/ws")) as ws:
                self.assertEqual(await ws.recv(), "hello from sub_router")
                await ws.send("a")
                self.assertEqual(await ws.recv(), "sub_router got: a")
            async with websockets.connect(server.url("/sub_router/nested/ws")) as ws:
                self.assertEqual(await ws.recv(), "hello from nested")
                await ws.send("b")
                self.assertEqual(await ws.recv(), "nested got: b")
            with self.assertRaises(InvalidStatusCode) as failed:
                await websockets.connect(server.url("/nested/ws"))
            self.assertEqual(failed.exception.status_code, 404)

    async def test_di_chat_authenticates_and_broadcasts(self):
        with harness.Server("examples/di_chat") as server:
            async with websockets.connect(server.url("/chat?token=nobody")) as intruder:
                with self.assertRaises(ConnectionClosed) as closed:
                    await intruder.recv()
                self.assertEqual(closed.exception.rcvd.code, 1008)
                self.assertEqual(closed.exception.rcvd.reason, "Unauthorized")
            async with websockets.connect(server.url("/chat?token=batman")) as a, \
                       websockets.connect(server.url("/chat?token=robin")) as b:
                self.assertEqual([await a.recv(), await a.recv()], ["Welcome to the chat!", "Connected"])
                self.assertEqual([await b.recv(), await b.recv()], ["Welcome to the chat!", "Connected"])
                await a.send("to the batmobile")
                got_a, got_b = await a.recv(), await b.recv()
                self.assertEqual(got_a, got_b)
                self.assertTrue(got_a.startswith("User ") and got_a.endswith(": to the batmobile"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
