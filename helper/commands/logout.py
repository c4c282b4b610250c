"""`logout HOST`: forget the stored credentials of HOST."""

from __future__ import annotations

import argparse
from typing import IO

from ..actions import Switchboard
from . import registry_key

DESCRIPTION = "Forgetting credentials that are not stored is no error (as `erase` on the wire)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """HOST."""
    parser.add_argument("host", help="the registry, spelt as at login")


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Erase HOST's entry."""
    key = registry_key(args.host)
    Switchboard().erase(key)
    stdout.write(f"Removed credentials for {key.raw}.\n")
    return 0
