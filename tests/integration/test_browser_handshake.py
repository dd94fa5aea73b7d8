"""The handshake step from a real browser (headless Chromium): subprotocol negotiation with
`new WebSocket(url, ["a", "b"])` against examples/gatekeeper and examples/auth_chat, and an origin
allow-list refusing a page loaded from another origin.

Needs the browser stack test_browser_chat.py needs (STARLING_SKIP_BROWSER=1 skips instead). A page
learns nothing of a refused upgrade but a close with 1006, so the server's counters say which refusal
it was."""
import sys
import unittest

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402
import test_browser_chat  # noqa: E402  (require_browser, start_browser)
from test_handshake_step import metric, stop_cleanly  # noqa: E402

OPEN = """
const [url, protocols, first] = arguments;
const done = arguments[arguments.length - 1];
const ws = protocols === null ? new WebSocket(url) : new WebSocket(url, protocols);
ws.onopen = () => { if (first !== null) ws.send(first); };
ws.onmessage = e => { done(["message", ws.protocol, e.data]); ws.close(); };
ws.onclose = e => done(["closed", ws.protocol, e.code]);
"""


class BrowserHandshakeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        test_browser_chat.require_browser()
        cls.gatekeeper = harness.Server("examples/gatekeeper")
        cls.chat = harness.Server("examples/auth_chat")
        cls.driver = test_browser_chat.start_browser()
        cls.driver.set_script_timeout(harness.TIMEOUT)

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        stop_cleanly(cls.gatekeeper)
        stop_cleanly(cls.chat)

    def open_in_page(self, page_url, ws_url, protocols=None, first=None):
        if self.driver.current_url != page_url:
            self.driver.get(page_url)
        return self.driver.execute_async_script(OPEN, ws_url, protocols, first)

    def test_chromium_gets_the_servers_preferred_protocol_of_those_it_offers(self):
        port = self.gatekeeper.port
        page = f"http://127.0.0.1:{port}/counts"
        url = f"ws://127.0.0.1:{port}/protocols"
        self.assertEqual(self.open_in_page(page, url, ["v1.game", "v2.game"]), ["message", "v2.game", "speaking v2.game"])
        self.assertEqual(self.open_in_page(page, url, ["v1.game"]), ["message", "v1.game", "speaking v1.game"])
        before = metric(port, "starling_handshakes_refused_total", status="400")
        self.assertEqual(self.open_in_page(page, url, ["a", "b"]), ["closed", "", 1006])
        self.assertEqual(metric(port, "starling_handshakes_refused_total", status="400"), before + 1)

    def test_chromium_chats_on_auth_chat_with_chat_v1(self):
        port = self.chat.port
        page = f"http://127.0.0.1:{port}/metrics"
        url = f"ws://127.0.0.1:{port}/chat?token=secret-bob"
        self.assertEqual(self.open_in_page(page, url, ["chat.v1", "chat.v2"], "from chromium"),
                         ["message", "chat.v1", "bob: from chromium"])
        self.assertEqual(self.open_in_page(page, url, ["chat.v2"], "x"), ["closed", "", 1006])
        self.assertEqual(self.open_in_page(page, f"ws://127.0.0.1:{port}/chat?token=wrong", ["chat.v1"], "x"),
                         ["closed", "", 1006])

    def test_a_page_from_an_allowed_origin_connects_and_one_from_another_is_refused(self):
        port = self.gatekeeper.port
        self.driver.get(f"http://localhost:{port}/page")
        self.assertEqual(self.driver.execute_async_script("window.result.then(arguments[arguments.length - 1])"),
                         f"message origin http://localhost:{port}")
        before = metric(port, "starling_handshakes_refused_total", status="403")
        self.driver.get(f"http://127.0.0.1:{port}/page")  # same server, another origin
        self.assertEqual(self.driver.execute_async_script("window.result.then(arguments[arguments.length - 1])"),
                         "closed 1006")
        self.assertEqual(metric(port, "starling_handshakes_refused_total", status="403"), before + 1)


if __name__ == "__main__":
    unittest.main()
