"""Diagnostics that stay out of the way: nothing on stderr unless `SWITCHBOARD_DEBUG=1`.

Docker Compose and BuildKit show a helper's stderr in their UI, so the default is silence.
`SWITCHBOARD_LOG=/path` appends the same lines to a file (created 0600). Callers pass messages that
never contain a secret; `redact` is a second line of defence for URLs with userinfo or a query.
The stdlib `logging` package is not used: it costs several milliseconds of import on every `get`.
"""

from __future__ import annotations

import os
import sys
import time


def falsy(value: str) -> bool:
    """Whether a switch's value turns it off: "", "0", "false", "no" or "off", in any case.

    The launcher (packaging/launcher/launcher.c falsy) reads SWITCHBOARD_DEBUG and SWITCHBOARD_FASTPATH the
    same way, ASCII case only; tests/test_fastpath.py holds both to every spelling.
    """
    return value.isascii() and value.lower() in ("", "0", "false", "no", "off")


def debug_enabled() -> bool:
    """Whether `SWITCHBOARD_DEBUG` asks for diagnostics (and tracebacks) on stderr: set and not `falsy`."""
    return not falsy(os.environ.get("SWITCHBOARD_DEBUG", ""))


def redact(text: str) -> str:
    """Drop a URL's userinfo and query string, the places a secret can ride along in a URL."""
    out = []
    for word in text.split(" "):
        if "://" in word:
            scheme, _, rest = word.partition("://")
            authority, slash, path = rest.partition("/")
            if "@" in authority:
                authority = "***@" + authority.rsplit("@", 1)[1]
            path = path.split("?", 1)[0] + ("?***" if "?" in path else "")
            word = f"{scheme}://{authority}{slash}{path}"
        out.append(word)
    return " ".join(out)


def log(message: str) -> None:
    """Record one diagnostic line on stderr (debug mode) and in the log file (if configured)."""
    target = os.environ.get("SWITCHBOARD_LOG")
    debug = debug_enabled()
    if not target and not debug:
        return
    # one line per record, bounded: SDK errors can carry whole HTML pages
    flat = " ".join(message.split())
    line = f"switchboard[{os.getpid()}] {redact(flat if len(flat) <= 600 else flat[:600] + '...')}"
    if debug:
        print(line, file=sys.stderr)
    if target:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(f"{stamp} {line}\n")
        except OSError:
            pass  # a log that cannot be written must never break a credential lookup
