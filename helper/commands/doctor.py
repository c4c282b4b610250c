"""`doctor`: check that this machine will work, and say what to do where it will not (helper/doctor/)."""

from __future__ import annotations

import argparse
import json
from typing import IO

DESCRIPTION = """One line per check, [ OK ], [WARN] or [FAIL], each problem with its fix: the helper on
PATH, Docker's and Podman's configuration (and plaintext logins they still hold),
the routes files, the static store (a round trip of a throw-away entry) and its
key, what each route would use, the token cache. Exit 0 when nothing failed, 1
otherwise. Never prints a secret, never reaches the network."""

# the registry check (issue 11 item 4) lives with login verification; until it lands the option says so
REGISTRY_UNAVAILABLE_EXIT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--json, --registry."""
    parser.add_argument("--json", action="store_true",
                        help="print a JSON array of {status, check, message, fix} instead of lines")
    parser.add_argument("--registry", metavar="HOST",
                        help="also check HOST's /v2/ with its credentials (not yet available)")


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Run every check; exit 1 if any failed."""
    if args.registry is not None:
        stdout.write("doctor --registry: not yet available (it comes with login's registry check)\n")
        return REGISTRY_UNAVAILABLE_EXIT
    from ..doctor import FAIL, run_all

    found = run_all()
    if args.json:
        stdout.write(json.dumps([check.as_dict() for check in found], indent=1) + "\n")
    else:
        stdout.writelines(check.line() for check in found)
        failed = sum(check.status == FAIL for check in found)
        warned = sum(check.status != FAIL and check.status != "OK" for check in found)
        stdout.write(f"{failed} failed, {warned} warnings\n")
    return 1 if any(check.status == FAIL for check in found) else 0
