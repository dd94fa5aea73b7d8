"""Packaging tests: build a small consumer program (echo_consumer.cpp) outside the meson build tree, in a
temporary directory, the way a downstream project would get Starling, then run it and talk to it with
Python's websockets client.

  check_consumer.py METHOD --source-root DIR [--meson PATH] [--cmake PATH] [--pkg-config PATH] -- CXX...

METHOD is one of
  single-header  README's command line, two translation units: g++ -std=c++20 -O2 -I <repo>/single_include
                 server.cpp other.cpp -lsimdjson -lz -pthread (no OpenSSL anywhere on it); the echo
                 compresses (permessage-deflate) a long message for Python's client, which offers it
  single-header-no-deflate  the same with -DSTARLING_NO_DEFLATE and without -lz: it links without zlib,
                 and the server declines the client's permessage-deflate offer
  single-header-tls  README's TLS command line: single_header_tls/server.cpp with starling_tls.hpp,
                 -lsimdjson -lz -lssl -lcrypto -pthread, served over wss:// with a certificate made by the
                 `openssl` command
  subproject     a meson project with the repository copied to subprojects/starling and
                 dependency('starling'); Starling's own tests and examples must not be built
  pkg-config     `meson install` to a temporary prefix, then g++ with `pkg-config --cflags --libs starling`
  cmake          `meson install` to a temporary prefix, then find_package(starling) + starling::starling
CXX is the compiler command meson was configured with (it may start with ccache).
Exit status 77 (meson's "skipped") when a tool the method needs is missing. No fixed ports, no sleeps:
every wait has a timeout.
"""
import argparse
import asyncio
import glob
import json
import os
import pathlib
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import websockets

HERE = pathlib.Path(__file__).resolve().parent
CONSUMER_SOURCE = HERE / "echo_consumer.cpp"
SKIP = 77
SETUP_TIMEOUT = 180     # meson setup / install, cmake configure
COMPILE_TIMEOUT = 450   # one or two compiles of everything Starling includes
LISTEN_TIMEOUT = 20     # until the program prints "listening on N"
CLIENT_TIMEOUT = 60     # every websockets exchange together
STOP_TIMEOUT = 10       # SIGTERM to exit


class Skip(Exception):
    pass


def log(*args):
    print(*args, flush=True)


def run(cmd, *, cwd, env=None, timeout=SETUP_TIMEOUT):
    """Runs a command, prints it and its output; raises on failure or timeout. Returns its stdout."""
    log("$", shlex.join(str(c) for c in cmd), f"  (in {cwd})")
    start = time.monotonic()
    try:
        done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode(errors="replace")
        raise AssertionError(f"timed out after {timeout} s:\n{output[-6000:]}") from None
    output = done.stdout.decode(errors="replace")
    log(f"  exit {done.returncode} after {time.monotonic() - start:.1f} s")
    if done.returncode != 0:
        raise AssertionError(f"command failed with exit status {done.returncode}:\n{output[-12000:]}")
    return output


def split_compiler(cxx):
    """('ccache', ['g++', flags...]) or (None, [...]) from meson's compiler command."""
    if len(cxx) > 1 and os.path.basename(cxx[0]) in ("ccache", "sccache"):
        return cxx[0], cxx[1:]
    return None, cxx


# --- running the consumer -------------------------------------------------------------------------------

class Program:
    """A consumer program started with `--port 0`; `port` is what it printed."""

    def __init__(self, path, *args):
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen([str(path), "--port", "0", *args], stdout=subprocess.PIPE, stderr=self._stderr)
        try:
            self.port = self._read_port()
        except BaseException:
            self.kill()
            raise

    def _read_port(self):
        deadline = time.monotonic() + LISTEN_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.process.stdout], [], [], remaining)[0]:
                raise AssertionError(f"no 'listening on N' within {LISTEN_TIMEOUT} s; stderr: {self.stderr()}")
            chunk = os.read(self.process.stdout.fileno(), 1)
            if not chunk:
                self.process.wait(timeout=STOP_TIMEOUT)
                raise AssertionError(f"exited with {self.process.returncode} before listening: {self.stderr()}")
            line += chunk
        words = line.decode().split()
        assert words[:2] == ["listening", "on"] and len(words) == 3, line
        return int(words[2])

    def stderr(self):
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()

    def stop(self):
        """SIGTERM; the program must exit with status 0 within the timeout."""
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"did not exit within {STOP_TIMEOUT} s of SIGTERM") from None
        self.process.stdout.close()
        assert status == 0, f"exit status {status} after SIGTERM; stderr: {self.stderr()}"


async def talk(port, second_tu, deflate):
    base = f"ws://127.0.0.1:{port}"
    async with websockets.connect(base + "/echo") as ws:
        # Python's client offers permessage-deflate; the server accepts it unless built without it.
        names = [e.name for e in ws.extensions]
        assert names == (["permessage-deflate"] if deflate else []), names
        await ws.send("héllo, Starling")
        assert await ws.recv() == "héllo, Starling"
        await ws.send("compress me " * 100)
        assert await ws.recv() == "compress me " * 100
        await ws.send(b"\x00\x01\xfe\xff")
        assert await ws.recv() == b"\x00\x01\xfe\xff"
    async with websockets.connect(base + "/json") as ws:
        for count in (1, 2):
            await ws.send('{"a": [1, 2.5, "x"], "b": {"c": null}}')
            reply = json.loads(await ws.recv())
            assert reply == {"echo": {"a": [1, 2.5, "x"], "b": {"c": None}}, "count": count}, reply
        await ws.send("not json")
        await ws.wait_closed()
        assert ws.close_code == 1007, ws.close_code
    if second_tu:
        async with websockets.connect(base + "/info?name=ada") as ws:
            assert await ws.recv() == "hello ada"
            await ws.send("hi")
            reply = json.loads(await ws.recv())
            assert reply["name"] == "ada" and reply["said"] == "hi" and len(reply["id"]) == 36, reply


def serve_and_check(path, second_tu=False, deflate=True):
    log(f"running {path}")
    program = Program(path)
    try:
        log(f"  listening on {program.port}")
        asyncio.run(asyncio.wait_for(talk(program.port, second_tu, deflate), timeout=CLIENT_TIMEOUT))
        log("  /echo and /json answered" + (", /info too" if second_tu else ""))
    except BaseException:
        program.kill()
        log("consumer stderr:", program.stderr())
        raise
    program.stop()


# --- the methods ---------------------------------------------------------------------------------------

def single_header(args, tmp):
    shutil.copy(CONSUMER_SOURCE, tmp)
    work = tmp / "single_header"
    shutil.copytree(HERE / "single_header", work)
    # README: g++ -std=c++20 -O2 -I path/to/single_include server.cpp -lsimdjson -pthread, with a second
    # translation unit; no -o, as in the README.
    run([*args.cxx, "-std=c++20", "-O2", "-I", args.source_root / "single_include", "server.cpp", "other.cpp",
         "-lsimdjson", "-lz", "-pthread"], cwd=work, timeout=COMPILE_TIMEOUT)
    serve_and_check(work / "a.out", second_tu=True)


def single_header_no_deflate(args, tmp):
    shutil.copy(CONSUMER_SOURCE, tmp)
    work = tmp / "single_header"
    shutil.copytree(HERE / "single_header", work)
    # README: define STARLING_NO_DEFLATE and zlib is neither included nor linked.
    run([*args.cxx, "-std=c++20", "-O2", "-DSTARLING_NO_DEFLATE", "-I", args.source_root / "single_include",
         "server.cpp", "other.cpp", "-lsimdjson", "-pthread"], cwd=work, timeout=COMPILE_TIMEOUT)
    serve_and_check(work / "a.out", second_tu=True, deflate=False)


def single_header_tls(args, tmp):
    import ssl
    openssl = shutil.which("openssl")
    if openssl is None:
        raise Skip("the openssl command is not installed")
    work = tmp / "single_header_tls"
    shutil.copytree(HERE / "single_header_tls", work)
    run([*args.cxx, "-std=c++20", "-O2", "-I", args.source_root / "single_include", "server.cpp",
         "-lsimdjson", "-lz", "-lssl", "-lcrypto", "-pthread"], cwd=work, timeout=COMPILE_TIMEOUT)
    run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"], cwd=work)
    program = Program(work / "a.out", "--tls-cert", work / "cert.pem", "--tls-key", work / "key.pem")
    context = ssl.create_default_context(cafile=str(work / "cert.pem"))
    context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF

    async def echo():
        async with websockets.connect(f"wss://127.0.0.1:{program.port}/echo", ssl=context) as ws:
            await ws.send("héllo over TLS")
            assert await ws.recv() == "héllo over TLS"
    try:
        asyncio.run(asyncio.wait_for(echo(), timeout=CLIENT_TIMEOUT))
        log("  wss:// /echo answered")
    except BaseException:
        program.kill()
        log("consumer stderr:", program.stderr())
        raise
    program.stop()


def copy_repository(root, dest):
    """The repository's files (tracked and untracked but not ignored, as in the working tree) under dest;
    without git, everything but .git and build directories."""
    if (root / ".git").exists() and shutil.which("git"):
        listing = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                 stdout=subprocess.PIPE, check=True, timeout=SETUP_TIMEOUT).stdout
        count = 0
        for name in sorted(set(listing.decode().split("\0")) - {""}):
            source = root / name
            if not source.is_file():
                continue  # deleted in the working tree
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name, follow_symlinks=False)
            count += 1
        log(f"copied {count} files of {root} to {dest}")
    else:
        def ignore(directory, names):
            return [n for n in names if n in (".git", "__pycache__")
                    or (pathlib.Path(directory, n) / "meson-private").is_dir()]
        shutil.copytree(root, dest, ignore=ignore, symlinks=True)
        log(f"copied {root} to {dest} (no git)")
    for needed in ("meson.build", "include/starling.hpp", "tests/meson.build", "examples/meson.build"):
        assert (dest / needed).is_file(), f"{needed} missing from the copy"


def subproject(args, tmp):
    if not args.meson:
        raise Skip("meson not found")
    project = tmp / "consumer"
    project.mkdir()
    shutil.copy(HERE / "subproject" / "meson.build", project)
    shutil.copy(CONSUMER_SOURCE, project)
    copy_repository(args.source_root, project / "subprojects" / "starling")
    env = dict(os.environ, CXX=shlex.join(args.cxx))
    # --force-fallback-for: the subproject even if some Starling is installed on this machine (without it
    # an installed copy found by pkg-config or CMake would win, and this test would test that instead).
    output = run([args.meson, "setup", "build", "--buildtype=plain", "--wrap-mode=nodownload",
                  "--force-fallback-for=starling"], cwd=project, env=env)
    assert "Executing subproject starling" in output, "the subproject was not used"
    assert "Dependency starling found: YES" in output and "(overridden)" in output, output

    # Starling is a subproject: its tests and examples are neither built nor registered. The consumer's
    # program is the only target (header-only Starling has none of its own).
    targets = json.loads(run([args.meson, "introspect", "--targets", "build"], cwd=project))
    names = sorted(t["name"] for t in targets)
    assert names == ["echo_consumer"], f"targets besides the consumer's: {names}"
    tests = json.loads(run([args.meson, "introspect", "--tests", "build"], cwd=project))
    assert tests == [], f"tests registered: {[t['name'] for t in tests]}"
    options = {o["name"]: o["value"] for o in json.loads(run([args.meson, "introspect", "--buildoptions", "build"],
                                                             cwd=project))}
    log(f"  starling:tests={options.get('starling:tests')} starling:examples={options.get('starling:examples')}")

    run([args.meson, "compile", "-C", "build"], cwd=project, timeout=COMPILE_TIMEOUT)
    built = sorted(p.name for p in (project / "build" / "subprojects").rglob("*") if p.is_file() and os.access(p, os.X_OK))
    assert built == [], f"programs built in the subproject: {built}"
    serve_and_check(project / "build" / "echo_consumer")


def install(args, tmp):
    """`meson install` of a second build of Starling (no tests, no examples) to tmp/prefix; checks what
    was installed and returns the prefix."""
    if not args.meson:
        raise Skip("meson not found")
    prefix = tmp / "prefix"
    run([args.meson, "setup", tmp / "starling-build", f"--prefix={prefix}", "-Dtests=disabled", "-Dexamples=disabled"],
        cwd=args.source_root, env=dict(os.environ, CXX=shlex.join(args.cxx)))
    run([args.meson, "install", "-C", tmp / "starling-build"], cwd=tmp)

    include = args.source_root / "include"
    expected = sorted(str(p.relative_to(include)) for p in include.rglob("*") if p.is_file())
    installed = sorted(str(p.relative_to(prefix / "include")) for p in (prefix / "include").rglob("*") if p.is_file())
    assert installed == expected, f"installed headers differ from include/: {set(installed) ^ set(expected)}"
    for name in expected:
        assert (prefix / "include" / name).read_bytes() == (include / name).read_bytes(), name
    log(f"  {len(installed)} headers installed")
    return prefix


def installed_file(prefix, pattern):
    found = glob.glob(str(prefix / pattern), recursive=True)
    assert len(found) == 1, f"{pattern} under {prefix}: {found}"
    return pathlib.Path(found[0])


def pkg_config(args, tmp):
    if not args.pkg_config:
        raise Skip("pkg-config not found (tools/install-deps installs it)")
    prefix = install(args, tmp)
    pc = installed_file(prefix, "**/pkgconfig/starling.pc")
    log(pc.read_text())
    env = dict(os.environ, PKG_CONFIG_PATH=os.pathsep.join(filter(None, [str(pc.parent), os.environ.get("PKG_CONFIG_PATH")])))
    cflags = shlex.split(run([args.pkg_config, "--cflags", "starling"], cwd=tmp, env=env))
    libs = shlex.split(run([args.pkg_config, "--libs", "starling"], cwd=tmp, env=env))
    log(f"  cflags {cflags}\n  libs {libs}")
    assert f"-I{prefix / 'include'}" in cflags and "-std=c++20" in cflags and "-pthread" in cflags, cflags
    assert "-lsimdjson" in libs and "-pthread" in libs, libs
    assert run([args.pkg_config, "--print-requires", "starling"], cwd=tmp, env=env).split() == ["simdjson", "zlib"]

    work = tmp / "pkg-config-consumer"
    work.mkdir()
    shutil.copy(CONSUMER_SOURCE, work)
    # g++ $(pkg-config --cflags starling) echo_consumer.cpp $(pkg-config --libs starling): libraries after
    # the sources, which linkers that default to --as-needed (Ubuntu's) require.
    run([*args.cxx, *cflags, "echo_consumer.cpp", "-o", "echo_consumer", *libs], cwd=work, timeout=COMPILE_TIMEOUT)
    serve_and_check(work / "echo_consumer")


def cmake(args, tmp):
    if not args.cmake:
        raise Skip("cmake not found (tools/install-deps installs it)")
    prefix = install(args, tmp)
    config = installed_file(prefix, "**/cmake/starling/starlingConfig.cmake")
    installed_file(prefix, "**/cmake/starling/starlingConfigVersion.cmake")

    work = tmp / "cmake-consumer"
    work.mkdir()
    shutil.copy(HERE / "cmake" / "CMakeLists.txt", work)
    shutil.copy(CONSUMER_SOURCE, work)
    launcher, compiler = split_compiler(args.cxx)
    configure = [args.cmake, "-S", ".", "-B", "build", f"-DCMAKE_PREFIX_PATH={prefix}",
                 f"-DCMAKE_CXX_COMPILER={compiler[0]}", "-DCMAKE_VERBOSE_MAKEFILE=ON"]
    if compiler[1:]:
        configure.append(f"-DCMAKE_CXX_FLAGS={shlex.join(compiler[1:])}")
    if launcher:
        configure.append(f"-DCMAKE_CXX_COMPILER_LAUNCHER={launcher}")
    run(configure, cwd=work)
    cache = (work / "build" / "CMakeCache.txt").read_text()
    assert f"starling_DIR:PATH={config.parent}" in cache, "find_package(starling) did not use the installed copy"
    output = run([args.cmake, "--build", "build"], cwd=work, timeout=COMPILE_TIMEOUT)
    log("".join(f"  {line}\n" for line in output.splitlines() if "echo_consumer" in line and " -o " in line))
    assert f"{prefix / 'include'}" in output, "the installed include directory is not on the command line"
    serve_and_check(work / "build" / "echo_consumer")


METHODS = {"single-header": single_header, "single-header-no-deflate": single_header_no_deflate,
           "single-header-tls": single_header_tls, "subproject": subproject,
           "pkg-config": pkg_config, "cmake": cmake}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("method", choices=METHODS)
    parser.add_argument("--source-root", type=pathlib.Path, required=True)
    parser.add_argument("--meson")
    parser.add_argument("--cmake")
    parser.add_argument("--pkg-config")
    parser.add_argument("cxx", nargs="+", help="the compiler command, after --")
    args = parser.parse_args()
    args.source_root = args.source_root.resolve()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"starling-{args.method}-") as tmp:
        try:
            METHODS[args.method](args, pathlib.Path(tmp))
        except Skip as e:
            log(f"SKIP: {e}")
            return SKIP
    log(f"{args.method}: passed in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
