"""Shared helpers for the integration tests: start a server binary on an ephemeral port, wait for its
`listening on N` line, connect Python websockets clients to it, stop it. No fixed ports, no sleeps:
every wait has a timeout."""
import asyncio
import os
import pathlib
import re
import select
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import weakref

BUILD_ROOT = pathlib.Path(os.environ.get("STARLING_BUILD_ROOT", pathlib.Path(__file__).resolve().parents[2] / "build"))
TIMEOUT = 10.0


def binary(relative):
    """Path of a built program, relative to the build root (e.g. 'examples/echo'). In a build with
    -Dexample_set=core (the sanitizer builds), tests of the other examples are skipped."""
    path = BUILD_ROOT / relative
    if not path.exists():
        if os.environ.get("STARLING_EXAMPLE_SET") == "core" and relative.startswith("examples/"):
            raise unittest.SkipTest(f"{relative} is not in the core example set")
        raise FileNotFoundError(f"{path} not built")
    return str(path)


def instrumented(path):
    """True for a sanitizer build (ASan, TSan): its RSS says nothing about memory use (quarantine,
    shadow memory) and it runs several times slower."""
    with open(path, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def vm_rss_kib(pid):
    """A process's resident memory, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# The first line of each sanitizer's report: AddressSanitizer and LeakSanitizer errors,
# ThreadSanitizer warnings (data races, lock inversions), UndefinedBehaviorSanitizer's runtime errors.
# UndefinedBehaviorSanitizer's start with the source position ("file.hpp:12:5: runtime error: ").
SANITIZER_REPORT = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|"
                              r":\d+:\d+: runtime error: ")


def sanitizer_report(text, tolerated=None):
    """The first sanitizer report in a program's stderr (up to 60 lines of it), or None. A report
    whose first line matches `tolerated` (a compiled pattern) is passed over."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if SANITIZER_REPORT.search(line) and not (tolerated and tolerated.search(line)):
            return "\n".join(lines[i:i + 60])
    return None


class Server:
    """A server process: `with Server('examples/echo') as s: s.url('/echo')`."""

    def __init__(self, relative, *args, env=None, preexec_fn=None, tolerated_report=None):
        """`preexec_fn` runs in the child before the server starts (to lower a resource limit, say).
        `tolerated_report`: a compiled pattern for the first line of a sanitizer report that stop()
        passes over (a known false report, explained where it is given)."""
        self._tolerated = tolerated_report
        # stderr goes to a file: a pipe nobody reads would block a server that logs a lot.
        self._stderr = tempfile.TemporaryFile()
        weakref.finalize(self, self._stderr.close)  # readable after stop(), closed with the object
        self.process = subprocess.Popen([binary(relative), "--port", "0", *args],
                                        stdout=subprocess.PIPE, stderr=self._stderr,
                                        env=None if env is None else {**os.environ, **env},
                                        preexec_fn=preexec_fn)
        self._report_raised = False
        self.port = self._read_port()

    def _read_port(self):
        deadline = time.monotonic() + TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.process.stdout], [], [], remaining)[0]:
                self.process.kill()
                raise TimeoutError("server did not print 'listening on N'")
            chunk = os.read(self.process.stdout.fileno(), 1)
            if not chunk:
                self.process.wait()
                self.process.stdout.close()
                raise RuntimeError(f"server exited: {self.stderr()}")
            line += chunk
        words = line.decode().split()
        assert words[:2] == ["listening", "on"], line
        self.banner = words  # the whole line: some test servers announce more than one port
        return int(words[2])

    def url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"

    def alive(self):
        return self.process.poll() is None

    def stop(self, sig=signal.SIGTERM):
        """Stops the server; returns its exit status. Raises AssertionError when the server wrote a
        sanitizer report (in the sanitizer builds): a leak found at exit, or an error a test did not
        otherwise notice, fails the test that ran the server, whatever the test checks itself."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("server did not stop within the timeout")
        self.process.stdout.close()
        if not self._report_raised:
            report = sanitizer_report(self.stderr(), self._tolerated)
            if report:
                self._report_raised = True
                raise AssertionError(f"{self.process.args[0]} wrote a sanitizer report:\n{report}")
        return self.process.returncode

    def stderr(self):
        """What the server wrote to stderr so far."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def raw_connect(port, path="/echo", extra_headers="", key="dGhlIHNhbXBsZSBub25jZQ=="):
    """A plain TCP socket that performed the opening handshake; returns (socket, response bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"{extra_headers}\r\n")
    s.sendall(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = s.recv(4096)
        if not chunk:
            break
        response += chunk
    return s, response


def run(coroutine):
    """Runs a test coroutine with an overall timeout."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout=60))
