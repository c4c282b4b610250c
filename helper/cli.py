"""Command line: argv and streams in, exit code out; the first word picks the front end.

A front end owns its wire format and its error policy, and asks the same `Switchboard` for answers:

- the docker-credential-helpers protocol (`protocol_frontend`): `get|store|erase|list|version`, and
  no word at all. Checked first, from a literal table, so that a `get` loads no command machinery.
- the management commands (`commands`): every other word, help included. Each command is one module
  and one row of `commands.COMMANDS`; a program-facing command such as the kubelet plugin (`kubelet`) is
  one such row that names its own error policy (see `commands.Command`).

Both print every error as one line on stdout with exit 1; tracebacks only with `SWITCHBOARD_DEBUG=1`.
"""

from __future__ import annotations

import os
import sys

from . import FAST_RECORD_VAR, protocol_frontend

TYPE_CHECKING = False  # `typing` costs ~4 ms of import on a `get` miss; mypy still sees the import
if TYPE_CHECKING:
    from typing import IO


def main(argv: list[str], stdin: IO[bytes], stdout: IO[str], fast_record: str | None = None) -> int:
    """Run one command. `argv` excludes the program name. Returns the exit code.

    `fast_record` is the fingerprint the standalone build's launcher computed for this `get`
    (helper/fastpath.py); None everywhere else.
    """
    if protocol_frontend.claims(argv):
        return protocol_frontend.main(argv, stdin, stdout, fast_record)
    from . import commands

    return commands.main(argv, stdin, stdout)


def run() -> None:
    """Console-script entry point."""
    stdout = sys.stdout
    try:
        stdout.reconfigure(encoding="utf-8", errors="replace")  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        pass
    stdin: IO[bytes] = sys.stdin.buffer if sys.stdin is not None else _Empty()  # type: ignore[assignment]
    # the launcher's fingerprint is for this process alone: never for an exec route or a delegate
    fast_record = os.environ.pop(FAST_RECORD_VAR, None)
    if fast_record is not None:
        from .fastpath import record_id

        fast_record = record_id(fast_record)
    code = main(sys.argv[1:], stdin, stdout, fast_record)
    try:
        stdout.flush()
    except (BrokenPipeError, OSError):
        code = code or 1
    sys.exit(code)


class _Empty:
    """Stands in for a closed stdin (a service started with no stdin at all)."""

    def read(self, size: int = -1) -> bytes:
        return b""
