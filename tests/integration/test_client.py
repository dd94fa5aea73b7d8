"""examples/client, Starling's coroutine client, against Starling's own echo server and against
servers nobody here wrote: Python's websockets server (echo, fragmented messages, its close codes,
IPv6) and raw sockets that answer the handshake wrongly or send frames a client must refuse. Each
check is on what a user sees (the replies printed, the exit status, the error on stderr) and on
the wire (the close frame the client sends back, its code)."""
import asyncio
import base64
import hashlib
import os
import socket
import struct
import subprocess
import sys
import threading
import unittest

import websockets

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def run_client(*args, timeout=harness.TIMEOUT):
    return subprocess.run([harness.binary("examples/client"), *args], capture_output=True, text=True, timeout=timeout)


async def run_client_async(*args):
    process = await asyncio.create_subprocess_exec(harness.binary("examples/client"), *args,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=harness.TIMEOUT)
    return process.returncode, out.decode(), err.decode()


class AgainstStarling(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("examples/echo")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_each_message_is_sent_and_each_reply_printed_on_its_own_line(self):
        r = run_client(self.server.url("/echo"), "hello", "second message", "")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "hello\nsecond message\n\n")
        self.assertEqual(r.stderr, "")

    def test_a_host_name_is_resolved(self):
        r = run_client(f"ws://localhost:{self.server.port}/echo", "by name")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "by name\n")

    def test_a_refused_handshake_names_its_status(self):
        r = run_client(self.server.url("/no-such-endpoint"), "x")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn("handshake failed: status 404", r.stderr)

    def test_a_closed_port_is_connection_refused(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, never listening: refused
            r = run_client(f"ws://127.0.0.1:{port}/echo", "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn("connection refused", r.stderr)

    def test_bad_urls_are_refused_before_dialling(self):
        for url, why in [("http://127.0.0.1/", "not a WebSocket URL"), ("ws://127.0.0.1/#top", "fragment"),
                         ("ws://127.0.0.1:99999/", "bad port"), ("ws:///x", "no host")]:
            r = run_client(url)
            self.assertEqual(r.returncode, 1, url)
            self.assertIn(why, r.stderr, url)

    def test_no_url_is_a_usage_error(self):
        r = run_client()
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage", r.stderr)


class AgainstPythonWebsockets(unittest.IsolatedAsyncioTestCase):
    """A server nobody here wrote: it refuses unmasked client frames (RFC 6455 5.1), so every reply
    also shows the client masks."""

    async def asyncSetUp(self):
        self.closes = []  # (code, reason) the server saw from each client

        async def handler(ws, path):
            try:
                await serve_messages(ws)
            except websockets.ConnectionClosed:
                pass  # a close with another code than 1000 or 1001 ends the loop with this
            finally:
                self.closes.append((ws.close_code, ws.close_reason))

        async def serve_messages(ws):
            async for message in ws:
                if message == "fragmented":
                    await ws.send(["frag", "men", "ted ", "reply"])  # one message in four frames
                elif message == "close 4000":
                    await ws.close(4000, "goodbye from python")
                else:
                    await ws.send(message)

        self.handler = handler
        self.server = await websockets.serve(handler, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def asyncTearDown(self):
        self.server.close()
        await self.server.wait_closed()

    async def wait_closes(self, n):
        async def until():
            while len(self.closes) < n:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(until(), harness.TIMEOUT)

    async def test_echo_then_a_clean_close_with_1000(self):
        code, out, err = await run_client_async(f"ws://127.0.0.1:{self.port}/", "one", "two")
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "one\ntwo\n")
        await self.wait_closes(1)
        self.assertEqual(self.closes, [(1000, "")])

    async def test_a_fragmented_message_arrives_whole(self):
        code, out, err = await run_client_async(f"ws://127.0.0.1:{self.port}/", "fragmented")
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "fragmented reply\n")

    async def test_the_servers_close_code_and_reason_reach_the_client(self):
        code, out, err = await run_client_async(f"ws://127.0.0.1:{self.port}/", "close 4000")
        self.assertEqual(code, 1)
        self.assertIn("code 4000: goodbye from python", err)
        await self.wait_closes(1)
        self.assertEqual(self.closes[0][0], 4000)  # the close handshake completed with its code echoed

    async def test_ipv6(self):
        try:
            server6 = await websockets.serve(self.handler, "::1", 0)
        except OSError as e:
            self.skipTest(f"no IPv6 loopback here: {e}")
        try:
            port = server6.sockets[0].getsockname()[1]
            code, out, err = await run_client_async(f"ws://[::1]:{port}/", "over v6")
            self.assertEqual(code, 0, err)
            self.assertEqual(out, "over v6\n")
        finally:
            server6.close()
            await server6.wait_closed()


class RawServer:
    """One connection accepted on a free port, answered by `script(socket, request)` on a thread."""

    def __init__(self, script):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._serve, args=(script,), daemon=True)
        self.thread.start()

    def _serve(self, script):
        try:
            self.listener.settimeout(harness.TIMEOUT)
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(harness.TIMEOUT)
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                self.result = script(conn, request.decode())
        except Exception as e:  # reported by join()
            self.error = e
        finally:
            self.listener.close()

    def join(self):
        self.thread.join(harness.TIMEOUT)
        if self.error:
            raise self.error
        return self.result


def accept_key(request):
    key = next(line.split(":", 1)[1].strip() for line in request.split("\r\n")
               if line.lower().startswith("sec-websocket-key:"))
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def accepted(request, extra=""):
    return (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(request)}\r\n{extra}\r\n").encode()


def read_frame(conn):
    """One frame from the client: (opcode, payload unmasked, masked?)."""
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError("the client closed mid-frame")
            data += chunk
        return data
    b0, b1 = exactly(2)
    length = b1 & 0x7F
    if length == 126:
        length = struct.unpack("!H", exactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", exactly(8))[0]
    key = exactly(4) if b1 & 0x80 else b"\0\0\0\0"
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(exactly(length)))
    return b0 & 0x0F, payload, bool(b1 & 0x80)


def server_frame(opcode, payload, masked=False):
    header = bytes([0x80 | opcode])
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        header += bytes([mask_bit | len(payload)])
    elif len(payload) < 65536:
        header += bytes([mask_bit | 126]) + struct.pack("!H", len(payload))
    else:
        header += bytes([mask_bit | 127]) + struct.pack("!Q", len(payload))
    if masked:
        key = b"\x01\x02\x03\x04"
        return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + payload


class TheClientsStrictness(unittest.TestCase):
    def handshake_refused(self, answer):
        server = RawServer(lambda conn, request: conn.sendall(answer(request)))
        r = run_client(f"ws://127.0.0.1:{server.port}/", "x")
        server.join()
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        return r.stderr

    def test_a_wrong_accept_key_is_refused(self):
        err = self.handshake_refused(lambda request: (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: dGhpcyBpcyBub3QgaXQ=\r\n\r\n").encode())
        self.assertIn("bad Sec-WebSocket-Accept", err)

    def test_a_redirect_is_not_followed(self):
        err = self.handshake_refused(lambda request: (
            b"HTTP/1.1 302 Found\r\nLocation: ws://elsewhere.example/\r\nContent-Length: 0\r\n\r\n"))
        self.assertIn("handshake failed: status 302", err)
        self.assertIn("redirects are not followed", err)

    def test_an_extension_that_was_not_offered_is_refused(self):
        err = self.handshake_refused(lambda request: accepted(request, "Sec-WebSocket-Extensions: permessage-deflate\r\n"))
        self.assertIn("extension that was not offered", err)

    def test_a_subprotocol_that_was_not_offered_is_refused(self):
        err = self.handshake_refused(lambda request: accepted(request, "Sec-WebSocket-Protocol: chat\r\n"))
        self.assertIn("subprotocol that was not offered", err)

    def test_a_missing_upgrade_field_is_refused(self):
        err = self.handshake_refused(lambda request: (
            f"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(request)}\r\n\r\n").encode())
        self.assertIn("Upgrade: websocket", err)

    def test_the_request_is_a_well_formed_upgrade_with_a_fresh_key(self):
        seen = []

        def script(conn, request):
            seen.append(request)
            conn.sendall(accepted(request))
            op, payload, masked = read_frame(conn)
            conn.sendall(server_frame(op, payload))
            op, payload, masked = read_frame(conn)  # the close
            conn.sendall(server_frame(0x8, payload[:2]))
            return op, payload

        for _ in range(2):
            server = RawServer(script)
            r = run_client(f"ws://127.0.0.1:{server.port}/path?x=1", "hi")
            op, payload = server.join()
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual((op, payload[:2]), (0x8, struct.pack("!H", 1000)))
        first, second = seen
        self.assertTrue(first.startswith("GET /path?x=1 HTTP/1.1\r\n"), first)
        self.assertIn(f"\r\nHost: 127.0.0.1:{server.port}\r\n", second)
        self.assertIn("\r\nSec-WebSocket-Version: 13\r\n", first)
        key = lambda r: next(l for l in r.split("\r\n") if l.startswith("Sec-WebSocket-Key:"))
        self.assertNotEqual(key(first), key(second))
        self.assertEqual(len(base64.b64decode(key(first).split(":")[1].strip())), 16)

    def test_every_frame_is_masked_with_a_fresh_key(self):
        keys = []

        def script(conn, request):
            conn.sendall(accepted(request))
            for _ in range(3):
                b = conn.recv(2)
                self.assertTrue(b[1] & 0x80, "a client frame was not masked")
                length = b[1] & 0x7F
                rest = b""
                while len(rest) < 4 + length:
                    rest += conn.recv(4 + length - len(rest))
                keys.append(rest[:4])
                payload = bytes(x ^ rest[i % 4] for i, x in enumerate(rest[4:]))
                conn.sendall(server_frame(0x1, payload))
            read_frame(conn)
            conn.sendall(server_frame(0x8, struct.pack("!H", 1000)))

        server = RawServer(script)
        r = run_client(f"ws://127.0.0.1:{server.port}/", "aaaa", "aaaa", "aaaa")
        server.join()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "aaaa\naaaa\naaaa\n")
        self.assertEqual(len(set(keys)), 3, keys)

    def failed_with(self, bad_frame):
        """The server sends `bad_frame` in reply; returns the close code the client answers with."""
        def script(conn, request):
            conn.sendall(accepted(request))
            read_frame(conn)
            conn.sendall(bad_frame)
            while True:
                op, payload, masked = read_frame(conn)
                if op == 0x8:
                    self.assertTrue(masked)
                    return struct.unpack("!H", payload[:2])[0]

        server = RawServer(script)
        r = run_client(f"ws://127.0.0.1:{server.port}/", "x")
        code = server.join()
        self.assertEqual(r.returncode, 1)
        self.assertIn("closed before a reply", r.stderr)
        return code

    def test_a_masked_server_frame_fails_with_1002(self):
        self.assertEqual(self.failed_with(server_frame(0x1, b"hidden", masked=True)), 1002)

    def test_invalid_utf8_fails_with_1007(self):
        self.assertEqual(self.failed_with(server_frame(0x1, b"\xff\xfe")), 1007)

    def test_an_oversized_message_fails_with_1009(self):
        # One byte over the default 1 MiB limit; the client refuses it from the header alone.
        self.assertEqual(self.failed_with(server_frame(0x2, b"\0" * (1024 * 1024 + 1))), 1009)


class OverTls(unittest.TestCase):
    """wss:// to Starling's echo with a certificate made for the test: trusted through OpenSSL's
    SSL_CERT_FILE, checked against the host name, refused when untrusted or for another name."""

    @classmethod
    def setUpClass(cls):
        import tempfile
        import tls_certs
        cls.directory = tempfile.TemporaryDirectory()
        cls.cert, key = tls_certs.make(cls.directory.name, "client-test")
        cls.server = harness.Server("examples/echo", "--tls-cert", cls.cert, "--tls-key", key)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.directory.cleanup()

    def client(self, url, *messages, trust=True):
        env = {**os.environ, "SSL_CERT_FILE": self.cert} if trust else {**os.environ, "SSL_CERT_FILE": "/nonexistent"}
        return subprocess.run([harness.binary("examples/client"), url, *messages], capture_output=True, text=True,
                              timeout=harness.TIMEOUT, env=env)

    def test_wss_echo_by_address_and_by_name(self):
        for host in ("127.0.0.1", "localhost"):
            r = self.client(f"wss://{host}:{self.server.port}/echo", "secret", "second")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "secret\nsecond\n")

    def test_an_untrusted_certificate_is_refused(self):
        r = self.client(f"wss://127.0.0.1:{self.server.port}/echo", "x", trust=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("TLS handshake failed", r.stderr)
        self.assertIn("certificate verify failed", r.stderr)

    def test_a_certificate_for_another_name_is_refused(self):
        # Trusted, but made for elsewhere.example only: dialled as 127.0.0.1, it must not be accepted.
        import tls_certs
        cert = os.path.join(self.directory.name, "elsewhere.crt")
        key = os.path.join(self.directory.name, "elsewhere.key")
        subprocess.run([tls_certs.OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=elsewhere.example",
                        "-addext", "subjectAltName=DNS:elsewhere.example"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        with harness.Server("examples/echo", "--tls-cert", cert, "--tls-key", key) as other:
            env = {**os.environ, "SSL_CERT_FILE": cert}
            r = subprocess.run([harness.binary("examples/client"), f"wss://127.0.0.1:{other.port}/echo", "x"],
                               capture_output=True, text=True, timeout=harness.TIMEOUT, env=env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("TLS handshake failed", r.stderr)
        self.assertIn("certificate verify failed", r.stderr)

if __name__ == "__main__":
    unittest.main()
