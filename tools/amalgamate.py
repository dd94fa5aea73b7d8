#!/usr/bin/env python3
"""Generate single_include/starling.hpp from include/, check it is current, or write test shims.

The single header is include/starling.hpp with every project header it reaches inlined once, in
dependency order; system and third-party includes stay as they are. The opt-in headers (OPT_IN:
the Redis backplane) are not in it: each gets a single header of its own next to it,
single_include/starling_NAME.hpp, which includes "starling.hpp" and inlines only what that lacks.

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
OPT_IN = {"redis.hpp": ROOT / "single_include" / "starling_redis.hpp"}
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


def render_opt_in(header: str) -> str:
    """The single header of one opt-in header: what <starling.hpp> already holds is not repeated."""
    seen: set = set()
    inline(INCLUDE / "starling.hpp", seen, [])
    out = [BANNER.replace("Starling: header-only C++20 coroutine WebSocket framework.",
                          f"Starling, opt-in part starling/{header}: use it beside starling.hpp."),
           '#include "starling.hpp"\n']
    inline(INCLUDE / "starling" / header, seen, out)
    return "".join(out)


def outputs() -> dict:
    """Every generated single header and its text."""
    files = {OUTPUT: render()}
    for header, path in OPT_IN.items():
        files[path] = render_opt_in(header)
    return files


def write_shims(directory: pathlib.Path) -> None:
    for header in INCLUDE.rglob("*.hpp"):
        rel = header.relative_to(INCLUDE)
        if rel.as_posix() == "starling.hpp":
            continue
        shim = directory / rel
        shim.parent.mkdir(parents=True, exist_ok=True)
        served_by = OPT_IN[rel.name].name if rel.parent.as_posix() == "starling" and rel.name in OPT_IN else "starling.hpp"
        text = f"// Test shim: the component header, served by the single header.\n#include <{served_by}>\n"
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
