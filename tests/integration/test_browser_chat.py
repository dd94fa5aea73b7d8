"""examples/chat's browser client end to end: GET / serves the page (examples/chat_page.hpp) over plain
HTTP, and headless Chromium pages loaded from it talk to each other through /chat.

Needs chromium, chromium-driver and python3-selenium (tools/install-deps). Without them the browser
tests fail, so a CI machine missing them cannot pass silently; STARLING_SKIP_BROWSER=1 skips them instead.

The page sends {"user", "text", "client"} JSON and shows every message under its sender, its own
marked; /chat relays it like any text, so a plain-text client sees that JSON and its own messages
show on the pages under "unnamed".

Synchronisation without sleeps: /chat adds a connection to its broadcast registry just before its
handler starts, so a page is known to receive broadcasts once its own message has come back to it.
Each page "joins" that way before a test relies on it seeing the other page's messages."""
import asyncio
import json
import os
import pathlib
import sys
import unittest
import urllib.request

import websockets

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    webdriver = None

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE_SOURCE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "chat_page.hpp"

# Everything here is on 127.0.0.1 (the server, chromedriver), but urllib, Selenium's client and Chromium
# would send it to a proxy named in the environment, as some CI machines have.
for variable in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    os.environ.pop(variable, None)


def page_in_source():
    """The page as written in examples/chat_page.hpp, between its raw string delimiters."""
    text = PAGE_SOURCE.read_text()
    return text.split('R"html(', 1)[1].split(')html"', 1)[0]


class ServedPageTest(unittest.TestCase):
    """The page over plain HTTP, no browser needed."""

    def test_get_root_serves_the_whole_page_as_html(self):
        with harness.Server("examples/chat") as server:
            url = f"http://127.0.0.1:{server.port}/"
            with urllib.request.urlopen(url, timeout=harness.TIMEOUT) as response:
                self.assertEqual(response.status, 200)
                self.assertEqual(response.headers["Content-Type"], "text/html; charset=utf-8")
                body = response.read().decode()
        self.assertEqual(body, page_in_source())
        for landmark in ('id="messages"', 'id="nickname"', 'id="message"', 'id="send"', 'id="status"', "/chat"):
            self.assertIn(landmark, body)


def require_browser():
    """Fails (or, with STARLING_SKIP_BROWSER=1, skips) when the browser stack is not installed."""
    if webdriver is None:
        problem = "python3-selenium is not installed"
    elif not os.access(CHROMIUM, os.X_OK):
        problem = f"{CHROMIUM} not found (package chromium)"
    elif not os.access(CHROMEDRIVER, os.X_OK):
        problem = f"{CHROMEDRIVER} not found (package chromium-driver)"
    else:
        return
    if os.environ.get("STARLING_SKIP_BROWSER") == "1":
        raise unittest.SkipTest(problem)
    raise AssertionError(f"{problem}: run tools/install-deps, or set STARLING_SKIP_BROWSER=1 to skip")


def start_browser(*extra_arguments):
    """`extra_arguments`: more Chromium switches (test_browser_chat_tls.py trusts its test certificate)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start. /dev/shm may be small
    # in containers.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", *extra_arguments):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


class Page:
    """One browser on the chat page, driven the way a person would: typing, clicking, reading."""

    def __init__(self, driver):
        self.driver = driver

    def wait_until(self, condition, what):
        WebDriverWait(self.driver, harness.TIMEOUT, poll_frequency=0.05).until(
            lambda _: condition(), message=f"timed out waiting until {what}")

    def open(self, url):
        self.driver.get(url)
        self.wait_until(lambda: self.status() == "connected", "the page is connected")

    def status(self):
        return self.driver.find_element(By.ID, "status").text

    def messages(self):
        """The text of every item of the message list, in order, without its sender (one round trip)."""
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll('#messages li .text'), t => t.textContent)")

    def entries(self):
        """Every item of the message list as (sender, text, marked as own), in order."""
        return [tuple(entry) for entry in self.driver.execute_script(
            "return Array.from(document.querySelectorAll('#messages li'), li => ["
            " li.querySelector('.sender').textContent, li.querySelector('.text').textContent,"
            " li.classList.contains('own')])")]

    def nickname(self):
        return self.driver.find_element(By.ID, "nickname").get_attribute("value")

    def type_nickname(self, name):
        self.driver.find_element(By.ID, "nickname").send_keys(name)

    def type_message(self, text):
        self.driver.find_element(By.ID, "message").send_keys(text)

    def send_with_button(self, text):
        self.type_message(text)
        self.driver.find_element(By.ID, "send").click()

    def send_with_enter(self, text):
        self.type_message(text + Keys.ENTER)

    def wait_for_messages(self, *texts):
        self.wait_until(lambda: all(t in self.messages() for t in texts), f"the page shows {texts!r}")

    def join(self, name):
        """Sends a message and waits for it to come back: from then on the page receives broadcasts."""
        self.send_with_button(f"{name} joined")
        self.wait_for_messages(f"{name} joined")


class BrowserChatTest(unittest.TestCase):
    """Two separate browsers (two driver sessions) on one chat server; each test reloads both pages,
    which opens fresh WebSocket connections and empties the message lists."""

    @classmethod
    def setUpClass(cls):
        require_browser()
        cls.server = harness.Server("examples/chat")
        cls.addClassCleanup(cls.server.stop)
        cls.pages = []
        for _ in range(2):
            driver = start_browser()
            cls.addClassCleanup(driver.quit)
            cls.pages.append(Page(driver))

    def setUp(self):
        self.a, self.b = self.pages
        self.url = f"http://127.0.0.1:{self.server.port}/"
        for page, name in ((self.a, "A"), (self.b, "B")):
            page.open(f"{self.url}?user={name}")
            page.join(name)

    def test_both_pages_show_both_messages(self):
        self.a.send_with_button("hello from A")
        self.b.send_with_enter("hello from B")
        for page in self.pages:
            page.wait_for_messages("hello from A", "hello from B")
        self.assertEqual(self.a.driver.find_element(By.ID, "message").get_attribute("value"), "",
                         "the input is emptied once its message is sent")

    def test_each_page_sees_the_senders_and_its_own_messages_marked(self):
        # Page B is reloaded without ?user=: it asks for a nickname, and sends nothing without one.
        self.b.open(self.url)
        self.assertEqual(self.b.nickname(), "")
        self.assertEqual(self.b.driver.switch_to.active_element.get_attribute("id"), "nickname")
        self.b.send_with_button("before naming myself")
        self.assertEqual(self.b.driver.find_element(By.ID, "message").get_attribute("value"),
                         "before naming myself", "nothing is sent without a nickname")
        self.b.type_nickname("Bob <i>")
        self.b.driver.find_element(By.ID, "send").click()  # the text still waiting in the input
        self.b.wait_for_messages("before naming myself")

        self.a.send_with_enter("hello from A")
        self.b.send_with_enter("hello from Bob")
        expected_on_a = [("A", "hello from A", True), ("Bob <i>", "hello from Bob", False)]
        expected_on_b = [("A", "hello from A", False), ("Bob <i>", "hello from Bob", True)]
        for page, expected in ((self.a, expected_on_a), (self.b, expected_on_b)):
            page.wait_for_messages("hello from A", "hello from Bob")
            shown = [e for e in page.entries() if e[1] in ("hello from A", "hello from Bob")]
            self.assertEqual(sorted(shown), sorted(expected))
        # B joined before A's message and is one connection: its own messages arrive in its order.
        self.assertIn(("Bob <i>", "before naming myself", True), self.b.entries())
        self.assertIn(("Bob <i>", "before naming myself", False), self.a.entries())
        self.assertEqual(self.a.driver.find_elements(By.CSS_SELECTOR, "#messages i"), [],
                         "a nickname must not become markup")
        # The mark is visible, not only a class: the own message's sender reads "(you)".
        own_label = self.a.driver.execute_script(
            "const s = document.querySelector('#messages li.own .sender');"
            "return getComputedStyle(s, '::after').content")
        self.assertIn("(you)", own_label)

    def test_plain_text_clients_still_send_and_receive_as_before(self):
        async def plain_client():
            async with websockets.connect(self.server.url("/chat")) as ws:
                await ws.send("plain hello")
                self.assertEqual(await asyncio.wait_for(ws.recv(), timeout=harness.TIMEOUT), "plain hello")
                self.a.send_with_enter("to the plain client")  # blocking, but the client only waits
                received = await asyncio.wait_for(ws.recv(), timeout=harness.TIMEOUT)
                return json.loads(received)

        from_page = harness.run(plain_client())
        self.assertEqual(from_page["user"], "A")
        self.assertEqual(from_page["text"], "to the plain client")
        self.assertEqual(sorted(from_page), ["client", "text", "user"])
        for page in self.pages:
            page.wait_for_messages("plain hello", "to the plain client")
            self.assertIn(("unnamed", "plain hello", False), page.entries())
            self.assertIn(("A", "to the plain client", page is self.a), page.entries())

    def test_chromium_negotiates_compression_and_long_messages_cross(self):
        # Chromium offers permessage-deflate on every connection; the server accepts it without
        # context takeover either way, which the page's WebSocket shows in its `extensions`.
        extensions = self.a.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/chat');
            ws.onopen = () => { done(ws.extensions); ws.close(); };
            ws.onerror = () => done('error');""")
        self.assertEqual(extensions, "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        # Past the 256-byte threshold: compressed by Chromium, inflated by the server, broadcast
        # compressed to both pages and plain to a client that did not offer compression.
        long_text = "compressible-" * 60 + "end"

        async def plain_client():
            async with websockets.connect(self.server.url("/chat"), compression=None) as ws:
                self.assertIsNone(ws.response_headers.get("Sec-WebSocket-Extensions"))
                await ws.send("plain joined")
                self.assertEqual(await asyncio.wait_for(ws.recv(), timeout=harness.TIMEOUT), "plain joined")
                self.a.send_with_enter(long_text)
                return json.loads(await asyncio.wait_for(ws.recv(), timeout=harness.TIMEOUT))

        self.assertEqual(harness.run(plain_client())["text"], long_text)
        for page in self.pages:
            page.wait_for_messages(long_text)

    def test_markup_in_a_message_is_shown_as_text(self):
        self.a.send_with_enter("<b>x</b>")
        for page in self.pages:
            page.wait_for_messages("<b>x</b>")
            self.assertEqual(page.driver.find_elements(By.CSS_SELECTOR, "#messages b"), [],
                             "a received message must not become markup")

    def test_binary_message_is_shown_as_its_size(self):
        async def send_binary():
            async with websockets.connect(self.server.url("/chat")) as ws:
                await ws.send(b"\x00\x01\x02")
                # Its own copy coming back means the server has broadcast it to the pages too.
                self.assertEqual(await asyncio.wait_for(ws.recv(), timeout=harness.TIMEOUT), b"\x00\x01\x02")

        harness.run(send_binary())
        for page in self.pages:
            page.wait_for_messages("[binary 3 bytes]")


class BrowserStatusTest(unittest.TestCase):
    """The status line follows the connection: its own server, stopped halfway through."""

    def test_status_turns_disconnected_when_the_server_stops(self):
        require_browser()
        driver = start_browser()
        self.addCleanup(driver.quit)
        page = Page(driver)
        with harness.Server("examples/chat") as server:
            page.open(f"http://127.0.0.1:{server.port}/")
            self.assertTrue(driver.find_element(By.ID, "send").is_enabled())
        page.wait_until(lambda: page.status() == "disconnected", "the page shows it is disconnected")
        self.assertFalse(driver.find_element(By.ID, "send").is_enabled(), "no sending while disconnected")


if __name__ == "__main__":
    unittest.main(verbosity=2)
