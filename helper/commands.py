"""Management commands for people: `login`, `logout`, `resolve`, `routes`.

They share the executable with the protocol actions but none of its words. Output is plain text on
stdout; errors are one line with the fix, exit 1. Secrets are never printed or taken from argv.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO

from . import NAME, hosts
from .actions import Switchboard
from .backends.base import Credentials
from .errors import HelperError, UsageError
from .router import DEFAULT_SOURCE, all_routes


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {NAME} --help)")


def _key(host: str) -> hosts.RegistryKey:
    host = host.strip()
    if not host:
        raise UsageError("a registry host is required, e.g. ghcr.io or 127.0.0.1:5000")
    if "\0" in host or "\n" in host or "\r" in host:
        raise UsageError("the registry host must be a single line without NUL bytes")
    return hosts.parse(host)


def _read_password(args: argparse.Namespace, stdin: IO[bytes]) -> str:
    if args.password_stdin:
        secret = stdin.read().decode("utf-8", "strict").rstrip("\r\n")
        if not secret:
            raise UsageError("--password-stdin: nothing was read from stdin")
        return secret
    try:
        tty_ok = os.isatty(0) or sys.platform == "win32"
    except OSError:
        tty_ok = False
    if not tty_ok:
        raise UsageError("no terminal to prompt on: pipe the secret with --password-stdin")
    import getpass

    secret = getpass.getpass("Password: ")
    if not secret:
        raise UsageError("an empty password was entered; nothing stored")
    return secret


def _login(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    key = _key(args.host)
    username = args.username
    if not username:
        if args.password_stdin or not os.isatty(0):
            raise UsageError("login needs -u USER when the password comes from stdin")
        username = input("Username: ").strip()
        if not username:
            raise UsageError("an empty username was entered; nothing stored")
    try:
        secret = _read_password(args, stdin)
    except UnicodeDecodeError:
        raise UsageError("--password-stdin: the password is not valid UTF-8") from None
    board = Switchboard()
    board.store(key, Credentials(username, secret))
    stdout.write(f"Stored credentials for {key.raw} (user {username}).\n")
    return 0


def _logout(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    key = _key(args.host)
    Switchboard().erase(key)
    stdout.write(f"Removed credentials for {key.raw}.\n")
    return 0


def _resolve(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    key = _key(args.host)
    board = Switchboard()
    route = board.route(key)
    rows = [("key", key.raw), ("canonical", key.canonical or "(exact key only)"),
            ("route", route.pattern.text if route.pattern else "(none matched)"),
            ("from", route.spec.source), ("backend", route.backend)]
    if key.host is not None and route.pattern is None and (key.host != key.host.lower()
                                                           or key.host.endswith(".")):
        rows.append(("note", "hosts with capitals or a trailing dot match no route"))
    backend = board.backend(route.spec)
    rows += backend.describe(key)
    if route.backend not in ("store", "none", "helper"):
        rows += [(f"then store: {name}", value) for name, value in board.static.describe(key)]
    width = max(len(name) for name, _ in rows)
    stdout.writelines(f"{name.ljust(width)}  {value}\n" for name, value in rows)
    return 0


def _routes(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    board = Switchboard()
    stdout.write(f"routes file: {board.config.path or 'none (built-in routes only)'}\n")
    rows = [(pattern.text, spec.backend, spec.source) for pattern, spec in all_routes(board.config)]
    rows.append(("*", "store", DEFAULT_SOURCE))
    width = max(len(r[0]) for r in rows)
    bwidth = max(len(r[1]) for r in rows)
    stdout.write(f"{'PATTERN'.ljust(width)}  {'BACKEND'.ljust(bwidth)}  FROM\n")
    stdout.writelines(f"{p.ljust(width)}  {b.ljust(bwidth)}  {s}\n" for p, b, s in rows)
    return 0


def run_command(argv: list[str], stdin: IO[bytes], stdout: IO[str]) -> int:
    """Run a management command; raises HelperError with a one-line message on failure."""
    parser = _Parser(prog=NAME, add_help=False)
    sub = parser.add_subparsers(dest="command")
    login = sub.add_parser("login", add_help=False)
    login.add_argument("host")
    login.add_argument("-u", "--username")
    login.add_argument("--password-stdin", action="store_true")
    for name in ("logout", "resolve"):
        sub.add_parser(name, add_help=False).add_argument("host")
    sub.add_parser("routes", add_help=False)
    args = parser.parse_args(argv)
    handler = {"login": _login, "logout": _logout, "resolve": _resolve, "routes": _routes}[args.command]
    try:
        return handler(args, stdin, stdout)
    except EOFError:
        raise HelperError("no input: nothing stored") from None
