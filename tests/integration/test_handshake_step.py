"""The handshake as a typed step, over the wire: authentication hooks (examples/auth_chat and
examples/gatekeeper), per-connection state, refusing from on_connect, typed headers, cookies and path
parameters, origin allow-lists, subprotocols, the per-IP connection cap and the message rate limit;
the byte rate limit and invalid_query = close for path, header and cookie parameters
(tests/servers/handshake_server).

Every decision is read where a client sees it: the HTTP status and body of a refused upgrade, the
close code of a refused or limited connection, and the counters (GET /counts, GET /metrics) that say
whether a handler ran or a connection was registered after a refusal."""
import asyncio
import os
import re
import sys
import time
import unittest
import urllib.request

import websockets
import websockets.exceptions

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402
import rawws  # noqa: E402

for variable in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    os.environ.pop(variable, None)


def stop_cleanly(server):
    """Stops `server` and fails unless it exited with 0 and reported no sanitizer finding."""
    status = server.stop()
    text = server.stderr()
    if status != 0 or "Sanitizer" in text or "runtime error" in text:
        raise AssertionError(f"server exited with {status}: {text[-4000:]}")


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=harness.TIMEOUT) as response:
        return response.read().decode()


def counts(port):
    return {name: int(value) for name, value in (line.split() for line in get(port, "/counts").splitlines())}


def metric(port, name, **labels):
    """One sample of GET /metrics."""
    label_text = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.escape(f"{name}{{{label_text}}}") + r" (\S+)"
    found = re.search(pattern, get(port, "/metrics"))
    if not found:
        raise AssertionError(f"no sample {name}{{{label_text}}}")
    return float(found.group(1))


def wait_for(condition, what):
    """Looks at `condition` (each look is a request to the server, which paces the loop) until it
    holds, within the harness timeout."""
    deadline = time.monotonic() + harness.TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")


def upgrade(port, path, headers=()):
    """Sends an upgrade request; returns (status, headers, body) of the answer, and for a 101 the
    socket is closed without reading further."""
    request, _ = rawws.upgrade_request(port, path, headers=list(headers))
    status, reason, response_headers, sock = rawws.http_exchange(port, request)
    if status == 101:
        sock.close()
        return status, response_headers, b""
    sock.close()
    return rawws.http_answer(port, request)


def refused(port, path, headers=()):
    """(status, headers, body) of an upgrade the server refuses."""
    request, _ = rawws.upgrade_request(port, path, headers=list(headers))
    return rawws.http_answer(port, request)


class ReadmeSnippetsTest(unittest.TestCase):
    """README's handshake section quotes examples/auth_chat.cpp and examples/gatekeeper.cpp: every
    code block there is in one of them, line for line (indentation aside)."""

    def test_every_snippet_is_in_a_compiled_example(self):
        root = harness.pathlib.Path(__file__).resolve().parents[2]
        readme = (root / "README.md").read_text()
        section = readme.split("## The handshake:", 1)[1].split("\n## ", 1)[0]
        sources = [[line.strip() for line in (root / "examples" / name).read_text().splitlines()]
                   for name in ("auth_chat.cpp", "gatekeeper.cpp")]
        blocks = re.findall(r"```cpp\n(.*?)```", section, re.S)
        self.assertGreaterEqual(len(blocks), 10)
        for block in blocks:
            lines = [line.strip() for line in block.splitlines()]
            found = any(any(source[i:i + len(lines)] == lines for i in range(len(source))) for source in sources)
            self.assertTrue(found, f"README snippet not found in the examples:\n{block}")


class AuthChatTest(unittest.TestCase):
    """examples/auth_chat: the contract other tools rely on."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("examples/auth_chat")
        cls.port = cls.server.port

    @classmethod
    def tearDownClass(cls):
        stop_cleanly(cls.server)

    def url(self, query=""):
        return f"ws://127.0.0.1:{self.port}/chat{query}"

    def test_tokens_in_query_and_bearer_header_name_the_sender(self):
        async def joined(ws, name, *others):
            """Waits until `ws` receives broadcasts. A connection joins them once its handler runs,
            which may be a moment after its client has the 101: a broadcast in between misses it. Its
            own broadcast coming back shows it has joined (the others, joined before, get it too)."""
            await ws.send("ready")
            for receiver in (ws, *others):
                self.assertEqual(await asyncio.wait_for(receiver.recv(), harness.TIMEOUT), f"{name}: ready")

        async def scenario():
            async with websockets.connect(self.url("?token=secret-alice")) as alice:
                await joined(alice, "alice")
                async with websockets.connect(self.url(), extra_headers={"Authorization": "Bearer secret-bob"}) as bob:
                    await joined(bob, "bob", alice)
                    await alice.send("hello")
                    self.assertEqual(await asyncio.wait_for(alice.recv(), harness.TIMEOUT), "alice: hello")
                    self.assertEqual(await asyncio.wait_for(bob.recv(), harness.TIMEOUT), "alice: hello")
                    await bob.send("hi alice")
                    self.assertEqual(await asyncio.wait_for(alice.recv(), harness.TIMEOUT), "bob: hi alice")
                    self.assertEqual(await asyncio.wait_for(bob.recv(), harness.TIMEOUT), "bob: hi alice")
        harness.run(scenario())

    def test_unknown_missing_and_malformed_tokens_get_401_before_the_upgrade(self):
        opened_before = metric(self.port, "starling_connections_opened_total", endpoint="/chat")
        refusals_before = metric(self.port, "starling_auth_refusals_total", endpoint="/chat")
        answers_before = metric(self.port, "starling_handshakes_refused_total", status="401")
        cases = [("/chat", []), ("/chat?token=secret-carol", []), ("/chat?token=", []),
                 ("/chat", [("Authorization", "Bearer nope")]), ("/chat", [("Authorization", "Basic c2VjcmV0LWFsaWNl")]),
                 ("/chat", [("Authorization", "secret-alice")])]
        for path, headers in cases:
            with self.subTest(path=path, headers=headers):
                status, response_headers, body = refused(self.port, path, headers)
                self.assertEqual(status, 401)
                self.assertEqual(body, b"Unknown or missing token")
                self.assertEqual(response_headers["www-authenticate"], ["Bearer"])
                self.assertNotIn("sec-websocket-accept", response_headers)
        self.assertEqual(metric(self.port, "starling_connections_opened_total", endpoint="/chat"), opened_before)
        self.assertEqual(metric(self.port, "starling_auth_refusals_total", endpoint="/chat"), refusals_before + len(cases))
        self.assertEqual(metric(self.port, "starling_handshakes_refused_total", status="401"), answers_before + len(cases))

    def test_python_client_offering_chat_v1_among_others_gets_chat_v1(self):
        async def scenario():
            async with websockets.connect(self.url("?token=secret-alice"), subprotocols=["chat.v2", "chat.v1"]) as ws:
                self.assertEqual(ws.subprotocol, "chat.v1")
                await ws.send("with a protocol")
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), "alice: with a protocol")
            async with websockets.connect(self.url("?token=secret-bob")) as ws:
                self.assertIsNone(ws.subprotocol)  # none offered: served without one
        harness.run(scenario())

    def test_only_the_chosen_protocol_is_answered_never_the_clients_list(self):
        status, headers, _ = upgrade(self.port, "/chat?token=secret-alice", [("Sec-WebSocket-Protocol", "chat.v0, chat.v1, x")])
        self.assertEqual(status, 101)
        self.assertEqual(headers["sec-websocket-protocol"], ["chat.v1"])

    def test_a_client_offering_only_other_protocols_gets_400_naming_chat_v1(self):
        async def scenario():
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as raised:
                async with websockets.connect(self.url("?token=secret-alice"), subprotocols=["chat.v2", "graphql-ws"]):
                    pass
            self.assertEqual(raised.exception.status_code, 400)
        harness.run(scenario())
        status, _, body = refused(self.port, "/chat?token=secret-alice", [("Sec-WebSocket-Protocol", "chat.v2")])
        self.assertEqual((status, body), (400, b"Unsupported subprotocol: this endpoint speaks chat.v1"))


class OneServerTest(unittest.TestCase):
    """One server program (`program`) for the whole class, stopped cleanly after it."""
    program = None

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(cls.program)
        cls.port = cls.server.port

    @classmethod
    def tearDownClass(cls):
        stop_cleanly(cls.server)

    def url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"


class GatekeeperTest(OneServerTest):
    """examples/gatekeeper: one endpoint per feature."""

    program = "examples/gatekeeper"

    # ---- the authentication hook ----

    def test_vault_hook_refusals_run_nothing_and_register_nothing(self):
        before = counts(self.port)
        opened = metric(self.port, "starling_connections_opened_total", endpoint="/vault")
        cases = [
            ([], 400, b"Missing required parameter: 'X-API-Key'"),
            ([("X-API-Key", "wrong")], 401, b"Unknown key"),
            ([("X-API-Key", "banned")], 403, b"This key is banned"),
            ([("X-API-Key", "busy")], 429, b"Slow down"),
            ([("X-API-Key", "boom")], 500, b"Internal Server Error"),
        ]
        for headers, status, body in cases:
            with self.subTest(headers=headers):
                got_status, got_headers, got_body = refused(self.port, "/vault", headers)
                self.assertEqual((got_status, got_body), (status, body))
                if status == 429:
                    self.assertEqual(got_headers["retry-after"], ["5"])
        after = counts(self.port)
        self.assertEqual(after["vault_handlers"], before["vault_handlers"])
        self.assertEqual(after["vault_connects"], before["vault_connects"])
        self.assertEqual(metric(self.port, "starling_connections_opened_total", endpoint="/vault"), opened)
        self.assertIn("authentication hook for /vault threw: the key store is down", self.server.stderr())

    def test_vault_admits_and_injects_the_hooks_value_into_on_connect_and_the_handler(self):
        before = counts(self.port)

        async def scenario():
            async with websockets.connect(self.url("/vault"), extra_headers={"X-API-Key": "open-sesame"}) as ws:
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), "hello keyholder")
                await ws.send("open")
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), "keyholder: open")
        harness.run(scenario())
        after = counts(self.port)
        self.assertEqual(after["vault_handlers"], before["vault_handlers"] + 1)
        self.assertEqual(after["vault_connects"], before["vault_connects"] + 1)

    def test_event_api_handlers_declare_the_hooks_value(self):
        async def scenario():
            async with websockets.connect(self.url("/events"), extra_headers={"X-API-Key": "open-sesame"}) as ws:
                await ws.send("ping")
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), "event from keyholder: ping")
        harness.run(scenario())
        self.assertEqual(refused(self.port, "/events", [("X-API-Key", "banned")])[0], 403)

    def test_a_hook_sees_the_clients_address_cookies_headers_and_query(self):
        async def scenario():
            async with websockets.connect(self.url("/whoami"), user_agent_header="probe/1",
                                          extra_headers={"Cookie": "a=b; session=s42"}) as ws:
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), "127.0.0.1 cookie=s42 agent=probe/1")
        harness.run(scenario())
        self.assertEqual(refused(self.port, "/whoami?deny=1")[::2], (403, b"denied"))

    # ---- typed path, header and cookie parameters ----

    def test_path_header_and_cookie_parameters(self):
        async def first(path, headers=None):
            async with websockets.connect(self.url(path), extra_headers=headers or {}) as ws:
                return await asyncio.wait_for(ws.recv(), harness.TIMEOUT)

        self.assertEqual(harness.run(first("/rooms/lobby/ws", {"X-Client": "ann", "Cookie": "theme=dark; session=abc123"})),
                         "room lobby as ann (session abc123)")
        self.assertEqual(harness.run(first("/rooms/caf%C3%A9%20au%20lait/ws")), "room café au lait as anonymous (session none)")
        self.assertEqual(harness.run(first("/rooms/a+b/ws", {"Cookie": 'session="quoted"'})), "room a+b as anonymous (session quoted)")
        self.assertEqual(harness.run(first("/items/42")), "item 42")
        self.assertEqual(harness.run(first("/items/-7")), "item -7")

    def test_a_path_the_template_does_not_match_is_404(self):
        for path in ["/rooms/ws", "/rooms//ws", "/rooms/a/b/ws", "/rooms/a/ws/", "/rooms/a", "/items/", "/items/1/2"]:
            with self.subTest(path=path):
                status, _, _ = refused(self.port, path)
                self.assertEqual(status, 404)

    def test_a_bad_path_or_header_value_is_400_with_the_query_parameters_messages(self):
        cases = [("/items/abc", [], b"Invalid value 'abc' for parameter 'id': expected integer"),
                 ("/items/99999999999", [], b"Invalid value '99999999999' for parameter 'id': expected integer"),
                 ("/rooms/%FF/ws", [], b"Invalid value '%FF' for parameter 'room': expected UTF-8 text")]
        for path, headers, body in cases:
            with self.subTest(path=path):
                self.assertEqual(refused(self.port, path, headers)[::2], (400, body))

    # ---- refusing from on_connect ----

    def test_on_connect_refuses_with_a_close_code_and_the_handler_never_runs(self):
        before = counts(self.port)["members_handlers"]

        async def scenario():
            async with websockets.connect(self.url("/members")) as ws:
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), harness.TIMEOUT)
                self.assertEqual((closed.exception.code, closed.exception.reason), (1008, "members only"))
            async with websockets.connect(self.url("/members?member=yes")) as ws:
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), "welcome, member")
        harness.run(scenario())
        self.assertEqual(counts(self.port)["members_handlers"], before + 1)

    # ---- per-connection state ----

    def test_state_is_seen_by_every_callback_and_destroyed_with_the_connection(self):
        before = counts(self.port)

        async def scenario():
            async with websockets.connect(self.url("/sessions?name=ann")) as ws:
                self.assertEqual(counts(self.port)["sessions_live"], before["sessions_live"] + 1)
                await ws.send("a")
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), "ann #1: a")
                await ws.send("b")
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), "ann #2: b")
                await ws.send("bye")
                self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), "bye ann after 2")
                await asyncio.wait_for(ws.wait_closed(), harness.TIMEOUT)
                self.assertEqual(ws.close_code, 1000)
            # A client that just drops its TCP connection: the state goes too.
            ws = await websockets.connect(self.url("/sessions?name=bob"))
            await ws.send("x")
            self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), "bob #1: x")
            ws.transport.abort()
        harness.run(scenario())
        wait_for(lambda: counts(self.port)["sessions_destroyed"] == before["sessions_destroyed"] + 2, "both states destroyed")
        self.assertEqual(counts(self.port)["sessions_live"], before["sessions_live"])

    # ---- origins ----

    def test_origin_allow_list(self):
        allowed = [None, "http://localhost:1234", "http://LOCALHOST", "https://a.example.com", "https://a.b.example.com"]
        refused_origins = ["https://example.com", "http://a.example.com", "http://evil.test", "https://a.example.com.evil.test",
                           "https://evilexample.com", "null", "http://localhost.evil.test:80"]
        for origin in allowed:
            with self.subTest(origin=origin):
                headers = [] if origin is None else [("Origin", origin)]
                self.assertEqual(upgrade(self.port, "/browser", headers)[0], 101)
        before = metric(self.port, "starling_handshakes_refused_total", status="403")
        for origin in refused_origins:
            with self.subTest(origin=origin):
                self.assertEqual(refused(self.port, "/browser", [("Origin", origin)])[::2], (403, b"Origin not allowed"))
        self.assertEqual(metric(self.port, "starling_handshakes_refused_total", status="403"), before + len(refused_origins))
        # Without an allow-list, every origin is accepted.
        self.assertEqual(upgrade(self.port, "/items/1", [("Origin", "http://evil.test")])[0], 101)

    # ---- subprotocols ----

    def test_the_servers_preference_wins_among_those_offered(self):
        async def speaking(path, offered):
            async with websockets.connect(self.url(path), subprotocols=offered) as ws:
                return ws.subprotocol, await asyncio.wait_for(ws.recv(), harness.TIMEOUT)

        self.assertEqual(harness.run(speaking("/protocols", ["v1.game", "v2.game"])), ("v2.game", "speaking v2.game"))
        self.assertEqual(harness.run(speaking("/protocols", ["x", "v1.game"])), ("v1.game", "speaking v1.game"))
        self.assertEqual(harness.run(speaking("/protocols", None)), (None, "speaking "))
        self.assertEqual(harness.run(speaking("/protocols-optional", ["x"])), (None, "speaking nothing"))
        self.assertEqual(refused(self.port, "/protocols", [("Sec-WebSocket-Protocol", "x, V2.GAME")])[::2],
                         (400, b"Unsupported subprotocol: this endpoint speaks v2.game, v1.game"))

    # ---- the rate limit ----

    def test_a_client_over_its_rate_limit_is_closed_with_1008(self):
        closes = metric(self.port, "starling_rate_limit_closes_total", endpoint="/limited")

        async def scenario():
            async with websockets.connect(self.url("/limited")) as ws:
                for i in range(20):
                    await ws.send(f"m{i}")
                echoes = []
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as closed:
                    while True:
                        echoes.append(await asyncio.wait_for(ws.recv(), harness.TIMEOUT))
                self.assertEqual((closed.exception.code, closed.exception.reason), (1008, "rate limit exceeded"))
                self.assertEqual(echoes, [f"m{i}" for i in range(5)])  # the burst passes
        harness.run(scenario())
        self.assertEqual(metric(self.port, "starling_rate_limit_closes_total", endpoint="/limited"), closes + 1)

    def test_a_client_within_its_rate_limit_is_served(self):
        async def scenario():
            async with websockets.connect(self.url("/limited")) as ws:
                for i in range(5):
                    await ws.send(f"n{i}")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), f"n{i}")
        harness.run(scenario())

    def test_with_the_drop_policy_messages_over_the_limit_are_dropped_and_counted(self):
        drops = metric(self.port, "starling_rate_limited_messages_dropped_total", endpoint="/limited-drop")

        async def scenario():
            async with websockets.connect(self.url("/limited-drop")) as ws:
                for i in range(20):
                    await ws.send(f"d{i}")
                echoes = [await asyncio.wait_for(ws.recv(), harness.TIMEOUT) for _ in range(5)]
                self.assertEqual(echoes, [f"d{i}" for i in range(5)])
                wait_for(lambda: metric(self.port, "starling_rate_limited_messages_dropped_total", endpoint="/limited-drop")
                         == drops + 15, "15 drops counted")
                # Still connected: once a token is back (5 per second), a message passes again.
                deadline = time.monotonic() + harness.TIMEOUT
                while True:
                    await ws.send("again")
                    try:
                        self.assertEqual(await asyncio.wait_for(ws.recv(), 0.25), "again")
                        break
                    except asyncio.TimeoutError:
                        self.assertLess(time.monotonic(), deadline)
        harness.run(scenario())


class HandshakeServerTest(OneServerTest):
    """tests/servers/handshake_server: the byte rate limit, and invalid_query = close applied to typed
    path, header and cookie parameters."""

    program = "tests/handshake_server"

    # ---- the byte rate limit: 20000 bytes per second, a burst of 5000 ----

    @staticmethod
    def payload(i, size=1000):
        return (f"{i:04d}" + "abcdefghij" * (size // 10))[:size]

    def test_a_client_under_the_byte_rate_keeps_its_connection(self):
        closes = metric(self.port, "starling_rate_limit_closes_total", endpoint="/bytes-limited")

        async def scenario():
            async with websockets.connect(self.url("/bytes-limited")) as ws:
                # 12000 bytes, more than the burst, at 10000 bytes a second (half the rate) or slower:
                # a slow machine only spaces them further apart.
                for i in range(12):
                    await ws.send(self.payload(i))
                    self.assertEqual(await asyncio.wait_for(ws.recv(), harness.TIMEOUT), self.payload(i))
                    await asyncio.sleep(0.1)
                await ws.close()
                self.assertEqual(ws.close_code, 1000)
        harness.run(scenario())
        self.assertEqual(metric(self.port, "starling_rate_limit_closes_total", endpoint="/bytes-limited"), closes)

    def test_a_client_over_the_byte_rate_is_closed_with_1008(self):
        closes = metric(self.port, "starling_rate_limit_closes_total", endpoint="/bytes-limited")

        async def scenario():
            async with websockets.connect(self.url("/bytes-limited")) as ws:
                for i in range(20):  # 20000 bytes at once: four times the burst
                    await ws.send(self.payload(i))
                echoes = []
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as closed:
                    while True:
                        echoes.append(await asyncio.wait_for(ws.recv(), harness.TIMEOUT))
                self.assertEqual((closed.exception.code, closed.exception.reason), (1008, "rate limit exceeded"))
                # The burst passes, in order; what refilled while the rest arrived (20 bytes a
                # millisecond) may let one or two more through, never all.
                self.assertGreaterEqual(len(echoes), 5)
                self.assertLess(len(echoes), 20)
                self.assertEqual(echoes, [self.payload(i) for i in range(len(echoes))])
        harness.run(scenario())
        self.assertEqual(metric(self.port, "starling_rate_limit_closes_total", endpoint="/bytes-limited"), closes + 1)

    def test_with_the_drop_policy_bytes_over_the_rate_are_dropped_and_the_client_stays(self):
        drops = metric(self.port, "starling_rate_limited_messages_dropped_total", endpoint="/bytes-limited-drop")
        sent = [self.payload(i) for i in range(20)]

        async def scenario():
            received = []
            async with websockets.connect(self.url("/bytes-limited-drop")) as ws:
                for text in sent:
                    await ws.send(text)
                wait_for(lambda: metric(self.port, "starling_rate_limited_messages_dropped_total",
                                        endpoint="/bytes-limited-drop") >= drops + 10, "drops counted")
                # The burst's five are echoed, in order, and more only for the tokens that came back
                # while the rest arrived.
                received += [await asyncio.wait_for(ws.recv(), harness.TIMEOUT) for _ in range(5)]
                self.assertEqual(received, sent[:5])
                # Still connected: a later message, once its bytes are back in the bucket, is echoed.
                deadline = time.monotonic() + harness.TIMEOUT
                while not received or received[-1] != "again":
                    sent.append("again")
                    await ws.send("again")
                    try:
                        while True:
                            received.append(await asyncio.wait_for(ws.recv(), 0.25))
                            if received[-1] == "again":
                                break
                    except asyncio.TimeoutError:
                        self.assertLess(time.monotonic(), deadline)
            return received

        received = harness.run(scenario())
        self.assertTrue(set(received) <= set(sent))
        # Every message was echoed or counted as dropped, nothing else.
        dropped = metric(self.port, "starling_rate_limited_messages_dropped_total", endpoint="/bytes-limited-drop") - drops
        self.assertEqual(dropped, len(sent) - len(received))
        self.assertGreaterEqual(dropped, 10)

    # ---- invalid_query = close for path, header and cookie parameters ----

    def closed_with(self, path, headers):
        """Connects raw (the 101 must come), then expects the server's close: returns its reason."""
        conn = rawws.Conn(self.port, path, headers=headers)
        self.addCleanup(conn.close_socket)
        code, reason = conn.expect_close(1008)
        conn.send_close(1000)
        conn.expect_eof()
        return reason.decode()

    def test_bad_path_header_and_cookie_values_are_accepted_then_closed_naming_the_parameter(self):
        good = [("X-Count", "3"), ("Cookie", "n=4")]
        cases = [
            ("/closing/abc", good, "Invalid value 'abc' for parameter 'id': expected integer"),
            ("/closing/99999999999", good, "Invalid value '99999999999' for parameter 'id': expected integer"),
            ("/closing/1", [("X-Count", "three"), ("Cookie", "n=4")],
             "Invalid value 'three' for parameter 'X-Count': expected integer"),
            ("/closing/1", [("Cookie", "n=4")], "Missing required parameter: 'X-Count'"),
            ("/closing/1", [("X-Count", "3"), ("Cookie", "a=1; n=zz")], "Invalid value 'zz' for parameter 'n': expected integer"),
            ("/closing/1", [("X-Count", "3")], "Missing required parameter: 'n'"),
        ]
        for path, headers, reason in cases:
            with self.subTest(path=path, headers=headers):
                self.assertEqual(self.closed_with(path, headers), reason)
        # All good: served. A path the template does not match is still 404, before any upgrade.
        conn = rawws.Conn(self.port, "/closing/7", headers=good)
        self.addCleanup(conn.close_socket)
        self.assertEqual(conn.recv_message("the greeting"), (rawws.TEXT, b"id 7 count 3 n 4"))
        self.assertEqual(refused(self.port, "/closing/1/2", good)[0], 404)

    def test_python_websockets_sees_the_101_then_the_close(self):
        async def scenario():
            async with websockets.connect(self.url("/closing/x"), extra_headers={"X-Count": "1", "Cookie": "n=1"}) as ws:
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), harness.TIMEOUT)
            self.assertEqual((closed.exception.code, closed.exception.reason),
                             (1008, "Invalid value 'x' for parameter 'id': expected integer"))
        harness.run(scenario())


class PerAddressCapTest(unittest.TestCase):
    """examples/gatekeeper allows 100 open connections per IP address: 1000 at once from 127.0.0.1."""

    def test_1000_connections_from_one_address_against_a_cap_of_100(self):
        server = harness.Server("examples/gatekeeper")
        try:
            answers = harness.run(self.open_many(server.port, 1000))
            self.assertEqual(answers.count(101), 100)
            self.assertEqual(answers.count(429), 900)
            self.assertEqual(metric(server.port, "starling_handshakes_refused_total", status="429"), 900)
            # Closed, they make room again.
            wait_for(lambda: metric(server.port, "starling_connections_open", endpoint="/browser") == 0, "all closed")
            self.assertEqual(upgrade(server.port, "/items/1")[0], 101)
        finally:
            stop_cleanly(server)

    async def open_many(self, port, n):
        """Opens n upgrades to /browser at once; every one is held open until all are answered."""
        request, _ = rawws.upgrade_request(port, "/browser")
        streams, statuses = [], []

        async def one():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            streams.append(writer)
            writer.write(request)
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 30)
            return int(line.split()[1]) if line else 0

        statuses = await asyncio.gather(*(one() for _ in range(n)))
        for writer in streams:
            writer.close()
        return list(statuses)


if __name__ == "__main__":
    unittest.main()
