"""examples/chat over TLS in a real browser: two headless Chromium pages load the page over https and
talk through wss:// (the page picks wss:// itself when loaded over https). The certificate is made when
the test runs, so Chromium is told to accept it (--ignore-certificate-errors). Needs what
test_browser_chat.py needs."""
import sys
import tempfile
import unittest

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402
import test_browser_chat as browser  # noqa: E402  (the module: unittest would run its classes too)
import tls_certs  # noqa: E402


class BrowserChatOverTLS(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        browser.require_browser()
        cls.certs = tempfile.TemporaryDirectory(prefix="starling-browser-tls-")
        cls.addClassCleanup(cls.certs.cleanup)
        cert, key = tls_certs.make(cls.certs.name, "chat")
        cls.server = harness.Server("examples/chat", "--tls-cert", cert, "--tls-key", key)
        cls.addClassCleanup(cls.server.stop)
        cls.pages = []
        for _ in range(2):
            driver = browser.start_browser("--ignore-certificate-errors")
            cls.addClassCleanup(driver.quit)
            cls.pages.append(browser.Page(driver))

    def test_two_pages_talk_over_wss(self):
        a, b = self.pages
        url = f"https://127.0.0.1:{self.server.port}/"
        for page, name in ((a, "A"), (b, "B")):
            page.open(f"{url}?user={name}")
            page.join(name)
        self.assertEqual(a.driver.execute_script("return location.protocol"), "https:")
        a.send_with_button("hello over wss from A")
        b.send_with_enter("hello over wss from B")
        for page in self.pages:
            page.wait_for_messages("hello over wss from A", "hello over wss from B")
        self.assertIn(("B", "hello over wss from B", True), b.entries())
        self.assertIn(("B", "hello over wss from B", False), a.entries())


if __name__ == "__main__":
    unittest.main()
