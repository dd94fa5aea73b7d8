#!/usr/bin/env python3
"""Generate the single headers from include/, check they are current, or write test shims.

The single header is include/starling.hpp with every project header it reaches inlined once, in
dependency order; system and third-party includes stay as they are. It needs no OpenSSL and no Redis.
The opt-in headers (OPT_IN: TLS, the Redis backplane, the test client) are not in it: each gets a single header of its
own next to it, single_include/starling_NAME.hpp, which includes "starling.hpp" (the single header
beside it) and inlines only what that lacks. A program includes starling.hpp and any of them.

  amalgamate.py                  rewrite both single headers
  amalgamate.py --check          exit 1 if a committed single header is stale
  amalgamate.py --shim DIR       write DIR/starling/**.hpp forwarding to <starling.hpp> (or, for the
                                 TLS headers, <starling_tls.hpp>), so the tests (which include their
                                 own component header first) build against the single headers alone
"""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "include"
OUTPUT = ROOT / "single_include" / "starling.hpp"
OPT_IN = {
    "tls.hpp": ROOT / "single_include" / "starling_tls.hpp",
    "redis.hpp": ROOT / "single_include" / "starling_redis.hpp",
    # Tests only: it needs no library of its own, but a program that serves has no use for it.
    "testing.hpp": ROOT / "single_include" / "starling_testing.hpp",
}
PROJECT_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](starling(?:\.hpp|/[^>"]+))[>"]')
PRAGMA_ONCE = re.compile(r"^\s*#\s*pragma\s+once\b")

BANNER = """\
// Starling: header-only C++20 coroutine WebSocket framework.
//
// GENERATED FILE, DO NOT EDIT. Made by tools/amalgamate.py from include/; edit those headers and run
// the script again. A test fails when this file is stale.
//
// Needs: standalone Asio (headers), simdjson (link -lsimdjson), threads (-pthread), C++20.
#pragma once
"""

TLS_BANNER = """\
// Starling with TLS (wss://): single_include/starling.hpp plus <starling/tls.hpp>.
//
// GENERATED FILE, DO NOT EDIT. Made by tools/amalgamate.py from include/; edit those headers and run
// the script again. A test fails when this file is stale.
//
// Needs: what starling.hpp needs (keep it beside this file), and OpenSSL (link -lssl -lcrypto).
#pragma once

#include "starling.hpp"
"""


def inline(path: pathlib.Path, seen: set, out: list) -> None:
    if path in seen:
        return
    seen.add(path)
    rel = path.relative_to(INCLUDE).as_posix()
    out.append(f"\n// ---- begin {rel} ----\n")
    for line in path.read_text().splitlines(keepends=True):
        if PRAGMA_ONCE.match(line):
            continue
        m = PROJECT_INCLUDE.match(line)
        if m:
            target = INCLUDE / m.group(1)
            if not target.is_file():
                sys.exit(f"{rel}: includes missing header {m.group(1)}")
            inline(target, seen, out)
            continue
        out.append(line)
    out.append(f"// ---- end {rel} ----\n")


def render() -> tuple[str, set]:
    """The single header, and the headers it inlined."""
    out, seen = [BANNER], set()
    inline(INCLUDE / "starling.hpp", seen, out)
    return "".join(out), seen


def render_opt_in(header: str) -> tuple[str, set]:
    """The single header of one opt-in header, and the headers it inlined that <starling.hpp> lacks:
    what <starling.hpp> already holds is not repeated."""
    _, base = render()
    seen = set(base)
    banner = TLS_BANNER if header == "tls.hpp" else BANNER.replace(
        "Starling: header-only C++20 coroutine WebSocket framework.",
        f"Starling, opt-in part starling/{header}: use it beside starling.hpp.")
    out = [banner] if header == "tls.hpp" else [banner, '#include "starling.hpp"\n']  # TLS_BANNER has it
    inline(INCLUDE / "starling" / header, seen, out)
    return "".join(out), seen - base


def outputs() -> dict:
    """Every generated single header and its text."""
    files = {OUTPUT: render()[0]}
    for header, path in OPT_IN.items():
        files[path] = render_opt_in(header)[0]
    return files


def write_shims(directory: pathlib.Path) -> None:
    # A header an opt-in part alone reaches is served by that part's single header.
    served_by = {}
    for name, path in OPT_IN.items():
        for header in render_opt_in(name)[1]:
            served_by[header] = path.name
    for header in INCLUDE.rglob("*.hpp"):
        rel = header.relative_to(INCLUDE)
        if rel.as_posix() == "starling.hpp":
            continue
        shim = directory / rel
        shim.parent.mkdir(parents=True, exist_ok=True)
        text = f"// Test shim: the component header, served by the single header.\n#include <{served_by.get(header, 'starling.hpp')}>\n"
        if not shim.exists() or shim.read_text() != text:
            shim.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the single header is stale")
    parser.add_argument("--shim", type=pathlib.Path, help="write forwarding headers into this directory")
    args = parser.parse_args()
    if args.shim:
        write_shims(args.shim)
        return 0
    files = outputs()
    if args.check:
        stale = [p for p, text in files.items() if not p.is_file() or p.read_text() != text]
        for p in stale:
            print(f"{p.relative_to(ROOT)} is stale: run tools/amalgamate.py", file=sys.stderr)
        if stale:
            return 1
        print("the single headers are current")
        return 0
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
