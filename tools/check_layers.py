#!/usr/bin/env python3
"""Check the layer rules of include/starling/: which folder may include which.

  protocol/, http/  the pure protocol core: no Asio, and nothing from the layers above
  session/          the engine of one connection: nothing from runtime/, api/ or the top
  runtime/, api/    the server and the user-facing types: nothing from the top
  the top           app.hpp, router.hpp, endpoint.hpp, event_websocket.hpp (what users build apps with),
                    client.hpp (starling::connect),
                    testing.hpp (opt-in: the in-process test client, not in <starling.hpp>)
                    tls.hpp (TLS, opt-in: the only way in to OpenSSL)
                    redis.hpp (opt-in: the Redis backplane, not in <starling.hpp>)
  base              options.hpp, logging.hpp, task.hpp and detail/ (shared settings and the coroutine
                    type): usable by every Asio layer, and including no layer above protocol/

Nothing includes the umbrella <starling.hpp> but users, and nothing it reaches includes OpenSSL or
asio::ssl: TLS is reached only through tls.hpp, so plain ws:// programs need no OpenSSL. Exits 1 and
names each broken rule.
"""
import pathlib
import re
import sys

INCLUDE = pathlib.Path(__file__).resolve().parent.parent / "include"
PROJECT_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](starling(?:\.hpp|/[^>"]+))[>"]', re.M)
ASIO_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](asio[/.][^>"]*)[>"]', re.M)
TLS_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]((?:openssl/|asio/ssl)[^>"]*)[>"]', re.M)

TOP = {"app.hpp", "router.hpp", "endpoint.hpp", "event_websocket.hpp", "client.hpp", "testing.hpp", "tls.hpp", "redis.hpp"}
BASE = {"options.hpp", "logging.hpp", "task.hpp"}


def layer(rel: str) -> str:
    """The layer of a header given relative to include/starling/."""
    if rel == "starling.hpp":
        return "umbrella"
    first = rel.split("/")[0]
    if first in ("protocol", "http"):
        return "protocol"
    if first in ("session", "runtime", "api"):
        return first
    if first == "detail" or rel in BASE:
        return "base"
    if rel in TOP:
        return "top"
    return "unplaced"


# What each layer may include (besides itself).
ALLOWED = {
    "protocol": {"protocol"},
    "base": {"protocol", "base"},
    "session": {"protocol", "base", "session"},
    "runtime": {"protocol", "base", "session", "runtime", "api"},
    "api": {"protocol", "base", "session", "runtime", "api"},
    "top": {"protocol", "base", "session", "runtime", "api", "top"},
}


def main() -> int:
    problems = []
    headers = sorted(p for p in (INCLUDE / "starling").rglob("*.hpp"))
    for path in headers:
        rel = path.relative_to(INCLUDE / "starling").as_posix()
        own = layer(rel)
        if own == "unplaced":
            problems.append(f"{rel}: not in any layer (move it into a layer folder or name it in tools/check_layers.py)")
            continue
        text = path.read_text()
        if own == "protocol" and ASIO_INCLUDE.search(text):
            problems.append(f"{rel}: the protocol core includes Asio ({ASIO_INCLUDE.search(text).group(1)})")
        if own == "protocol" and "asio_config.hpp" in text:
            problems.append(f"{rel}: the protocol core includes detail/asio_config.hpp")
        for m in PROJECT_INCLUDE.finditer(text):
            target = m.group(1)
            if target == "starling.hpp":
                problems.append(f"{rel}: includes the umbrella header")
                continue
            target_layer = layer(target.removeprefix("starling/"))
            if target_layer not in ALLOWED[own]:
                problems.append(f"{rel} ({own}) includes {target} ({target_layer})")
    # Everything the umbrella header reaches, and whether any of it pulls in TLS.
    reached, pending = set(), ["starling.hpp"]
    while pending:
        rel = pending.pop()
        if rel in reached or not (INCLUDE / rel).is_file():
            continue
        reached.add(rel)
        text = (INCLUDE / rel).read_text()
        if m := TLS_INCLUDE.search(text):
            problems.append(f"{rel} is reached from <starling.hpp> and includes {m.group(1)}: TLS belongs behind starling/tls.hpp")
        pending.extend(m.group(1) for m in PROJECT_INCLUDE.finditer(text))
    for p in problems:
        print(p)
    if not problems:
        print(f"{len(headers)} headers keep the layer rules")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
