"""`login HOST`: store credentials for HOST in the static store (or where HOST's route stores them)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO

from ..actions import Switchboard
from ..backends.base import Credentials
from ..errors import HelperError, UsageError
from . import registry_key

DESCRIPTION = """The password never comes from argv: pipe it with --password-stdin, or type it
at the no-echo prompt. The username comes from -u, or a prompt on a terminal.

Before storing, login checks the credentials as `docker login` does: GET https://HOST/v2/ and answer
its Basic or Bearer (token service) challenge. A refusal or an unreachable registry stores nothing.
https is verified against the system CA bundle (SSL_CERT_FILE names another); plain http only for
loopback hosts (127.0.0.0/8, ::1, localhost) or with --insecure."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """HOST, -u USER, --password-stdin."""
    parser.add_argument("host", help="the registry, e.g. ghcr.io or 127.0.0.1:5000")
    parser.add_argument("-u", "--username", metavar="USER", help="the username (prompted for if absent)")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    parser.add_argument("--no-verify", action="store_true",
                        help="store without checking the credentials against the registry")
    parser.add_argument("--insecure", action="store_true",
                        help="check over https without verifying its certificate, or over plain http")


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Ask for what is missing, then store."""
    key = registry_key(args.host)
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
    note = "" if args.no_verify else _verify(args.host.strip(), username, secret, args.insecure)
    board = Switchboard()
    board.store(key, Credentials(username, secret))
    stdout.write(note + f"Stored credentials for {key.raw} (user {username}).\n")
    return 0


def _verify(host: str, username: str, secret: str, insecure: bool) -> str:
    """The line to print before "Stored ...", or a HelperError (one line, nothing stored)."""
    from .. import registry_check as rc

    found = rc.check(host, username, secret, insecure=insecure, timeout=10.0)
    if found.outcome == rc.OK:
        return f"{host} accepted the credentials ({found.auth}, {found.scheme}).\n"
    if found.outcome == rc.ANONYMOUS:
        return f"{host} did not ask for credentials (GET /v2/ answered 200 without them); storing them unchecked.\n"
    if found.outcome == rc.REFUSED:
        raise HelperError(f"login: {host} refused the credentials ({found.status}): nothing stored")
    if found.outcome == rc.UNREACHABLE:
        raise HelperError(f"login: {host} is unreachable ({found.detail}): nothing stored "
                          "(--no-verify stores without checking)")
    raise HelperError(f"login: {host}: {found.detail}: nothing stored (--no-verify stores without checking)")


def _read_password(args: argparse.Namespace, stdin: IO[bytes]) -> str:
    if args.password_stdin:
        from ..protocol import MAX_INPUT

        raw = stdin.read(MAX_INPUT + 1)  # bounded like a `store` payload: one byte past the cap refuses it
        if len(raw) > MAX_INPUT:
            raise UsageError(f"--password-stdin: the password is larger than {MAX_INPUT // (1024 * 1024)} MiB")
        secret = raw.decode("utf-8", "strict").rstrip("\r\n")
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
