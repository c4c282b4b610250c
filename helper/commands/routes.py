"""`routes`: the effective routing table, most specific first."""

from __future__ import annotations

import argparse
from typing import IO

from ..actions import Switchboard
from ..router import DEFAULT_SOURCE, all_routes

DESCRIPTION = """The user's routes file's routes, the system-wide files' and the built-in ones in
the order they are tried, each with where it was defined (file and line). Then
the built-in env presets, which take only hosts no other route claims. The last
row is the default: every other host goes to the static store."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Print the table."""
    board = Switchboard()
    stdout.write(f"routes file: {board.config.path or 'none (built-in routes only)'}\n")
    stdout.write(f"system routes files: {', '.join(board.config.system_paths) or 'none'}\n")
    rows = [(pattern.text, spec.backend, spec.source) for pattern, spec in all_routes(board.config)]
    rows.append(("*", "store", DEFAULT_SOURCE))
    width = max(len(r[0]) for r in rows)
    bwidth = max(len(r[1]) for r in rows)
    stdout.write(f"{'PATTERN'.ljust(width)}  {'BACKEND'.ljust(bwidth)}  FROM\n")
    stdout.writelines(f"{p.ljust(width)}  {b.ljust(bwidth)}  {s}\n" for p, b, s in rows)
    return 0
