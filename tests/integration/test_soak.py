"""A bounded soak of tests/servers/limits_server: thousands of connection cycles from many concurrent
clients that connect, echo, and leave, cleanly or abruptly (RST through SO_LINGER 0, FIN without a
close frame) at random points: before, during and after the handshake, mid-frame, mid-message, with
echoes unread, after limit violations and server-initiated closes. Seeded (STARLING_SOAK_SEED), so a
failure is reproducible.

Afterwards: the process is alive, every endpoint's connection count is back to zero, the server-wide
connection counter is too (exactly max_connections handshakes succeed, the next gets 503), and the
server's RSS (VmRSS) is within a few MiB of its value after a warm-up round of the same mix.

Under ~60 s by construction: fixed cycle counts, every wait bounded, and an overall deadline."""
import asyncio
import base64
import os
import random
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402
import limits_stats  # noqa: E402
import rawws  # noqa: E402
from rawws import BINARY, CLOSE, CONT, PING, PONG, TEXT  # noqa: E402

SEED = int(os.environ.get("STARLING_SOAK_SEED", "6455"))
WARMUP_CYCLES = int(os.environ.get("STARLING_SOAK_WARMUP", "1000"))
CYCLES = int(os.environ.get("STARLING_SOAK_CYCLES", "4000"))
CONCURRENCY = 32
MAX_CONNECTIONS = 128
RSS_SLACK_KIB = 4 * 1024
WAIT = 5.0          # any single answer from the server
HANDSHAKE_TIMEOUT_MS = 1000  # what a stalled handshake waits for; well under WAIT
SOAK_DEADLINE = 50.0  # both rounds together

# The message limit of each endpoint; /default's is README's 1 MiB, which test_limits.py covers: here its
# messages stay under 64 KiB so that a few concurrent megabyte buffers do not drown the RSS comparison.
LIMITS = {"/echo": 1000, "/big": 4000, "/frames": 4000, "/default": 64 * 1024}
PATHS = ["/echo", "/echo", "/big", "/frames", "/default"]
FRAME_LIMIT = 100  # /frames


class Failure(Exception):
    """The server did something wrong in one cycle."""




class Client:
    """One raw connection on asyncio streams."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port):
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, data):
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), WAIT)

    def reset(self):
        """Leaves with a TCP reset: SO_LINGER 0, then close."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    def finish(self):
        """Leaves with a FIN (and whatever the kernel does with unread data)."""
        self.writer.transport.close()

    async def read_head(self):
        try:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT)
        except asyncio.IncompleteReadError as e:
            raise Failure(f"connection closed during the HTTP answer: {e.partial[:80]!r}") from None
        except asyncio.TimeoutError:
            raise Failure("no HTTP answer") from None
        return rawws.parse_http_head(head[:-4])

    async def read_frame(self):
        try:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), WAIT)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack("!H", await asyncio.wait_for(self.reader.readexactly(2), WAIT))[0]
            elif length == 127:
                length = struct.unpack("!Q", await asyncio.wait_for(self.reader.readexactly(8), WAIT))[0]
            if b1 & 0x80 or b0 & 0x70:
                raise Failure(f"server frame with mask or RSV bits: {b0:#x} {b1:#x}")
            payload = await asyncio.wait_for(self.reader.readexactly(length), WAIT)
        except asyncio.IncompleteReadError:
            raise Failure("connection closed while waiting for a frame") from None
        except asyncio.TimeoutError:
            raise Failure("no frame from the server") from None
        return bool(b0 & 0x80), b0 & 0x0F, payload

    async def read_message(self):
        fin, opcode, payload = await self.read_frame()
        parts = [payload]
        while not fin:
            fin, cont, payload = await self.read_frame()
            if cont != CONT:
                raise Failure(f"opcode {cont} inside a fragmented server message")
            parts.append(payload)
        return opcode, b"".join(parts)

    async def expect(self, opcode, payload):
        got_op, got = await self.read_message()
        if (got_op, got) != (opcode, payload):
            if got_op == CLOSE:
                raise Failure(f"expected {opcode}/{len(payload)} bytes, got close {got[:2].hex()} {got[2:]!r}")
            raise Failure(f"expected {opcode}/{len(payload)} bytes, got {got_op}/{len(got)} bytes")

    async def expect_close(self, code):
        got_op, got = await self.read_message()
        if got_op != CLOSE or len(got) < 2 or struct.unpack("!H", got[:2])[0] != code:
            raise Failure(f"expected close {code}, got opcode {got_op} {got[:40]!r}")

    async def expect_eof(self, allowed=b""):
        try:
            rest = await asyncio.wait_for(self.reader.read(), WAIT)
        except asyncio.TimeoutError:
            raise Failure("the server did not close TCP") from None
        except ConnectionResetError:
            return
        if rest != allowed:
            raise Failure(f"data after the end: {rest[:40]!r}")


def request_bytes(port, path):
    key = base64.b64encode(os.urandom(16)).decode()
    request, _ = rawws.upgrade_request(port, path, key=key)
    return request, key


def payload_for(rng, limit):
    """A size inside the limit, biased to the edges (0, 1, the limit) and small sizes."""
    choice = rng.random()
    if choice < 0.1:
        size = limit
    elif choice < 0.15:
        size = 0
    else:
        size = rng.randint(1, min(limit, 2000))
    return rawws.printable(size)


class Soak:
    """Runs cycles; counts what happened; collects failures (each with its cycle number and seed)."""

    def __init__(self, port, seed):
        self.port = port
        self.seed = seed
        self.failures = []
        self.outcomes = {}
        self.refused = 0

    def note(self, what):
        self.outcomes[what] = self.outcomes.get(what, 0) + 1

    async def run(self, cycles):
        queue = iter(range(cycles))

        async def worker():
            for n in queue:
                rng = random.Random(f"{self.seed}/{n}")
                try:
                    await self.cycle(rng)
                except Failure as e:
                    self.failures.append(f"cycle {n} (seed {self.seed}): {e}")
                except (ConnectionError, OSError) as e:
                    self.failures.append(f"cycle {n} (seed {self.seed}): unexpected {type(e).__name__}: {e}")

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))

    async def cycle(self, rng):
        path = rng.choice(PATHS)
        client = await Client.open(self.port)
        request, key = request_bytes(self.port, path)
        roll = rng.random()
        try:
            if roll < 0.12:
                # Mid-handshake: part of the request, then a reset or a FIN.
                client.writer.write(request[:rng.randrange(len(request))])
                if rng.random() < 0.5:
                    await client.send(b"")
                    client.reset()
                    self.note("handshake reset")
                else:
                    await client.send(b"")
                    client.finish()
                    self.note("handshake fin")
                return
            if roll < 0.14:
                # Stalls mid-handshake: the handshake timeout drops it.
                await client.send(request[:rng.randrange(1, len(request))])
                await client.expect_eof()
                client.finish()
                self.note("handshake stalled and dropped")
                return
            if roll < 0.16:
                # Headers over the limit: 431.
                await client.send(request[:-2] + b"X-Pad: " + b"p" * 2000 + b"\r\n\r\n")
                status, _, _ = await client.read_head()
                if status != 431:
                    raise Failure(f"oversized head answered {status}")
                await client.expect_eof(allowed=b"request header fields too large")
                client.finish()
                self.note("431")
                return

            # A full handshake, sometimes with the first frame in the same segment.
            early = b""
            if rng.random() < 0.2:
                early = rawws.frame(TEXT, "early bird")
            await client.send(request + early)
            status, _, headers = await client.read_head()
            if status == 503:
                self.refused += 1
                client.finish()
                return
            if status != 101:
                raise Failure(f"handshake answered {status}")
            if headers.get("sec-websocket-accept", [None])[0] != rawws.accept_for(key):
                raise Failure("wrong Sec-WebSocket-Accept")
            if early:
                await client.expect(TEXT, b"early bird")
            await self.session(client, path, rng)
        finally:
            if not client.writer.transport.is_closing():
                client.reset()

    async def session(self, client, path, rng):
        limit = LIMITS[path]
        for _ in range(rng.randint(0, 6)):
            action = rng.random()
            if action < 0.6:
                payload = payload_for(rng, limit)
                opcode = TEXT if rng.random() < 0.5 else BINARY
                await client.send(rawws.frame(opcode, payload) if path != "/frames" or len(payload) <= FRAME_LIMIT
                                  else self.fragments(opcode, payload, FRAME_LIMIT))
                await client.expect(opcode, payload)
            elif action < 0.8:
                payload = payload_for(rng, limit)
                size = rng.randint(1, FRAME_LIMIT) if path == "/frames" else rng.randint(1, max(1, len(payload)))
                await client.send(self.fragments(BINARY, payload, size))
                await client.expect(BINARY, payload)
            else:
                data = os.urandom(rng.randint(0, 125))
                await client.send(rawws.frame(PING, data))
                await client.expect(PONG, data)

        ending = rng.random()
        if ending < 0.25:
            await client.send(rawws.frame(CLOSE, rawws.close_payload(1000)))
            await client.expect_close(1000)
            await client.expect_eof()
            client.finish()
            self.note("clean close")
        elif ending < 0.40:
            client.reset()
            self.note("reset between messages")
        elif ending < 0.55:
            # Mid-frame: a header and part of its payload (or part of the header), then RST or FIN.
            whole = rawws.frame(BINARY, rawws.printable(rng.randint(2, min(limit, 900))))
            await client.send(whole[:rng.randint(1, len(whole) - 1)])
            if rng.random() < 0.5:
                client.reset()
                self.note("reset mid-frame")
            else:
                client.finish()
                self.note("fin mid-frame")
        elif ending < 0.62:
            # Mid-message: the first fragment of a message, then gone.
            await client.send(rawws.frame(TEXT, "first half", fin=False))
            client.reset() if rng.random() < 0.5 else client.finish()
            self.note("gone mid-message")
        elif ending < 0.70:
            client.finish()
            self.note("fin without close frame")
        elif ending < 0.78:
            # Sends and leaves without reading the echo: the server writes to a dead peer.
            await client.send(rawws.frame(BINARY, rawws.printable(min(limit, 4000))) * 4)
            client.reset()
            self.note("reset with echoes unread")
        elif ending < 0.86 and path != "/default":
            # One byte over the limit: 1009, then a close answer, a reset or nothing.
            await client.send(rawws.frame(BINARY, rawws.printable(limit + 1)))
            await client.expect_close(1009)
            await self.after_server_close(client, rng)
            self.note("1009")
        else:
            await client.send(rawws.frame(TEXT, "please close"))
            await client.expect_close(4000)
            await self.after_server_close(client, rng)
            self.note("server closed")

    async def after_server_close(self, client, rng):
        answer = rng.random()
        if answer < 0.5:
            await client.send(rawws.frame(CLOSE, rawws.close_payload(1000)))
            await client.expect_eof()
            client.finish()
        elif answer < 0.75:
            client.reset()
        else:
            client.finish()

    @staticmethod
    def fragments(opcode, payload, size):
        pieces = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
        return b"".join(rawws.frame(opcode if i == 0 else CONT, piece, fin=(i == len(pieces) - 1))
                        for i, piece in enumerate(pieces))


class SoakTest(unittest.TestCase):
    def setUp(self):
        # A 1 s handshake timeout, not limits_server's 300 ms: other tests run beside this one, and a
        # scheduling stall of 300 ms dropped complete handshakes unanswered (seen once: five clients
        # at once found the connection closed before any answer). The stalled cycles still meet it.
        self.server = harness.Server("tests/limits_server", "--max-connections", str(MAX_CONNECTIONS),
                                     "--handshake-timeout-ms", str(HANDSHAKE_TIMEOUT_MS))
        self.addCleanup(self.server.stop)

    def counts(self):
        return limits_stats.connection_counts(self.server.port)

    def wait_for_zero_counts(self):
        """Every endpoint's connection count reaches zero within WAIT seconds (each look a round trip)."""
        deadline = time.monotonic() + WAIT
        while True:
            counts = self.counts()
            if not any(counts.values()):
                return
            if time.monotonic() > deadline:
                self.fail(f"connection counts did not return to zero within {WAIT} s: {counts}")

    def round(self, cycles, seed):
        soak = Soak(self.server.port, seed)
        started = time.monotonic()
        harness.run(soak.run(cycles))
        took = time.monotonic() - started
        self.assertTrue(self.server.alive(), f"server died: {self.server.stderr()}")
        self.assertEqual(soak.failures, [], f"{len(soak.failures)} failing cycles; first ones: {soak.failures[:10]}")
        self.assertEqual(soak.refused, 0, "503 during the soak: the server held slots of departed clients")
        self.wait_for_zero_counts()
        return soak, took

    def assert_server_wide_count_is_zero(self):
        """Exactly MAX_CONNECTIONS handshakes succeed and the next is answered 503: the server-wide
        counter (handshaking and upgraded connections) leaked nothing."""
        conns = []
        try:
            for _ in range(MAX_CONNECTIONS):
                conns.append(rawws.Conn(self.server.port, "/echo"))
            with self.assertRaisesRegex(rawws.ProtocolError, "503"):
                conns.append(rawws.Conn(self.server.port, "/echo"))
            conns[-1].send(TEXT, "last one")
            conns[-1].expect(TEXT, "last one")
        finally:
            for conn in conns:
                conn.close_socket()

    def test_soak(self):
        # Sanitizer builds skip the RSS comparison. They run every cycle: the Python clients, not the
        # server, set the pace (about 4 s for the soak round under ASan or TSan on two cores).
        sanitized = harness.instrumented(harness.binary("tests/limits_server"))
        warmup_cycles, cycles = WARMUP_CYCLES, CYCLES
        started = time.monotonic()
        warmup, warmup_took = self.round(warmup_cycles, SEED)
        rss_after_warmup = harness.vm_rss_kib(self.server.process.pid)
        soak, soak_took = self.round(cycles, SEED + 1)
        rss_after_soak = harness.vm_rss_kib(self.server.process.pid)
        total = time.monotonic() - started
        print(f"\nsoak seed {SEED}{' (sanitizer build)' if sanitized else ''}: warm-up {warmup_cycles} cycles "
              f"in {warmup_took:.1f} s, soak {cycles} cycles in {soak_took:.1f} s ({CONCURRENCY} concurrent); "
              f"VmRSS {rss_after_warmup} KiB after warm-up, {rss_after_soak} KiB after the soak; "
              f"outcomes {dict(sorted(soak.outcomes.items()))}", file=sys.stderr)
        self.assertLess(total, SOAK_DEADLINE, "the soak took too long")
        if not sanitized:
            self.assertLess(rss_after_soak - rss_after_warmup, RSS_SLACK_KIB,
                            f"VmRSS grew from {rss_after_warmup} KiB to {rss_after_soak} KiB")
        self.assert_server_wide_count_is_zero()
        self.assertTrue(self.server.alive())
        self.assertEqual(self.server.stop(), 0, self.server.stderr())


if __name__ == "__main__":
    unittest.main(verbosity=2)
