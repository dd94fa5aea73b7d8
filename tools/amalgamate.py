#!/usr/bin/env python3
"""Generate the single headers from include/, check they are current, or write test shims.

single_include/starling.hpp is include/starling.hpp with every project header it reaches inlined once,
in dependency order; system and third-party includes stay as they are. It needs no OpenSSL.
single_include/starling_tls.hpp is TLS on top of it: it includes "starling.hpp" (the single header
beside it), then inlines include/starling/tls.hpp and what that reaches beyond starling.hpp. A program
includes either or both.

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
TLS_OUTPUT = ROOT / "single_include" / "starling_tls.hpp"
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


def render() -> tuple[str, str, set, set]:
    """Both single headers, and the headers each one inlined."""
    out, seen = [BANNER], set()
    inline(INCLUDE / "starling.hpp", seen, out)
    tls_out, tls_seen = [TLS_BANNER], set(seen)
    inline(INCLUDE / "starling" / "tls.hpp", tls_seen, tls_out)
    return "".join(out), "".join(tls_out), seen, tls_seen - seen


def write_shims(directory: pathlib.Path) -> None:
    _, _, _, tls_only = render()
    for header in INCLUDE.rglob("*.hpp"):
        rel = header.relative_to(INCLUDE)
        if rel.as_posix() == "starling.hpp":
            continue
        shim = directory / rel
        shim.parent.mkdir(parents=True, exist_ok=True)
        single = "starling_tls.hpp" if header in tls_only else "starling.hpp"
        text = f"// Test shim: the component header, served by the single header.\n#include <{single}>\n"
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
    text, tls_text, _, _ = render()
    if args.check:
        stale = [out for out, want in ((OUTPUT, text), (TLS_OUTPUT, tls_text))
                 if not out.is_file() or out.read_text() != want]
        for out in stale:
            print(f"single_include/{out.name} is stale: run tools/amalgamate.py", file=sys.stderr)
        if stale:
            return 1
        print("single_include/starling.hpp and starling_tls.hpp are current")
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    TLS_OUTPUT.write_text(tls_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
