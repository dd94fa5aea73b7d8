"""Protocol conformance of examples/echo over raw sockets (RFC 6455): the cases of
the Autobahn testsuite families 1-7 (framing, pings and pongs, reserved bits, opcodes, fragmentation,
UTF-8, close) and 12-13 (permessage-deflate), the limits (masking, frame and message size) and the opening handshake errors.
Frames are written and read by hand (tests/integration/rawws.py); Python standard library only.

Every case that makes the server fail the connection checks the close code, that the server then
closes TCP, and that the server still serves a fresh connection. Each case is its own test method,
named after its Autobahn case where there is one."""
import base64
import os
import sys
import unittest

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import harness  # noqa: E402
import rawws  # noqa: E402
from rawws import BINARY, CLOSE, CONT, PING, PONG, TEXT, frame, printable  # noqa: E402

MiB = 1024 * 1024
PROTOCOL_ERROR, INVALID_PAYLOAD, TOO_BIG = 1002, 1007, 1009


class Conformance(unittest.TestCase):
    server = None
    server_args = ()  # test_conformance_tls.py runs the same cases over wss://

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("examples/echo", *cls.server_args)

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.stop()

    def setUp(self):
        # A server that died in an earlier case is restarted, so one crash does not fail every later
        # case; the case that crashed it has already failed its health check.
        if not self.server.alive():
            type(self).server = harness.Server("examples/echo", *self.server_args)

    # ---- helpers ----

    def connect(self, **kwargs):
        conn = rawws.Conn(self.server.port, **kwargs)
        self.addCleanup(conn.close_socket)
        return conn

    def assert_healthy(self):
        """The server process lives and a fresh connection echoes text and binary, then closes cleanly."""
        self.assertTrue(self.server.alive(), f"server died: {self.server.stderr()}")
        conn = self.connect()
        conn.send(TEXT, "still alive?")
        conn.expect(TEXT, "still alive?")
        conn.send(BINARY, b"\x00\xff\x01")
        conn.expect(BINARY, b"\x00\xff\x01")
        conn.send_close(1000)
        conn.expect_close(1000)
        conn.expect_eof()

    def fails(self, conn, code):
        """The server fails the connection with `code`, closes TCP, and stays healthy."""
        conn.expect_fail(code)
        self.assert_healthy()

    def closes_normally(self, conn, code=1000, expected=None):
        """The client closes with `code`; the server answers with a close frame (expected codes, by
        default the same code) and closes TCP."""
        conn.send_close(code)
        conn.expect_close(expected if expected is not None else [code])
        conn.expect_eof()

    def echo(self, conn, opcode, payload, **kwargs):
        conn.send(opcode, payload, **kwargs)
        conn.expect(opcode, payload)


def case(name):
    """Registers a function as test method test_<name>."""
    def register(fn):
        method_name = "test_" + name
        assert not hasattr(Conformance, method_name), method_name
        fn.__name__ = method_name
        setattr(Conformance, method_name, fn)
        return fn
    return register


def make(name, fn, *args):
    """Registers test_<name> calling fn(self, *args)."""
    def method(self):
        fn(self, *args)
    method.__doc__ = fn.__doc__
    case(name)(method)


# =================================================================================================
# 1. Framing: echo at every length boundary, whole and in small TCP chunks.
# =================================================================================================

FRAMING_LENGTHS = [0, 125, 126, 127, 128, 65535, 65536, MiB - 1]


def framing(self, opcode, n, chunked):
    payload = printable(n) if opcode == TEXT else os.urandom(n)
    conn = self.connect()
    chunk = (1 if n <= 128 else 997) if chunked else None
    self.echo(conn, opcode, payload, chunk=chunk)
    self.closes_normally(conn)


for _op, _kind in ((TEXT, "1_1_text"), (BINARY, "1_2_binary")):
    for _n in FRAMING_LENGTHS:
        for _chunked in (False, True):
            make(f"{_kind}_{_n}_bytes{'_chunked' if _chunked else ''}", framing, _op, _n, _chunked)


@case("1_3_several_messages_in_one_tcp_write")
def _(self):
    conn = self.connect()
    payloads = [printable(n) for n in (0, 1, 125, 126, 200, 65536)]
    conn.send_raw(b"".join(frame(TEXT, p) for p in payloads))
    for p in payloads:
        conn.expect(TEXT, p)
    self.closes_normally(conn)


@case("1_4_16bit_length_header_split_across_chunks")
def _(self):
    conn = self.connect()
    payload = os.urandom(300)
    data = frame(BINARY, payload)
    conn.send_raw(data[:1])
    conn.send_raw(data[1:3])  # first byte of the 16-bit length only
    conn.send_raw(data[3:5])
    conn.send_raw(data[5:])
    conn.expect(BINARY, payload)
    self.closes_normally(conn)


# =================================================================================================
# 2. Pings and pongs.
# =================================================================================================

@case("2_1_ping_empty")
def _(self):
    conn = self.connect()
    conn.send(PING, b"")
    conn.expect(PONG, b"")
    self.closes_normally(conn)


@case("2_2_ping_text_payload")
def _(self):
    conn = self.connect()
    conn.send(PING, "Hello, world!")
    conn.expect(PONG, "Hello, world!")
    self.closes_normally(conn)


@case("2_3_ping_binary_payload")
def _(self):
    conn = self.connect()
    payload = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    conn.send(PING, payload)
    conn.expect(PONG, payload)
    self.closes_normally(conn)


@case("2_4_ping_payload_lengths_0_to_125")
def _(self):
    conn = self.connect()
    for n in range(126):
        payload = os.urandom(n)
        conn.send(PING, payload)
        conn.expect(PONG, payload, what=f"pong for a ping of {n} bytes")
    self.closes_normally(conn)


@case("2_5_ping_126_bytes_fails_1002")
def _(self):
    conn = self.connect()
    conn.send(PING, b"\xfe" * 126)
    self.fails(conn, PROTOCOL_ERROR)


@case("2_6_ping_125_bytes_sent_bytewise")
def _(self):
    conn = self.connect()
    payload = b"\xfe" * 125
    conn.send(PING, payload, chunk=1)
    conn.expect(PONG, payload)
    self.closes_normally(conn)


@case("2_7_unsolicited_pong_empty_ignored")
def _(self):
    conn = self.connect()
    conn.send(PONG, b"")
    self.echo(conn, TEXT, "after the pong")  # nothing may come before the echo
    self.closes_normally(conn)


@case("2_8_unsolicited_pong_with_payload_ignored")
def _(self):
    conn = self.connect()
    conn.send(PONG, "unsolicited pong payload")
    self.echo(conn, TEXT, "after the pong")
    self.closes_normally(conn)


@case("2_9_unsolicited_pong_then_ping")
def _(self):
    conn = self.connect()
    conn.send(PONG, "unsolicited pong payload")
    conn.send(PING, "ping payload")
    conn.expect(PONG, "ping payload")
    self.echo(conn, TEXT, "after")
    self.closes_normally(conn)


@case("2_10_ten_pings_answered_in_order")
def _(self):
    conn = self.connect()
    payloads = [f"payload-{i}".encode() for i in range(10)]
    conn.send_raw(b"".join(frame(PING, p) for p in payloads))
    for p in payloads:
        conn.expect(PONG, p)
    self.closes_normally(conn)


@case("2_11_ten_pings_bytewise_answered_in_order")
def _(self):
    conn = self.connect()
    payloads = [f"payload-{i}".encode() for i in range(10)]
    conn.send_raw(b"".join(frame(PING, p) for p in payloads), chunk=1)
    for p in payloads:
        conn.expect(PONG, p)
    self.closes_normally(conn)


@case("2_12_ping_in_the_middle_of_a_fragmented_message")
def _(self):
    conn = self.connect()
    conn.send(TEXT, "fragment1", fin=False)
    conn.send(PING, "ping payload")
    conn.expect(PONG, "ping payload")  # answered before the message completes
    conn.send(CONT, "fragment2", fin=True)
    conn.expect(TEXT, "fragment1fragment2")
    self.closes_normally(conn)


# =================================================================================================
# 3. Reserved bits: no extension was negotiated, so any RSV bit fails the connection.
# =================================================================================================

@case("3_1_text_rsv1")
def _(self):
    conn = self.connect()
    conn.send(TEXT, "Hello, world!", rsv=1)
    self.fails(conn, PROTOCOL_ERROR)


def rsv_after_echo(self, rsv, delivery):
    conn = self.connect()
    frames = [frame(TEXT, "Hello, world!"), frame(TEXT, "Hello, world!", rsv=rsv), frame(PING, "Hello, world!")]
    if delivery == "whole":
        conn.send_raw(b"".join(frames))
    elif delivery == "framewise":
        for f in frames:
            conn.send_raw(f)
    else:
        conn.send_raw(b"".join(frames), chunk=1)
    conn.expect(TEXT, "Hello, world!")  # the valid message before the bad frame is still echoed
    self.fails(conn, PROTOCOL_ERROR)  # and the ping after it is not answered


make("3_2_text_rsv2_after_valid_text", rsv_after_echo, 2, "whole")
make("3_3_text_rsv3_after_valid_text_framewise", rsv_after_echo, 3, "framewise")
make("3_4_text_rsv4_after_valid_text_bytewise", rsv_after_echo, 4, "bytewise")


@case("3_5_binary_rsv5")
def _(self):
    conn = self.connect()
    conn.send(BINARY, bytes(range(256)), rsv=5)
    self.fails(conn, PROTOCOL_ERROR)


@case("3_6_ping_rsv6")
def _(self):
    conn = self.connect()
    conn.send(PING, "Hello, world!", rsv=6)
    self.fails(conn, PROTOCOL_ERROR)


@case("3_7_close_rsv7")
def _(self):
    conn = self.connect()
    conn.send(CLOSE, rawws.close_payload(1000), rsv=7)
    self.fails(conn, PROTOCOL_ERROR)


@case("3_8_continuation_rsv1_inside_fragmented_message")
def _(self):
    conn = self.connect()
    conn.send(TEXT, "fragment1", fin=False)
    conn.send(CONT, "fragment2", rsv=1)
    self.fails(conn, PROTOCOL_ERROR)


# =================================================================================================
# 4. Reserved opcodes: data 3-7, control 0xB-0xF.
# =================================================================================================

def reserved_opcode(self, opcode, payload, after_echo):
    conn = self.connect()
    if after_echo:
        conn.send_raw(frame(TEXT, "Hello, world!") + frame(opcode, payload) + frame(PING, "Hello, world!"))
        conn.expect(TEXT, "Hello, world!")
    else:
        conn.send(opcode, payload)
    self.fails(conn, PROTOCOL_ERROR)


for _base, _family in ((3, "4_1"), (0xB, "4_2")):
    make(f"{_family}_1_opcode_{_base}_empty", reserved_opcode, _base, b"", False)
    make(f"{_family}_2_opcode_{_base + 1}_with_payload", reserved_opcode, _base + 1, b"reserved opcode payload", False)
    make(f"{_family}_3_opcode_{_base + 2}_after_valid_text", reserved_opcode, _base + 2, b"", True)
    make(f"{_family}_4_opcode_{_base + 3}_with_payload_after_valid_text", reserved_opcode, _base + 3,
         b"reserved opcode payload", True)
    make(f"{_family}_5_opcode_{_base + 4}_with_payload_after_valid_text", reserved_opcode, _base + 4,
         b"reserved opcode payload", True)


# =================================================================================================
# 5. Fragmentation.
# =================================================================================================

@case("5_1_fragmented_ping_fails_1002")
def _(self):
    conn = self.connect()
    conn.send(PING, "fragment1", fin=False)
    conn.send(CONT, "fragment2", fin=True)
    self.fails(conn, PROTOCOL_ERROR)


@case("5_2_fragmented_pong_fails_1002")
def _(self):
    conn = self.connect()
    conn.send(PONG, "fragment1", fin=False)
    conn.send(CONT, "fragment2", fin=True)
    self.fails(conn, PROTOCOL_ERROR)


def fragmented(self, opcode, pieces, chunk):
    conn = self.connect()
    data = b"".join(frame(opcode if i == 0 else CONT, p, fin=(i == len(pieces) - 1)) for i, p in enumerate(pieces))
    conn.send_raw(data, chunk)
    conn.expect(opcode, b"".join(pieces))
    self.closes_normally(conn)


make("5_3_text_in_two_fragments", fragmented, TEXT, [b"fragment1", b"fragment2"], None)
make("5_4_text_in_two_fragments_bytewise", fragmented, TEXT, [b"fragment1", b"fragment2"], 1)
make("5_5_binary_in_two_fragments", fragmented, BINARY, [b"\x00\xff" * 10, b"\xfe\x01" * 10], None)
make("5_5b_binary_in_three_fragments_bytewise", fragmented, BINARY, [b"\x00\xff" * 10, b"", b"\xfe\x01" * 10], 1)
make("5_5c_large_binary_in_uneven_fragments", fragmented, BINARY,
     [os.urandom(n) for n in (1, 70000, 125, 126, 0, 300000)], 4093)


def ping_between_fragments(self, chunk):
    conn = self.connect()
    conn.send_raw(frame(TEXT, "fragment1", fin=False) + frame(PING, "ping payload") + frame(CONT, "fragment2"),
                  chunk)
    conn.expect(PONG, "ping payload")
    conn.expect(TEXT, "fragment1fragment2")
    self.closes_normally(conn)


make("5_6_text_fragments_with_ping_between", ping_between_fragments, None)
make("5_7_text_fragments_with_ping_between_chunked", ping_between_fragments, 3)
make("5_8_text_fragments_with_ping_between_bytewise", ping_between_fragments, 1)


@case("5_8b_pong_between_fragments_ignored")
def _(self):
    conn = self.connect()
    conn.send_raw(frame(TEXT, "fragment1", fin=False) + frame(PONG, "unsolicited") + frame(CONT, "fragment2"))
    conn.expect(TEXT, "fragment1fragment2")
    self.closes_normally(conn)


def continuation_without_start(self, fin, chunk):
    conn = self.connect()
    conn.send_raw(frame(CONT, "non-continuation payload", fin=fin) + frame(TEXT, "Hello, world!"), chunk)
    self.fails(conn, PROTOCOL_ERROR)


make("5_9_continuation_fin_without_start", continuation_without_start, True, None)
make("5_10_continuation_fin_without_start_bytewise", continuation_without_start, True, 1)
make("5_12_continuation_nofin_without_start", continuation_without_start, False, None)
make("5_13_continuation_nofin_without_start_bytewise", continuation_without_start, False, 1)


@case("5_15_continuation_after_completed_message")
def _(self):
    conn = self.connect()
    conn.send_raw(frame(TEXT, "fragment1", fin=False) + frame(CONT, "fragment2", fin=True)
                  + frame(CONT, "fragment3", fin=False) + frame(TEXT, "fragment4", fin=True))
    conn.expect(TEXT, "fragment1fragment2")
    self.fails(conn, PROTOCOL_ERROR)


@case("5_16_continuation_sequence_without_start")
def _(self):
    conn = self.connect()
    conn.send_raw((frame(CONT, "fragment1", fin=False) + frame(CONT, "fragment2", fin=True)
                   + frame(TEXT, "fragment3", fin=True)) * 2)
    self.fails(conn, PROTOCOL_ERROR)


@case("5_18_new_text_frame_inside_open_message")
def _(self):
    conn = self.connect()
    conn.send_raw(frame(TEXT, "fragment1", fin=False) + frame(TEXT, "fragment2", fin=True))
    self.fails(conn, PROTOCOL_ERROR)


@case("5_18b_new_binary_frame_inside_open_text_message")
def _(self):
    conn = self.connect()
    conn.send_raw(frame(TEXT, "fragment1", fin=False) + frame(BINARY, b"fragment2", fin=False))
    self.fails(conn, PROTOCOL_ERROR)


@case("5_19_pings_between_five_fragments")
def _(self):
    conn = self.connect()
    pieces = [f"fragment{i}".encode() for i in range(1, 6)]
    for i, piece in enumerate(pieces):
        conn.send(TEXT if i == 0 else CONT, piece, fin=(i == 4))
        if i < 4:
            conn.send(PING, f"pong{i}")
            conn.expect(PONG, f"pong{i}")
    conn.expect(TEXT, b"".join(pieces))
    self.closes_normally(conn)


@case("5_21_many_tiny_fragments")
def _(self):
    conn = self.connect()
    payload = printable(1000)
    data = b"".join(frame(TEXT if i == 0 else CONT, payload[i:i + 1], fin=(i == 999)) for i in range(1000))
    conn.send_raw(data)
    conn.expect(TEXT, payload)
    self.closes_normally(conn)


@case("5_22_many_tiny_binary_fragments_with_empty_ones")
def _(self):
    conn = self.connect()
    payload = os.urandom(500)
    pieces = []
    for i in range(500):
        pieces += [payload[i:i + 1], b""]
    data = b"".join(frame(BINARY if i == 0 else CONT, p, fin=(i == len(pieces) - 1)) for i, p in enumerate(pieces))
    conn.send_raw(data)
    conn.expect(BINARY, payload)
    self.closes_normally(conn)


@case("5_23_close_inside_fragmented_message")
def _(self):
    # 7.1.5: the close is answered, the unfinished message never delivered.
    conn = self.connect()
    conn.send(TEXT, "fragment1", fin=False)
    conn.send_close(1000)
    conn.send(CONT, "fragment2", fin=True)
    conn.expect_close(1000)
    conn.expect_eof()
    self.assert_healthy()


# =================================================================================================
# 6. UTF-8.
# =================================================================================================

KOSME = "κόσμε".encode()

VALID_UTF8 = {
    "empty": b"",
    "hello_mu": "Hello-µ@ßöäüàá-UTF-8!!".encode(),
    "kosme": KOSME,
    "u0000": b"\x00",
    "u0080": b"\xc2\x80",
    "u0800": b"\xe0\xa0\x80",
    "u10000": b"\xf0\x90\x80\x80",
    "u007f": b"\x7f",
    "u07ff": b"\xdf\xbf",
    "uffff": b"\xef\xbf\xbf",
    "u10ffff": b"\xf4\x8f\xbf\xbf",
    "ud7ff": b"\xed\x9f\xbf",
    "ue000": b"\xee\x80\x80",
    "ufffd": b"\xef\xbf\xbd",
    "ufffe_noncharacter": b"\xef\xbf\xbe",
    "ufdd0_noncharacter": b"\xef\xb7\x90",
    "u1fffe_noncharacter": b"\xf0\x9f\xbf\xbe",
    "mixed_widths": "a€𝄞é\u0800\U0010ffffz".encode(),
}

INVALID_UTF8 = {
    "kosme_surrogate_edited": KOSME + b"\xed\xa0\x80" + b"edited",
    "u110000": b"\xf4\x90\x80\x80",
    "kosme_u110000": KOSME + b"\xf4\x90\x80\x80",
    "u1fffff_4byte": b"\xf7\xbf\xbf\xbf",
    "lead_f5": b"\xf5\x80\x80\x80",
    "five_byte_sequence": b"\xf8\x88\x80\x80\x80",
    "six_byte_sequence": b"\xfc\x84\x80\x80\x80\x80",
    "lone_continuation_80": b"\x80",
    "lone_continuation_bf": b"\xbf",
    "continuations_80bf80": b"\x80\xbf\x80",
    "all_continuation_bytes": bytes(range(0x80, 0xC0)),
    "lonely_start_c0_space": b"\xc0 ",
    "lonely_start_e0_space": b"\xe0 ",
    "lonely_start_f0_space": b"\xf0 ",
    "lonely_start_c2_space_x": b"\xc2 x",
    "truncated_c2": b"\xc2",
    "truncated_e0a0": b"\xe0\xa0",
    "truncated_f09080": b"\xf0\x90\x80",
    "truncated_df": b"\xdf",
    "truncated_efbf": b"\xef\xbf",
    "truncated_f48fbf": b"\xf4\x8f\xbf",
    "kosme_truncated_e282": KOSME + b"\xe2\x82",
    "concatenated_incomplete": b"\xc2\xe0\xa0\xf0\x90\x80\xdf\xef\xbf\xf4\x8f\xbf",
    "impossible_fe": b"\xfe",
    "impossible_ff": b"\xff",
    "impossible_fefeffff": b"\xfe\xfe\xff\xff",
    "overlong_slash_c0af": b"\xc0\xaf",
    "overlong_slash_e080af": b"\xe0\x80\xaf",
    "overlong_slash_f08080af": b"\xf0\x80\x80\xaf",
    "overlong_slash_5byte": b"\xf8\x80\x80\x80\xaf",
    "overlong_slash_6byte": b"\xfc\x80\x80\x80\x80\xaf",
    "overlong_max_c1bf": b"\xc1\xbf",
    "overlong_max_e09fbf": b"\xe0\x9f\xbf",
    "overlong_max_f08fbfbf": b"\xf0\x8f\xbf\xbf",
    "overlong_nul_c080": b"\xc0\x80",
    "overlong_nul_e08080": b"\xe0\x80\x80",
    "overlong_nul_f0808080": b"\xf0\x80\x80\x80",
    "surrogate_d800": b"\xed\xa0\x80",
    "surrogate_db7f": b"\xed\xad\xbf",
    "surrogate_db80": b"\xed\xae\x80",
    "surrogate_dbff": b"\xed\xaf\xbf",
    "surrogate_dc00": b"\xed\xb0\x80",
    "surrogate_df80": b"\xed\xbe\x80",
    "surrogate_dfff": b"\xed\xbf\xbf",
    "surrogate_pair_d800_dc00": b"\xed\xa0\x80\xed\xb0\x80",
    "surrogate_pair_dbff_dfff": b"\xed\xaf\xbf\xed\xbf\xbf",
    "valid_then_invalid_tail": b"Hello, world!" * 10 + b"\xff",
}


def utf8_valid(self, payload, bytewise_fragments):
    conn = self.connect()
    if bytewise_fragments and payload:
        conn.send_raw(b"".join(frame(TEXT if i == 0 else CONT, payload[i:i + 1], fin=(i == len(payload) - 1))
                               for i in range(len(payload))))
        conn.expect(TEXT, payload)
    else:
        self.echo(conn, TEXT, payload)
    self.closes_normally(conn)


def utf8_invalid(self, payload, bytewise_fragments):
    conn = self.connect()
    if bytewise_fragments:
        conn.send_raw(b"".join(frame(TEXT if i == 0 else CONT, payload[i:i + 1], fin=(i == len(payload) - 1))
                               for i in range(len(payload))))
    else:
        conn.send(TEXT, payload)
    self.fails(conn, INVALID_PAYLOAD)


for _name, _payload in VALID_UTF8.items():
    make(f"6_valid_{_name}", utf8_valid, _payload, False)
    make(f"6_valid_{_name}_in_1_byte_fragments", utf8_valid, _payload, True)
for _name, _payload in INVALID_UTF8.items():
    make(f"6_invalid_{_name}", utf8_invalid, _payload, False)
    make(f"6_invalid_{_name}_in_1_byte_fragments", utf8_invalid, _payload, True)


@case("6_1_2_three_empty_text_fragments")
def _(self):
    conn = self.connect()
    conn.send_raw(frame(TEXT, b"", fin=False) + frame(CONT, b"", fin=False) + frame(CONT, b"", fin=True))
    conn.expect(TEXT, b"")
    self.closes_normally(conn)


@case("6_1_3_empty_middle_empty_fragments")
def _(self):
    conn = self.connect()
    conn.send_raw(frame(TEXT, b"", fin=False) + frame(CONT, b"middle frame payload", fin=False)
                  + frame(CONT, b"", fin=True))
    conn.expect(TEXT, b"middle frame payload")
    self.closes_normally(conn)


@case("6_2_2_code_point_split_across_fragments")
def _(self):
    conn = self.connect()
    conn.send_raw(frame(TEXT, b"abc\xe2\x82", fin=False) + frame(CONT, b"\xac", fin=True))
    conn.expect(TEXT, "abc€")
    self.closes_normally(conn)


@case("6_2_3_four_byte_code_point_split_over_four_fragments_with_pings")
def _(self):
    conn = self.connect()
    emoji = "😀".encode()
    for i in range(4):
        conn.send(TEXT if i == 0 else CONT, emoji[i:i + 1], fin=(i == 3))
        if i < 3:
            conn.send(PING, f"{i}")
            conn.expect(PONG, f"{i}")
    conn.expect(TEXT, emoji)
    self.closes_normally(conn)


@case("6_2_4_message_ending_in_incomplete_code_point_across_fragments")
def _(self):
    conn = self.connect()
    conn.send_raw(frame(TEXT, b"abc\xe2\x82", fin=False) + frame(CONT, b"", fin=True))
    self.fails(conn, INVALID_PAYLOAD)


@case("6_2_5_binary_message_is_not_utf8_checked")
def _(self):
    conn = self.connect()
    self.echo(conn, BINARY, b"\xed\xa0\x80\xf4\x90\x80\x80\xff\xc0\x80")
    self.closes_normally(conn)


def fail_fast(self, first, second=None):
    """The server must close with 1007 after `first` (and `second`) fragments, before the message is
    finished: the client sends nothing more until it has the close frame."""
    conn = self.connect()
    conn.send(TEXT, first, fin=False)
    if second is not None:
        conn.send(CONT, second, fin=False)
    self.fails(conn, INVALID_PAYLOAD)


make("6_4_1_fail_fast_second_fragment_u110000", fail_fast, KOSME, b"\xf4\x90\x80\x80")
make("6_4_2_fail_fast_code_point_invalid_across_fragments", fail_fast, KOSME + b"\xf4", b"\x90\x80\x80")
make("6_4_5_fail_fast_first_fragment_ends_f490", fail_fast, KOSME + b"\xf4\x90")
make("6_4_6_fail_fast_first_fragment_ends_surrogate_prefix", fail_fast, KOSME + b"\xed\xa0")
make("6_4_7_fail_fast_first_fragment_ends_overlong_prefix", fail_fast, b"abc\xe0\x80")
make("6_4_8_fail_fast_first_fragment_ends_c0", fail_fast, b"abc\xc0")
make("6_4_9_fail_fast_first_fragment_contains_ff", fail_fast, b"abc\xffdef")


@case("6_4_3_invalid_in_middle_of_frame_sent_in_chunks")
def _(self):
    # Autobahn 6.4.3 prefers failing before the rest of the frame arrives but accepts 1007 at its end
    # ("non-strict"); this case only requires 1007 once the frame is complete.
    conn = self.connect()
    payload = KOSME + b"\xf4\x90\x80\x80" + b"edited"
    data = frame(TEXT, payload)
    header_len = len(data) - len(payload)
    cut = header_len + len(KOSME)
    for piece in (data[:cut], data[cut:cut + 4], data[cut + 4:]):
        conn.send_raw(piece)
    self.fails(conn, INVALID_PAYLOAD)


@case("6_6_incremental_prefixes_of_kosme")
def _(self):
    # Each prefix of "κόσμε" is sent as its own message: complete code points are echoed, a prefix
    # ending inside a code point fails with 1007.
    boundaries = set()
    pos = 0
    for ch in "κόσμε":
        boundaries.add(pos)
        pos += len(ch.encode())
    boundaries.add(pos)
    conn = self.connect()
    for n in range(1, len(KOSME) + 1):
        if n in boundaries:
            self.echo(conn, TEXT, KOSME[:n])
    for n in range(1, len(KOSME) + 1):
        if n not in boundaries:
            c = self.connect()
            c.send(TEXT, KOSME[:n])
            c.expect_fail(INVALID_PAYLOAD)
    self.closes_normally(conn)
    self.assert_healthy()


# =================================================================================================
# 7. Close.
# =================================================================================================

@case("7_1_1_echo_then_close")
def _(self):
    conn = self.connect()
    self.echo(conn, TEXT, "Hello World!")
    self.closes_normally(conn)


@case("7_1_2_second_close_ignored")
def _(self):
    conn = self.connect()
    conn.send_close(1000)
    conn.send_close(1000)
    conn.expect_close(1000)
    conn.expect_eof()
    self.assert_healthy()


@case("7_1_3_ping_after_close_ignored")
def _(self):
    conn = self.connect()
    conn.send_close(1000)
    conn.send(PING, "Hello World!")
    conn.expect_close(1000)  # and no pong, before or after
    conn.expect_eof()
    self.assert_healthy()


@case("7_1_4_text_after_close_ignored")
def _(self):
    conn = self.connect()
    conn.send_raw(frame(CLOSE, rawws.close_payload(1000)) + frame(TEXT, "Hello World!"))
    conn.expect_close(1000)  # and no echo
    conn.expect_eof()
    self.assert_healthy()


@case("7_1_6_large_message_ping_close_back_to_back")
def _(self):
    # The ping came before the close, so its pong is required (RFC 6455 5.5.2), and it must precede
    # the server's close frame. The order of pong and echo is not specified, and whether the echo of a
    # message that arrived back to back with the close is still sent is implementation-defined
    # (Autobahn 7.1.6 is informational); if it is sent, it must be whole and before the close.
    conn = self.connect()
    big = printable(256 * 1024)
    conn.send_raw(frame(TEXT, big) + frame(PING, "ping") + frame(CLOSE, rawws.close_payload(1000)))
    seen = []
    while True:
        opcode, payload = conn.recv_message("echo, pong and close")
        if opcode == CLOSE:
            break
        seen.append((opcode, payload))
    self.assertIn((PONG, b"ping"), seen)
    self.assertTrue(all(item in ((PONG, b"ping"), (TEXT, big)) for item in seen), f"unexpected frames {seen}")
    self.assertEqual(len(seen), len(set(op for op, _ in seen)), "duplicated frames")
    code, _ = rawws.Frame(True, 0, CLOSE, payload).close_code()
    self.assertEqual(code, 1000)
    conn.expect_eof()


@case("7_3_1_close_empty_payload")
def _(self):
    conn = self.connect()
    conn.send(CLOSE, b"")
    conn.expect_close([None, 1000])  # RFC 6455 5.5.1: an empty close, or the normal code
    conn.expect_eof()
    self.assert_healthy()


@case("7_3_2_close_1_byte_payload_fails_1002")
def _(self):
    conn = self.connect()
    conn.send(CLOSE, b"\x03")
    self.fails(conn, PROTOCOL_ERROR)


@case("7_3_3_close_1000_no_reason")
def _(self):
    conn = self.connect()
    self.closes_normally(conn, 1000)


@case("7_3_4_close_1000_with_reason")
def _(self):
    conn = self.connect()
    conn.send_close(1000, "Hello World!")
    conn.expect_close(1000)
    conn.expect_eof()


@case("7_3_5_close_reason_123_bytes")
def _(self):
    conn = self.connect()
    conn.send_close(1000, "*" * 123)
    conn.expect_close(1000)
    conn.expect_eof()


@case("7_3_6_close_reason_124_bytes_fails_1002")
def _(self):
    conn = self.connect()
    conn.send_close(1000, "*" * 124)  # a 126-byte control frame
    self.fails(conn, PROTOCOL_ERROR)


@case("7_5_1_close_reason_invalid_utf8_fails_1007")
def _(self):
    conn = self.connect()
    conn.send_close(1000, KOSME + b"\xed\xa0\x80" + b"edited")
    self.fails(conn, INVALID_PAYLOAD)


@case("7_5_2_close_reason_truncated_utf8_fails_1007")
def _(self):
    conn = self.connect()
    conn.send_close(1000, b"abc\xe2\x82")
    self.fails(conn, INVALID_PAYLOAD)


@case("7_5_3_close_reason_valid_multibyte_utf8")
def _(self):
    conn = self.connect()
    conn.send_close(1000, "κόσμε €😀")
    conn.expect_close(1000)
    conn.expect_eof()


VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def close_valid_code(self, code):
    conn = self.connect()
    self.closes_normally(conn, code)
    self.assert_healthy()


def close_invalid_code(self, code):
    conn = self.connect()
    conn.send_close(code)
    self.fails(conn, PROTOCOL_ERROR)


for _i, _code in enumerate(VALID_CLOSE_CODES, 1):
    make(f"7_7_{_i}_close_code_{_code}_echoed", close_valid_code, _code)
for _i, _code in enumerate(INVALID_CLOSE_CODES, 1):
    make(f"7_9_{_i}_close_code_{_code}_fails_1002", close_invalid_code, _code)


# =================================================================================================
# Masking and size limits.
# =================================================================================================

@case("8_1_unmasked_text_frame_fails_1002")
def _(self):
    conn = self.connect()
    conn.send(TEXT, "Hello, world!", masked=False)
    self.fails(conn, PROTOCOL_ERROR)


@case("8_2_unmasked_ping_after_valid_text_fails_1002")
def _(self):
    conn = self.connect()
    conn.send_raw(frame(TEXT, "Hello, world!") + frame(PING, "ping", masked=False))
    conn.expect(TEXT, "Hello, world!")
    self.fails(conn, PROTOCOL_ERROR)


@case("8_3_frame_announcing_2_pow_62_bytes_fails_1009_from_header")
def _(self):
    conn = self.connect()
    conn.send_raw(rawws.frame_header(BINARY, 2 ** 62) + os.urandom(4))  # header and mask key only
    self.fails(conn, TOO_BIG)


@case("8_4_64bit_length_with_top_bit_set_fails_1002")
def _(self):
    conn = self.connect()
    conn.send_raw(rawws.frame_header(BINARY, 2 ** 63 + 5) + os.urandom(4))
    self.fails(conn, PROTOCOL_ERROR)


def exactly_limit(self, opcode):
    conn = self.connect()
    payload = printable(MiB) if opcode == TEXT else os.urandom(MiB)
    self.echo(conn, opcode, payload)
    self.closes_normally(conn)


make("8_5_text_of_exactly_1_MiB_echoed", exactly_limit, TEXT)
make("8_6_binary_of_exactly_1_MiB_echoed", exactly_limit, BINARY)


@case("8_7_frame_of_1_MiB_plus_1_fails_1009_from_header")
def _(self):
    conn = self.connect()
    conn.send_raw(rawws.frame_header(BINARY, MiB + 1) + os.urandom(4))  # no payload sent
    self.fails(conn, TOO_BIG)


@case("8_8_frame_of_1_MiB_plus_1_sent_whole_fails_1009")
def _(self):
    conn = self.connect()
    try:
        conn.send(TEXT, printable(MiB + 1))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may stop reading once it failed the connection; its answer is checked below
    self.fails(conn, TOO_BIG)


@case("8_9_fragmented_message_of_exactly_1_MiB_echoed")
def _(self):
    conn = self.connect()
    payload = os.urandom(MiB)
    piece = MiB // 16
    conn.send_raw(b"".join(frame(BINARY if i == 0 else CONT, payload[i * piece:(i + 1) * piece], fin=(i == 15))
                           for i in range(16)))
    conn.expect(BINARY, payload)
    self.closes_normally(conn)


@case("8_10_fragmented_text_of_exactly_1_MiB_with_ping_echoed")
def _(self):
    conn = self.connect()
    payload = printable(MiB)
    conn.send(TEXT, payload[:MiB // 2], fin=False)
    conn.send(PING, "in between")
    conn.expect(PONG, "in between")
    conn.send(CONT, payload[MiB // 2:], fin=True)
    conn.expect(TEXT, payload)
    self.closes_normally(conn)


@case("8_11_fragmented_message_of_1_MiB_plus_1_fails_1009")
def _(self):
    conn = self.connect()
    conn.send(BINARY, os.urandom(MiB), fin=False)
    conn.send(CONT, b"x", fin=True)
    self.fails(conn, TOO_BIG)


@case("8_12_fragment_header_exceeding_1_MiB_fails_1009_from_header")
def _(self):
    conn = self.connect()
    conn.send(TEXT, printable(MiB // 2), fin=False)
    conn.send_raw(rawws.frame_header(CONT, MiB // 2 + 1) + os.urandom(4))  # header and mask key only
    self.fails(conn, TOO_BIG)


@case("8_13_many_messages_below_limit_do_not_accumulate")
def _(self):
    # The limit applies per message, not per connection.
    conn = self.connect()
    for _ in range(3):
        payload = os.urandom(MiB // 2 + 1)
        self.echo(conn, BINARY, payload)
    self.closes_normally(conn)


# =================================================================================================
# 9. The opening handshake.
# =================================================================================================

def handshake_status(self, expected_status, request=None, **request_args):
    if request is None:
        request, _ = rawws.upgrade_request(self.server.port, **request_args)
    status, reason, headers, sock = rawws.http_exchange(self.server.port, request)
    self.addCleanup(sock.close)
    self.assertEqual(status, expected_status, f"answered {status} {reason} to {request[:200]!r}")
    return headers


def handshake_error(self, expected_status, request_args):
    handshake_status(self, expected_status, **request_args)
    self.assert_healthy()


@case("9_01_accept_key_for_random_key")
def _(self):
    key = base64.b64encode(os.urandom(16)).decode()
    request, _ = rawws.upgrade_request(self.server.port, key=key)
    status, reason, headers, sock = rawws.http_exchange(self.server.port, request)
    self.addCleanup(sock.close)
    self.assertEqual(status, 101, reason)
    self.assertEqual(headers.get("sec-websocket-accept"), [rawws.accept_for(key)])
    self.assertEqual([v.lower() for v in headers.get("upgrade", [])], ["websocket"])
    self.assertIn("upgrade", [t.strip().lower() for v in headers.get("connection", []) for t in v.split(",")])


@case("9_02_rfc_sample_key")
def _(self):
    # RFC 6455 section 1.3: "dGhlIHNhbXBsZSBub25jZQ==" -> "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
    request, _ = rawws.upgrade_request(self.server.port, key="dGhlIHNhbXBsZSBub25jZQ==")
    status, reason, headers, sock = rawws.http_exchange(self.server.port, request)
    self.addCleanup(sock.close)
    self.assertEqual(status, 101, reason)
    self.assertEqual(headers.get("sec-websocket-accept"), ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="])


@case("9_03_token_lists_and_case_accepted")
def _(self):
    conn = self.connect(headers=[("Connection", "keep-alive, Upgrade"), ("Upgrade", "WebSocket")])
    self.echo(conn, TEXT, "token lists")
    self.closes_normally(conn)


@case("9_04_lower_case_header_names_and_values_accepted")
def _(self):
    port = self.server.port
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /echo HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
               f"sec-websocket-key: {key}\r\nsec-websocket-version: 13\r\n\r\n").encode()
    headers = handshake_status(self, 101, request=request)
    self.assertEqual(headers.get("sec-websocket-accept"), [rawws.accept_for(key)])


@case("9_05_header_section_just_under_8_KiB_accepted")
def _(self):
    base, _ = rawws.upgrade_request(self.server.port)
    padding = 7 * 1024 - len(base)
    conn = self.connect(headers=[("X-Padding", "p" * padding)])
    self.echo(conn, TEXT, "big headers")
    self.closes_normally(conn)


make("9_10_post_is_400", handshake_error, 400, {"method": "POST"})
make("9_11_http_1_0_is_400", handshake_error, 400, {"version": "HTTP/1.0"})
make("9_12_missing_upgrade_is_400", handshake_error, 400, {"headers": [("Upgrade", None)]})
make("9_13_upgrade_h2c_is_400", handshake_error, 400, {"headers": [("Upgrade", "h2c")]})
make("9_14_missing_connection_is_400", handshake_error, 400, {"headers": [("Connection", None)]})
make("9_15_connection_keep_alive_only_is_400", handshake_error, 400, {"headers": [("Connection", "keep-alive")]})
make("9_16_key_of_15_bytes_is_400", handshake_error, 400, {"key": base64.b64encode(os.urandom(15)).decode()})
make("9_17_key_of_17_bytes_is_400", handshake_error, 400, {"key": base64.b64encode(os.urandom(17)).decode()})
make("9_18_key_not_base64_is_400", handshake_error, 400, {"key": "!!!!!!!!!!!!!!!!!!!!!!=="})
make("9_19_key_without_padding_is_400", handshake_error, 400, {"key": "dGhlIHNhbXBsZSBub25jZQ"})
make("9_20_empty_key_is_400", handshake_error, 400, {"key": ""})
make("9_21_missing_key_is_400", handshake_error, 400, {"headers": [("Sec-WebSocket-Key", None)]})
make("9_22_unknown_path_is_404", handshake_error, 404, {"path": "/no-such-endpoint"})


@case("9_23_version_8_is_426_with_version_13")
def _(self):
    headers = handshake_status(self, 426, headers=[("Sec-WebSocket-Version", "8")])
    versions = [t.strip() for v in headers.get("sec-websocket-version", []) for t in v.split(",")]
    self.assertIn("13", versions, f"426 response headers: {headers}")
    self.assert_healthy()


@case("9_24_header_section_over_8_KiB_is_431")
def _(self):
    handshake_status(self, 431, headers=[("X-Padding", "p" * 9000)])
    self.assert_healthy()


@case("9_25_many_headers_over_8_KiB_is_431")
def _(self):
    handshake_status(self, 431, headers=[(f"X-Header-{i}", "v" * 100) for i in range(100)])
    self.assert_healthy()


@case("9_26_malformed_header_line_is_400")
def _(self):
    port = self.server.port
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nThis line has no colon\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    handshake_status(self, 400, request=request)
    self.assert_healthy()


@case("9_27_malformed_request_line_is_400")
def _(self):
    handshake_status(self, 400, request=b"THIS IS NOT HTTP\r\n\r\n")
    self.assert_healthy()


def refuses_body(self, headers, body):
    """An upgrade request that announces a body (and sends it) gets 400 with the reason as its body,
    and the server closes the connection rather than reading the body as frames."""
    request, _ = rawws.upgrade_request(self.server.port, headers=headers)
    status, response_headers, answer = rawws.http_answer(self.server.port, request + body)
    self.assertEqual(status, 400, f"answered {status} to a request with a body: {answer!r}")
    self.assertEqual(answer, b"WebSocket upgrade request must not have a body")
    self.assertEqual(response_headers.get("content-type"), ["text/plain; charset=utf-8"])
    self.assert_healthy()


make("9_28_content_length_body_is_400", refuses_body, [("Content-Length", "5")], b"hello")
make("9_29_chunked_body_is_400", refuses_body, [("Transfer-Encoding", "chunked")], b"5\r\nhello\r\n0\r\n\r\n")
make("9_30_content_length_and_chunked_body_is_400", refuses_body,
     [("Content-Length", "5"), ("Transfer-Encoding", "chunked")], b"5\r\nhello\r\n0\r\n\r\n")


@case("9_31_content_length_0_is_accepted")
def _(self):
    # No body: the bytes after the head are the first frame, as without the field.
    conn = self.connect(headers=[("Content-Length", "0")])
    self.echo(conn, TEXT, "no body here")
    self.closes_normally(conn)



# =================================================================================================
# 12, 13. permessage-deflate (RFC 7692), as Autobahn's families 12 and 13 exercise it: compressed
# echo of text and binary at many sizes, under each offer a client can make (the window bits and
# the no-context-takeover parameters, with and without values). The client compresses with Python's
# zlib, as the offer allows, and inflates what the server sends under the agreed parameters.
# =================================================================================================

import zlib  # noqa: E402

DEFLATE_SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]


def deflate_echo(self, offer, agreed, sizes, client_takeover):
    conn = self.connect(headers=[("Sec-WebSocket-Extensions", offer)])
    self.assertEqual(conn.response_headers.get("sec-websocket-extensions"), [agreed])
    params = [p.strip() for p in agreed.split(";")[1:]]
    server_bits = next((int(p.split("=")[1]) for p in params if p.startswith("server_max_window_bits=")), 15)
    client_bits = next((int(p.split("=")[1]) for p in params if p.startswith("client_max_window_bits=")), 15)
    client_keeps = client_takeover and "client_no_context_takeover" not in params
    ours = zlib.compressobj(6, zlib.DEFLATED, -client_bits)
    theirs = zlib.decompressobj(-server_bits)
    for n in sizes:
        for opcode in (TEXT, BINARY):
            payload = printable(n) if opcode == TEXT else bytes((i * 7) % 251 for i in range(n))
            if not client_keeps:
                ours = zlib.compressobj(6, zlib.DEFLATED, -client_bits)
            body = ours.compress(payload) + ours.flush(zlib.Z_SYNC_FLUSH)
            conn.send(opcode, body[:-4], rsv=4)
            f = conn.recv_frame(f"the compressed echo of {n} bytes")
            self.assertEqual((f.opcode, f.fin), (opcode, True))
            if n >= 256:
                self.assertEqual(f.rsv, 4, f"{n} bytes came back uncompressed")
            got = theirs.decompress(f.payload + b"\x00\x00\xff\xff") if f.rsv == 4 else f.payload
            self.assertEqual(got, payload, f"{n} bytes")
    self.closes_normally(conn)
    self.assert_healthy()


NCT = "server_no_context_takeover; client_no_context_takeover"
DEFLATE_OFFERS = [
    ("permessage-deflate", f"permessage-deflate; {NCT}", True),
    ("permessage-deflate; client_max_window_bits", f"permessage-deflate; {NCT}", True),
    ("permessage-deflate; client_no_context_takeover", f"permessage-deflate; {NCT}", False),
    ("permessage-deflate; server_no_context_takeover", f"permessage-deflate; {NCT}", True),
    ("permessage-deflate; server_max_window_bits=9", f"permessage-deflate; {NCT}; server_max_window_bits=9", True),
    ("permessage-deflate; server_max_window_bits=12", f"permessage-deflate; {NCT}; server_max_window_bits=12", True),
    ("permessage-deflate; client_max_window_bits=9", f"permessage-deflate; {NCT}; client_max_window_bits=9", True),
    ("permessage-deflate; client_max_window_bits=15; server_max_window_bits=15",
     f"permessage-deflate; {NCT}; server_max_window_bits=15; client_max_window_bits=15", True),
    ("permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10",
     f"permessage-deflate; {NCT}; server_max_window_bits=10", True),
]
for index, (offer, agreed, keeps) in enumerate(DEFLATE_OFFERS, start=1):
    make(f"12_{index}_deflate_echo_offer_{index}", deflate_echo, offer, agreed, DEFLATE_SIZES, keeps)


@case("13_1_deflate_fragmented_both_ways_and_interleaved_pings")
def _(self):
    conn = self.connect(headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    payload = printable(100000)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = (c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    pieces = [body[i:i + 997] for i in range(0, len(body), 997)]
    conn.send(TEXT, pieces[0], fin=len(pieces) == 1, rsv=4)
    for i, piece in enumerate(pieces[1:], start=1):
        if i % 3 == 0:
            conn.send(PING, b"between")
            conn.expect(PONG, b"between")
        conn.send(CONT, piece, fin=i == len(pieces) - 1)
    f = conn.recv_frame()
    self.assertEqual(zlib.decompressobj(-15).decompress(f.payload + b"\x00\x00\xff\xff"), payload)
    self.closes_normally(conn)


@case("13_2_deflate_uncompressed_messages_are_still_accepted")
def _(self):
    conn = self.connect(headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    self.echo(conn, TEXT, "plain on a compressing connection")  # under the threshold: plain back
    text = printable(300)
    conn.send(TEXT, text)
    f = conn.recv_frame()
    self.assertEqual(f.rsv, 4)
    self.assertEqual(zlib.decompressobj(-15).decompress(f.payload + b"\x00\x00\xff\xff"), text)
    self.closes_normally(conn)


@case("13_3_deflate_invalid_utf8_after_inflating_is_1007")
def _(self):
    conn = self.connect(headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    conn.send(TEXT, (c.compress(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited") + c.flush(zlib.Z_SYNC_FLUSH))[:-4], rsv=4)
    self.fails(conn, INVALID_PAYLOAD)


if __name__ == "__main__":
    unittest.main(verbosity=2)
