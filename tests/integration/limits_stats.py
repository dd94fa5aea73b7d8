"""What tests/servers/limits_server's /stats endpoint reports, read over a raw connection of its own
(which is then closed cleanly, so it does not linger in the counts it reads)."""
import json

import rawws
from rawws import TEXT


def stats(port):
    """The whole /stats answer: connection_count() per endpoint path (this /stats connection not
    counted) and the server's progress counters ("flood sent", "flood queued", "idle on_close")."""
    conn = rawws.Conn(port, "/stats")
    try:
        conn.send(TEXT, "counts")
        opcode, payload = conn.recv_message("the /stats answer")
        assert opcode == TEXT, f"/stats answered with opcode {opcode}"
        answer = json.loads(payload)
        answer["/stats"] -= 1
        conn.send_close(1000)
        conn.expect_close([1000])
        conn.expect_eof()
    finally:
        conn.close_socket()
    return answer


def connection_counts(port):
    """connection_count() of every endpoint, by path."""
    return {key: value for key, value in stats(port).items() if key.startswith("/")}
