#!/usr/bin/env python3
"""Generate single_include/starling.hpp from include/, check it is current, or write test shims.

The single header is include/starling.hpp with every project header it reaches inlined once, in
dependency order; system and third-party includes stay as they are.

  amalgamate.py                  rewrite single_include/starling.hpp
  amalgamate.py --check          exit 1 if the committed single header is stale
  amalgamate.py --shim DIR       write DIR/starling/**.hpp forwarding to <starling.hpp>, so the tests
                                 (which include their own component header first) build against the
                                 single header alone
"""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "include"
OUTPUT = ROOT / "single_include" / "starling.hpp"
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


def render() -> str:
    out = [BANNER]
    inline(INCLUDE / "starling.hpp", set(), out)
    return "".join(out)


def write_shims(directory: pathlib.Path) -> None:
    for header in INCLUDE.rglob("*.hpp"):
        rel = header.relative_to(INCLUDE)
        if rel.as_posix() == "starling.hpp":
            continue
        shim = directory / rel
        shim.parent.mkdir(parents=True, exist_ok=True)
        text = "// Test shim: the component header, served by the single header.\n#include <starling.hpp>\n"
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
    text = render()
    if args.check:
        if not OUTPUT.is_file() or OUTPUT.read_text() != text:
            print("single_include/starling.hpp is stale: run tools/amalgamate.py", file=sys.stderr)
            return 1
        print("single_include/starling.hpp is current")
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
