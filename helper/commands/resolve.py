"""`resolve HOST`: which route and backend answer HOST, and where the secret would come from."""

from __future__ import annotations

import argparse
from typing import IO

from ..actions import Switchboard
from . import registry_key

DESCRIPTION = """One `label  value` line each: the key, the route that matched and where it was
defined, the backend and what it would read. It never prints a secret."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """HOST."""
    parser.add_argument("host", help="the registry, as a client would send it")


def _answers(kind: str, backend: object) -> str:
    """Which source answers first: the route's backend, or the static store when an env route's variables are
    unset (the env backend then has nothing)."""
    if kind == "store":
        return "the static store"
    if kind == "none":
        return "nobody: not-found (anonymous)"
    if kind == "env":
        from ..backends.env import EnvBackend

        missing = backend.missing() if isinstance(backend, EnvBackend) else None
        if missing:
            return f"the static store ({missing})"
        return "env (its variables are set; the static store is not consulted)"
    return f"{kind} (then the static store if it has nothing)"


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Route HOST and describe the backend's sources."""
    key = registry_key(args.host)
    board = Switchboard()
    route = board.route(key)
    rows = [("key", key.raw), ("canonical", key.canonical or "(exact key only)"),
            ("route", route.pattern.text if route.pattern else "(none matched)"),
            ("from", route.spec.source), ("backend", route.backend)]
    if key.host is not None and route.pattern is None and (key.host != key.host.lower()
                                                           or key.host.endswith(".")):
        rows.append(("note", "hosts with capitals or a trailing dot match no route"))
    backend = board.backend(route.spec)
    rows.append(("answers", _answers(route.backend, backend)))
    rows += backend.describe(key)
    if route.backend not in ("store", "none", "helper"):
        rows += [(f"then store: {name}", value) for name, value in board.static.describe(key)]
    width = max(len(name) for name, _ in rows)
    stdout.writelines(f"{name.ljust(width)}  {value}\n" for name, value in rows)
    return 0
