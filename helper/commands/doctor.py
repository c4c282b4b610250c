"""`doctor`: check that this machine will work, and say what to do where it will not (helper/doctor/)."""

from __future__ import annotations

import argparse
import json
from typing import IO

from ..errors import UsageError
from . import registry_key

DESCRIPTION = """One line per check, [ OK ], [WARN] or [FAIL], each problem with its fix: the helper on
PATH, Docker's and Podman's configuration (and plaintext logins they still hold),
the routes files, the static store (a round trip of a throw-away entry) and its
key, what each route would use, the token cache. Exit 0 when nothing failed, 1
otherwise. Never prints a secret. Only --registry HOST reaches the network: it gets
HOST's credentials as a client would and checks them against GET /v2/ as login does
(--insecure: TLS unverified, or plain http)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--json, --registry."""
    parser.add_argument("--json", action="store_true",
                        help="print a JSON array of {status, check, message, fix} instead of lines")
    parser.add_argument("--registry", metavar="HOST",
                        help="also check that HOST accepts the credentials a client would get for it")
    parser.add_argument("--insecure", action="store_true",
                        help="with --registry: https without verifying its certificate, or plain http")


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Run every check; exit 1 if any failed."""
    from ..doctor import FAIL, run_all

    if args.insecure and args.registry is None:
        raise UsageError("--insecure goes with --registry HOST")
    host = None if args.registry is None else registry_key(args.registry).raw
    found = run_all()
    if host is not None:
        from ..doctor.registry import check

        found.append(check(host, insecure=args.insecure))
    if args.json:
        stdout.write(json.dumps([check.as_dict() for check in found], indent=1) + "\n")
    else:
        stdout.writelines(check.line() for check in found)
        failed = sum(check.status == FAIL for check in found)
        warned = sum(check.status != FAIL and check.status != "OK" for check in found)
        stdout.write(f"{failed} failed, {warned} warnings\n")
    return 1 if any(check.status == FAIL for check in found) else 0
