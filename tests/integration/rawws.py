"""A raw RFC 6455 client for conformance tests, Python standard library only: the opening handshake,
client frames written by hand (masked unless told otherwise, any RSV bits, opcode, FIN and length
encoding), server frames read and checked by hand. Every read has a socket timeout; no sleeps."""
import base64
import hashlib
import os
import socket
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WAIT = 5.0  # seconds to wait for any single answer from the server

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# An ssl.SSLContext to speak TLS on every connection this module opens (wss://), or None for plain
# TCP. test_conformance_tls and test_tls set it (tls_certs.client_context()).
TLS = None


def open_socket(port, rcvbuf=None):
    """A connected socket to 127.0.0.1:port with the module's timeout, TCP_NODELAY, and TLS when
    TLS is set. `rcvbuf` is set before connecting, so the TCP window is small too."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(WAIT)
    sock.connect(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if TLS is not None:
        sock = TLS.wrap_socket(sock, server_hostname="127.0.0.1")
    return sock
OPCODE_NAMES = {CONT: "continuation", TEXT: "text", BINARY: "binary", CLOSE: "close", PING: "ping", PONG: "pong"}


class ProtocolError(AssertionError):
    """The server did something the test did not expect (a test failure, not an error)."""


def accept_for(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def mask_bytes(payload, key):
    """XORs payload with the 4-byte key, fast for large payloads."""
    if not payload:
        return b""
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def frame_header(opcode, length, fin=True, rsv=0, masked=True, length_form=None):
    """The header of a frame without its mask key. length_form forces 7, 16 or 64-bit length encoding."""
    first = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mask_bit = 0x80 if masked else 0
    if length_form is None:
        length_form = 7 if length < 126 else 16 if length < 65536 else 64
    if length_form == 7:
        return struct.pack("!BB", first, mask_bit | length)
    if length_form == 16:
        return struct.pack("!BBH", first, mask_bit | 126, length)
    return struct.pack("!BBQ", first, mask_bit | 127, length)


def frame(opcode, payload=b"", fin=True, rsv=0, masked=True, announced=None):
    """A complete client frame. announced overrides the length written in the header."""
    if isinstance(payload, str):
        payload = payload.encode()
    header = frame_header(opcode, len(payload) if announced is None else announced, fin, rsv, masked)
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + mask_bytes(payload, key)


def close_payload(code=None, reason=b""):
    if isinstance(reason, str):
        reason = reason.encode()
    return b"" if code is None else struct.pack("!H", code) + reason


def printable(n):
    """n random ASCII letters (valid UTF-8 of any length)."""
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-"
    table = bytes(alphabet[i % len(alphabet)] for i in range(256))
    return os.urandom(n).translate(table)


class Frame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    def __repr__(self):
        name = OPCODE_NAMES.get(self.opcode, hex(self.opcode))
        shown = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        return f"<{name} fin={int(self.fin)} rsv={self.rsv} {len(self.payload)} bytes {shown!r}>"

    def close_code(self):
        """(code or None, reason bytes) of a close frame."""
        if len(self.payload) == 0:
            return None, b""
        if len(self.payload) == 1:
            raise ProtocolError(f"server sent a close frame with a 1-byte payload: {self.payload!r}")
        return struct.unpack("!H", self.payload[:2])[0], self.payload[2:]


def read_http_response(sock, limit=65536):
    """Reads an HTTP response head (until CRLFCRLF or EOF). Returns (head bytes, bytes after it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            raise ProtocolError(f"no complete HTTP response within {WAIT} s; got {data!r}") from None
        except ConnectionResetError:
            if data:
                break
            raise ProtocolError("connection reset before any HTTP response") from None
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ProtocolError("HTTP response head too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def parse_http_head(head):
    """(status code, reason, {lower-case name: [values]}) of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP status line: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"malformed response header line {line!r}")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


def http_exchange(port, request):
    """Sends raw request bytes on a new connection; returns (status, reason, headers, sock)."""
    sock = open_socket(port)
    try:
        sock.sendall(request)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer (and close) before reading everything; read what it said
    head, _ = read_http_response(sock)
    if not head:
        sock.close()
        raise ProtocolError("server closed the connection without an HTTP response")
    status, reason, headers = parse_http_head(head)
    return status, reason, headers, sock


def http_answer(port, request):
    """Sends `request` on a new connection and reads the answer until the server closes it. Returns
    (status, headers, body). Fails if the server does not close the connection after answering."""
    sock = open_socket(port)
    try:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break  # an answer followed by a reset still counts as answered and closed
            except socket.timeout:
                raise AssertionError(f"the server did not close the connection; got {data!r}") from None
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        raise AssertionError("the server closed the connection without an answer")
    status, _, headers = parse_http_head(head)
    return status, headers, body


def upgrade_request(port, path="/echo", key=None, method="GET", version="HTTP/1.1", headers=None):
    """An opening handshake request. headers: ordered list of (name, value); None values are omitted.
    The defaults are Host, Upgrade: websocket, Connection: Upgrade, the key and version 13."""
    if key is None:
        key = base64.b64encode(os.urandom(16)).decode()
    fields = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
    for name, value in headers or []:
        fields[name] = value
    text = f"{method} {path} {version}\r\n"
    for name, value in fields.items():
        if value is not None:
            text += f"{name}: {value}\r\n"
    return (text + "\r\n").encode(), key


class Conn:
    """An open WebSocket connection on a raw socket."""

    def __init__(self, port, path="/echo", headers=None, rcvbuf=None):
        """`rcvbuf`: a small receive buffer (SO_RCVBUF, set before connecting so the TCP window is
        small too) for a client meant to fall behind."""
        request, key = upgrade_request(port, path, headers=headers)
        self.sock = open_socket(port, rcvbuf)
        self.sock.sendall(request)
        head, self.buffer = read_http_response(self.sock)
        status, reason, self.response_headers = parse_http_head(head)
        if status != 101:
            self.sock.close()
            raise ProtocolError(f"handshake answered {status} {reason}, expected 101")
        accept = self.response_headers.get("sec-websocket-accept", [None])[0]
        if accept != accept_for(key):
            self.sock.close()
            raise ProtocolError(f"Sec-WebSocket-Accept {accept!r}, expected {accept_for(key)!r}")
        self.eof = False
        # permessage-deflate agreed: RSV1 may then mark the first frame of a server message.
        self.deflate = any(v.split(";")[0].strip() == "permessage-deflate"
                           for v in self.response_headers.get("sec-websocket-extensions", []))

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- sending ----

    def send_raw(self, data, chunk=None):
        """Sends bytes, whole or in TCP chunks of `chunk` bytes (TCP_NODELAY: one segment each)."""
        if chunk is None:
            self.sock.sendall(data)
        else:
            for i in range(0, len(data), chunk):
                self.sock.sendall(data[i:i + chunk])

    def send(self, opcode, payload=b"", fin=True, rsv=0, masked=True, chunk=None):
        self.send_raw(frame(opcode, payload, fin, rsv, masked), chunk)

    def send_close(self, code=None, reason=b""):
        self.send(CLOSE, close_payload(code, reason))

    # ---- receiving ----

    def _fill(self, n, what):
        while len(self.buffer) < n:
            try:
                chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            except socket.timeout:
                raise ProtocolError(f"timed out after {WAIT} s waiting for {what} "
                                    f"(have {len(self.buffer)} of {n} bytes)") from None
            except ConnectionResetError:
                raise ProtocolError(f"connection reset by the server while waiting for {what}") from None
            if not chunk:
                self.eof = True
                raise ProtocolError(f"server closed TCP while waiting for {what} "
                                    f"(have {len(self.buffer)} of {n} bytes)")
            self.buffer += chunk

    def _take(self, n, what):
        self._fill(n, what)
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def recv_frame(self, what="a frame"):
        """Reads one server frame and checks the server's own obligations (no mask, RSV 0, valid
        opcode, control frames short and unfragmented, minimal length encoding)."""
        b0, b1 = self._take(2, what)
        fin, rsv, opcode = bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF
        if b1 & 0x80:
            raise ProtocolError("server sent a masked frame")
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2, what))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8, what))[0]
            if length >> 63:
                raise ProtocolError("server sent a 64-bit length with the top bit set")
        if rsv and not (rsv == 4 and self.deflate and opcode in (TEXT, BINARY)):
            raise ProtocolError(f"server sent a frame with RSV bits {rsv:#x}")
        if opcode not in OPCODE_NAMES:
            raise ProtocolError(f"server sent reserved opcode {opcode:#x}")
        if opcode >= 8 and (length > 125 or not fin):
            raise ProtocolError(f"server sent an invalid control frame (opcode {opcode:#x}, {length} bytes, fin={fin})")
        payload = self._take(length, what)
        return Frame(fin, rsv, opcode, payload)

    def recv_message(self, what="a message"):
        """The next data message, reassembled (opcode, payload), or the next control frame as
        (opcode, payload) when one comes first (control frames inside a fragmented server message
        are returned as a ProtocolError, to keep the helper simple)."""
        first = self.recv_frame(what)
        if first.opcode >= 8:
            return first.opcode, first.payload
        if first.opcode == CONT:
            raise ProtocolError("server sent a continuation frame without a message start")
        parts = [first.payload]
        fin = first.fin
        while not fin:
            f = self.recv_frame(what)
            if f.opcode != CONT:
                raise ProtocolError(f"server interleaved {f!r} in a fragmented message")
            parts.append(f.payload)
            fin = f.fin
        return first.opcode, b"".join(parts)

    def expect(self, opcode, payload, what=None):
        """The next message (or control frame) must be opcode with this payload."""
        if isinstance(payload, str):
            payload = payload.encode()
        name = OPCODE_NAMES.get(opcode, hex(opcode))
        got_op, got = self.recv_message(what or f"{name} of {len(payload)} bytes")
        if got_op != opcode or got != payload:
            shown = got if len(got) <= 60 else got[:60] + b"..."
            if got_op == CLOSE:
                code, reason = Frame(True, 0, CLOSE, got).close_code()
                raise ProtocolError(f"expected {name} of {len(payload)} bytes, got close {code} {reason!r}")
            raise ProtocolError(f"expected {name} of {len(payload)} bytes, got "
                                f"{OPCODE_NAMES.get(got_op, got_op)} of {len(got)} bytes {shown!r}")

    def expect_close(self, codes):
        """The next frame must be a close frame whose code is in codes (None = empty payload).
        Its reason must be valid UTF-8. Returns (code, reason)."""
        if not isinstance(codes, (list, tuple, set)):
            codes = [codes]
        f = self.recv_frame(f"a close frame with code {codes}")
        if f.opcode != CLOSE:
            raise ProtocolError(f"expected a close frame with code {codes}, got {f!r}")
        code, reason = f.close_code()
        try:
            reason.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(f"server close reason is not valid UTF-8: {reason!r}") from None
        if code not in codes:
            raise ProtocolError(f"expected close code {codes}, got close {code} {reason!r}")
        return code, reason

    def expect_eof(self):
        """After its close frame the server must close TCP: recv returns b"" within the timeout and
        nothing else arrives before."""
        if self.buffer:
            raise ProtocolError(f"data after the server's close frame: {self.buffer[:60]!r}")
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                raise ProtocolError(f"data after the server's close frame: {chunk[:60]!r}")
        except socket.timeout:
            raise ProtocolError(f"server did not close TCP within {WAIT} s after its close frame") from None
        except ConnectionResetError:
            raise ProtocolError("server reset TCP (RST) instead of closing it (FIN) after its close frame") from None
        finally:
            self.close_socket()

    def expect_fail(self, code):
        """The server fails the connection: close frame with code, then TCP closed."""
        result = self.expect_close(code)
        self.expect_eof()
        return result
