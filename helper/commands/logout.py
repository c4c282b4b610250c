"""`logout HOST`: forget the stored credentials of HOST."""

from __future__ import annotations

import argparse
from typing import IO

from .. import hosts
from ..actions import Switchboard
from . import registry_key

DESCRIPTION = "Forgetting credentials that are not stored is no error (as `erase` on the wire): it says so, exit 0."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """HOST."""
    parser.add_argument("host", help="the registry, spelt as at login")


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Erase HOST's entry; say whether there was one (known for the static store only)."""
    key = registry_key(args.host)
    board = Switchboard()
    stored = None if board.route(key).backend == "helper" else _in_static_store(board, key)
    board.erase(key)
    if stored is False:
        stdout.write(f"Nothing stored for {key.raw}.\n")
    else:
        stdout.write(f"Removed credentials for {key.raw}.\n")
    return 0


def _in_static_store(board: Switchboard, key: hosts.RegistryKey) -> bool:
    """Whether `erase` would remove an entry: the exact key or one with the same canonical spelling."""
    for raw in board.static.list():
        if raw == key.raw or (key.canonical is not None and hosts.parse(raw).canonical == key.canonical):
            return True
    return False
