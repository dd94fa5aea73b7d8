"""examples/client, Starling's coroutine client, against Starling's own echo server and against
servers nobody here wrote: Python's websockets server (echo, fragmented messages, its close codes,
IPv6) and raw sockets that answer the handshake wrongly or send frames a client must refuse. Each
check is on what a user sees (the replies printed, the exit status, the error on stderr) and on
the wire (the close frame the client sends back, its code).

Compression (permessage-deflate) with tests/clients/compression_client: against Starling's
deflate_server through a proxy that records every frame (RSV1 both ways, masked from the client),
against Python's websockets server (which compresses by default) up to the message size limit and
past it (1009), and against raw servers whose answers to the offer are wrong or whose compressed
frames are corrupt (1007)."""
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
import zlib

import websockets

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def run_client(*args, timeout=harness.TIMEOUT, program="examples/client"):
    return subprocess.run([harness.binary(program), *args], capture_output=True, text=True, timeout=timeout)


def run_compression_client(*args):
    return run_client(*args, program="tests/compression_client")


async def run_client_async(*args, program="examples/client"):
    process = await asyncio.create_subprocess_exec(harness.binary(program), *args,
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


class WithPythonServer(unittest.IsolatedAsyncioTestCase):
    """A Python websockets server made by asyncSetUp as self.server, its handlers appending the close
    code they saw to self.closes."""

    async def asyncTearDown(self):
        self.server.close()
        await self.server.wait_closed()

    async def wait_closes(self, n):
        async def until():
            while len(self.closes) < n:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(until(), harness.TIMEOUT)


class AgainstPythonWebsockets(WithPythonServer):
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
    b0, payload, masked = read_frame_bits(conn)
    return b0 & 0x0F, payload, masked


def read_frame_bits(conn):
    """One frame from the client: (its first byte, with FIN, RSV and opcode; payload unmasked; masked?)."""
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
    return b0, payload, bool(b1 & 0x80)


def server_frame(opcode, payload, masked=False, rsv1=False):
    header = bytes([0x80 | (0x40 if rsv1 else 0) | opcode])
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
    def handshake_refused(self, answer, program="examples/client", args=("x",)):
        server = RawServer(lambda conn, request: conn.sendall(answer(request)))
        r = run_client(f"ws://127.0.0.1:{server.port}/", *args, program=program)
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
        err = self.handshake_refused(lambda request: accepted(request, "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"))
        self.assertIn("the server chose an extension that was not offered: x-webkit-deflate-frame", err)
        # permessage-deflate too, from a client that did not offer it.
        err = self.handshake_refused(lambda request: accepted(request, "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                                     program="tests/compression_client", args=("--off", "text:10"))
        self.assertIn("the server chose an extension that was not offered: permessage-deflate", err)

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

    def failed_with(self, bad_frame, extension=""):
        """The server (answering the compression offer with `extension`, a whole field line, or not at
        all) sends `bad_frame` in reply; returns the close code the client answers with."""
        def script(conn, request):
            conn.sendall(accepted(request, extension))
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

    def test_rsv1_without_compression_agreed_fails_with_1002(self):
        # The client offered compression; this server declined it, then sets RSV1 anyway.
        self.assertEqual(self.failed_with(server_frame(0x1, deflated(b"hello"), rsv1=True)), 1002)

    def test_corrupt_compressed_data_fails_with_1007(self):
        agreed = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        self.assertEqual(self.failed_with(server_frame(0x1, b"\xff\xff\xff\xff garbage", rsv1=True), agreed), 1007)

    def test_a_compressed_bomb_fails_with_1009(self):
        # 1 KiB on the wire that inflates to 2 MiB: the client stops at its 1 MiB limit.
        agreed = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
        bomb = deflated(b"\0" * (2 * 1024 * 1024))
        self.assertLess(len(bomb), 4096)
        self.assertEqual(self.failed_with(server_frame(0x2, bomb, rsv1=True), agreed), 1009)

    def test_bad_answers_to_the_compression_offer_fail_the_handshake(self):
        def answer(extensions):
            return lambda request: accepted(request, "".join(f"Sec-WebSocket-Extensions: {e}\r\n" for e in extensions))
        for extensions, why in [
                (["permessage-deflate; server_max_window_bits=16"], "server_max_window_bits=16 is not 8 to 15"),
                (["permessage-deflate; server_max_window_bits=7"], "server_max_window_bits=7 is not 8 to 15"),
                (["permessage-deflate; client_max_window_bits"], "client_max_window_bits needs a value in a response"),
                (["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
                 "server_no_context_takeover given twice"),
                (["permessage-deflate", "permessage-deflate"], "the server answered permessage-deflate twice"),
                (["permessage-deflate, permessage-deflate; client_no_context_takeover"],
                 "the server answered permessage-deflate twice"),
                (["permessage-deflate; x_unknown"], "permessage-deflate parameter that was not offered: x_unknown")]:
            err = self.handshake_refused(answer(extensions))
            self.assertIn(f"client: handshake failed: {why}", err, extensions)
        # Offers only compression_client can make, answered wrongly: client_max_window_bits when it
        # was not offered; no server context takeover asked for and not granted; a larger window
        # than was asked for.
        err = self.handshake_refused(answer(["permessage-deflate; client_max_window_bits=12"]),
                                     program="tests/compression_client", args=("--no-client-window-offer", "text:10"))
        self.assertIn("handshake failed: client_max_window_bits was not offered", err)
        err = self.handshake_refused(answer(["permessage-deflate"]), program="tests/compression_client",
                                     args=("--server-no-context-takeover", "text:10"))
        self.assertIn("handshake failed: the server did not agree to server_no_context_takeover", err)
        err = self.handshake_refused(answer(["permessage-deflate; server_max_window_bits=12"]),
                                     program="tests/compression_client", args=("--server-max-window-bits", "10", "text:10"))
        self.assertIn("handshake failed: server_max_window_bits=12 is more than was offered", err)


def deflated(data, wbits=15):
    """`data` compressed as permessage-deflate sends it: raw deflate, sync flush, tail removed."""
    c = zlib.compressobj(wbits=-wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\0\0\xff\xff")
    return out[:-4]


def inflated(data, wbits=15):
    return zlib.decompressobj(-wbits).decompress(data + b"\0\0\xff\xff")


class RecordingProxy:
    """Forwards one TCP connection to `upstream_port`, keeping every byte each way: after it ends,
    frames('up') and frames('down') are the frame headers each side sent behind its handshake."""

    def __init__(self, upstream_port):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.upstream_port = upstream_port
        self.bytes = {"up": bytearray(), "down": bytearray()}
        self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            self.listener.settimeout(harness.TIMEOUT)
            client, _ = self.listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=harness.TIMEOUT)
            pumps = [threading.Thread(target=self._pump, args=(client, upstream, "up"), daemon=True),
                     threading.Thread(target=self._pump, args=(upstream, client, "down"), daemon=True)]
            for p in pumps:
                p.start()
            for p in pumps:
                p.join(harness.TIMEOUT)
            client.close()
            upstream.close()
        except Exception as e:  # reported by frames()
            self.error = e
        finally:
            self.listener.close()

    def _pump(self, source, sink, direction):
        source.settimeout(harness.TIMEOUT)
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            self.bytes[direction] += data
            sink.sendall(data)

    def frames(self, direction):
        """[(rsv1, opcode, masked, payload length)] of every frame sent that way."""
        self.thread.join(harness.TIMEOUT)
        if self.error:
            raise self.error
        data = bytes(self.bytes[direction])
        at = data.index(b"\r\n\r\n") + 4
        out = []
        while at + 2 <= len(data):
            b0, b1 = data[at], data[at + 1]
            length, at = b1 & 0x7F, at + 2
            if length == 126:
                length, at = struct.unpack("!H", data[at:at + 2])[0], at + 2
            elif length == 127:
                length, at = struct.unpack("!Q", data[at:at + 8])[0], at + 8
            if b1 & 0x80:
                at += 4
            out.append((bool(b0 & 0x40), b0 & 0x0F, bool(b1 & 0x80), length))
            at += length
        return out


def data_frames(frames):
    return [f for f in frames if f[1] in (0x0, 0x1, 0x2)]


class CompressionAgainstStarling(unittest.TestCase):
    """compression_client through a recording proxy to deflate_server's endpoints: what was agreed,
    the echoes intact, and RSV1 on the wire both ways exactly for the messages at the threshold or over."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("tests/deflate_server")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def through_proxy(self, path, *args):
        proxy = RecordingProxy(self.server.port)
        r = run_compression_client(f"ws://127.0.0.1:{proxy.port}{path}", *args)
        return r, proxy.frames("up"), proxy.frames("down")

    def test_the_default_endpoint_compresses_both_ways_from_the_threshold(self):
        sizes = [10, 255, 256, 5000, 70000, 300000]
        r, up, down = self.through_proxy("/echo", *[f"text:{n}" for n in sizes], "binary:4000")
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertEqual(r.stdout, "extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\n" +
                         "".join(f"echo {n} ok\n" for n in sizes + [4000]))
        up, down = data_frames(up), data_frames(down)
        self.assertEqual([rsv1 for rsv1, *_ in up], [n >= 256 for n in sizes + [4000]])
        self.assertEqual([rsv1 for rsv1, *_ in down], [n >= 256 for n in sizes + [4000]])
        self.assertTrue(all(masked for _, _, masked, _ in up))
        self.assertFalse(any(masked for _, _, masked, _ in down))
        # Compressed, the 300000-byte message is a fraction of its size on the wire, both ways.
        self.assertLess(up[5][3], 300000 // 2)
        self.assertLess(down[5][3], 300000 // 2)

    def test_context_takeover_both_ways(self):
        r, up, down = self.through_proxy("/takeover", *["text:3000"] * 5)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertEqual(r.stdout, "extensions: permessage-deflate\n" + "echo 3000 ok\n" * 5)
        self.assertTrue(all(rsv1 for rsv1, *_ in data_frames(up) + data_frames(down)))

    def test_the_servers_small_windows(self):
        # /window answers server_max_window_bits=10 and client_max_window_bits=9, with threshold 0.
        r, up, down = self.through_proxy("/window", "text:10", "text:50000", "binary:20000")
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertEqual(r.stdout.splitlines(), [
            "extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10; client_max_window_bits=9", "echo 10 ok", "echo 50000 ok", "echo 20000 ok"])
        self.assertEqual([rsv1 for rsv1, *_ in data_frames(up)], [False, True, True])  # our threshold is 256
        self.assertEqual([rsv1 for rsv1, *_ in data_frames(down)], [True, True, True])

    def test_what_the_client_asks_for_is_answered(self):
        r, up, down = self.through_proxy("/takeover", "--client-no-context-takeover", "--server-no-context-takeover",
                                         "--server-max-window-bits", "11", "--threshold", "0", "text:1", "text:9000")
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertEqual(r.stdout.splitlines(), [
            "extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=11", "echo 1 ok", "echo 9000 ok"])
        self.assertEqual([rsv1 for rsv1, *_ in data_frames(up)], [True, True])

    def test_off_sends_and_receives_plain_frames(self):
        r, up, down = self.through_proxy("/echo", "--off", "text:5000")
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertEqual(r.stdout, "extensions: none\necho 5000 ok\n")
        self.assertFalse(any(rsv1 for rsv1, *_ in up + down))

    def test_the_servers_limit_applies_to_what_the_client_compressed(self):
        # /small inflates at most 64 KiB: at the limit is served, one byte over is closed with 1009.
        r = run_compression_client(self.server.url("/small"), "text:65536", "text:65537")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout.splitlines()[1:], ["echo 65536 ok", "closed 1009 message over the maximum message size"])


class CompressionAgainstPythonWebsockets(WithPythonServer):
    """Python's websockets server compresses by default (context takeover both ways, 12-bit windows);
    it records the RSV1 bit of every data frame it receives and sends."""

    async def asyncSetUp(self):
        from websockets.extensions import permessage_deflate
        self.received, self.sent = [], []
        self.closes = []
        original_decode, original_encode = permessage_deflate.PerMessageDeflate.decode, permessage_deflate.PerMessageDeflate.encode
        received, sent = self.received, self.sent

        def decode(extension, frame, *, max_size=None):
            if frame.opcode in (0, 1, 2):
                received.append(frame.rsv1)
            return original_decode(extension, frame, max_size=max_size)

        def encode(extension, frame):
            out = original_encode(extension, frame)
            if out.opcode in (0, 1, 2):
                sent.append(out.rsv1)
            return out

        permessage_deflate.PerMessageDeflate.decode, permessage_deflate.PerMessageDeflate.encode = decode, encode
        self.addCleanup(setattr, permessage_deflate.PerMessageDeflate, "decode", original_decode)
        self.addCleanup(setattr, permessage_deflate.PerMessageDeflate, "encode", original_encode)

        async def echo(ws, path):
            try:
                async for message in ws:
                    await ws.send(message)
            except websockets.ConnectionClosed:
                pass
            finally:
                self.closes.append(ws.close_code)

        # It takes larger messages than the client does, so the client's own limit is what is tested.
        self.server = await websockets.serve(echo, "127.0.0.1", 0, max_size=8 * 1024 * 1024)
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"

    async def test_echoes_up_to_the_limit_with_context_takeover(self):
        limit = 1024 * 1024
        sizes = [100, 2000, 2000, 70000, limit - 1, limit]
        code, out, err = await run_client_async(self.url, *[f"text:{n}" for n in sizes], "binary:50000",
                                                program="tests/compression_client")
        self.assertEqual(code, 0, err + out)
        self.assertEqual(out, "extensions: permessage-deflate; server_max_window_bits=12; client_max_window_bits=12\n" +
                         "".join(f"echo {n} ok\n" for n in sizes + [50000]))
        self.assertEqual(self.received, [n >= 256 for n in sizes + [50000]])  # our threshold
        self.assertTrue(all(self.sent), self.sent)  # Python compresses everything
        await self.wait_closes(1)
        self.assertEqual(self.closes, [1000])

    async def test_a_reply_over_the_limit_is_closed_with_1009(self):
        code, out, err = await run_client_async(self.url, "text:5000", f"text:{1024 * 1024 + 1}",
                                                program="tests/compression_client")
        self.assertEqual(code, 1, err)
        self.assertEqual(out.splitlines()[1:], ["echo 5000 ok", "closed 1009 message over the maximum message size"])
        await self.wait_closes(1)
        self.assertEqual(self.closes, [1009])  # the close the client sent
        self.assertEqual(self.received, [True, True])

    async def test_no_context_takeover_asked_and_granted(self):
        code, out, err = await run_client_async(self.url, "--client-no-context-takeover", "--server-no-context-takeover",
                                                "--client-max-window-bits", "10", "text:3000", "text:3000",
                                                program="tests/compression_client")
        self.assertEqual(code, 0, err + out)
        self.assertEqual(out.splitlines(), [
            "extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=12; client_max_window_bits=10", "echo 3000 ok", "echo 3000 ok"])
        self.assertEqual(self.received, [True, True])

    async def test_a_client_that_does_not_offer_gets_plain_frames(self):
        code, out, err = await run_client_async(self.url, "--off", "text:3000", program="tests/compression_client")
        self.assertEqual(code, 0, err + out)
        self.assertEqual(out, "extensions: none\necho 3000 ok\n")
        self.assertEqual((self.received, self.sent), ([], []))


class CompressionAgainstARawServer(unittest.TestCase):
    """A server written here with Python's zlib: it inflates what the client sent (RSV1 set, masked),
    and answers compressed in turn."""

    def test_a_round_trip_decoded_by_zlib(self):
        def script(conn, request):
            offer = next(l for l in request.split("\r\n") if l.lower().startswith("sec-websocket-extensions:"))
            conn.sendall(accepted(request, "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; "
                                           "server_no_context_takeover\r\n"))
            b0, payload, masked = read_frame_bits(conn)
            text = inflated(payload)
            conn.sendall(server_frame(0x1, deflated(text), rsv1=True))
            read_frame(conn)  # the close
            conn.sendall(server_frame(0x8, struct.pack("!H", 1000)))
            return offer, b0, masked, len(payload), text

        server = RawServer(script)
        r = run_compression_client(f"ws://127.0.0.1:{server.port}/", "text:20000")
        offer, b0, masked, wire_size, text = server.join()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[1:], ["echo 20000 ok"])
        self.assertEqual(offer, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        self.assertEqual(b0, 0x80 | 0x40 | 0x1)  # FIN, RSV1, text
        self.assertTrue(masked)
        self.assertEqual(len(text), 20000)
        self.assertLess(wire_size, 20000 // 2)


    def test_held_to_an_8_bit_window_the_client_sends_uncompressed(self):
        # zlib cannot compress within 256 bytes of window; RFC 7692 lets any message go uncompressed,
        # so the client keeps the agreement and inflates what the server compresses.
        def script(conn, request):
            conn.sendall(accepted(request, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=8\r\n"))
            b0, payload, masked = read_frame_bits(conn)
            conn.sendall(server_frame(0x1, deflated(payload), rsv1=True))
            read_frame(conn)
            conn.sendall(server_frame(0x8, struct.pack("!H", 1000)))
            return b0, len(payload)

        server = RawServer(script)
        r = run_compression_client(f"ws://127.0.0.1:{server.port}/", "text:5000")
        b0, size = server.join()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[1:], ["echo 5000 ok"])
        self.assertEqual((b0, size), (0x81, 5000))  # FIN, text, RSV1 clear: the plain message


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
