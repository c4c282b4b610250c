"""Command line: argv and streams in, exit code out. The only place that catches HelperError.

`docker-credential-switchboard get|store|erase|list|version` speaks the protocol; `login`, `logout`,
`resolve` and `routes` are management commands for people (see `commands`). Every error is one line on
stdout with exit 1; tracebacks only with `SWITCHBOARD_DEBUG=1`.
"""

from __future__ import annotations

import os
import sys

from . import FAST_RECORD_VAR, NAME, __version__, log
from .errors import HelperError

TYPE_CHECKING = False  # `typing` costs ~4 ms of import on a `get` miss; mypy still sees the import
if TYPE_CHECKING:
    from typing import IO

    from .actions import Switchboard
    from .hosts import RegistryKey

PROTOCOL_ACTIONS = ("store", "get", "erase", "list", "version")
COMMANDS = ("login", "logout", "resolve", "routes")
USAGE = f"Usage: {NAME} <store|get|erase|list|version>"
HELP = f"""{USAGE}
       {NAME} login HOST [-u USER] [--password-stdin]
       {NAME} logout HOST
       {NAME} resolve HOST
       {NAME} routes

Protocol actions (run by Docker, Podman, Buildah, Skopeo, docker-py, crane):
  get       read a server URL on stdin, print its credentials as JSON
  store     read {{"ServerURL","Username","Secret"}} JSON on stdin and save it
  erase     read a server URL on stdin and forget it
  list      print the stored server URLs and usernames as a JSON object
  version   print the version

Management commands:
  login     store credentials for HOST (password from --password-stdin or a no-echo prompt)
  logout    forget the credentials of HOST
  resolve   show which route and backend answer HOST, and where the secret would come from
  routes    show the effective routing table

Environment: SWITCHBOARD_CONFIG (routes file), SWITCHBOARD_STORE=auto|keyring|file,
SWITCHBOARD_PASSPHRASE, SWITCHBOARD_DATA_DIR, SWITCHBOARD_DEBUG=1, SWITCHBOARD_LOG=FILE,
SWITCHBOARD_FASTPATH=0 (standalone build: every get through Python)."""


def _protocol(action: str, stdin: IO[bytes], stdout: IO[str], fast_record: str | None = None) -> int:
    from . import hosts, protocol
    from .actions import Switchboard
    from .errors import ConfigError

    if action == "version":
        stdout.write(f"{NAME} ({NAME}) {__version__}\n")
        return 0
    if action == "list":
        try:
            board = Switchboard()
        except ConfigError as exc:  # list never fails (PROTOCOL.md §2.4): the static store still lists
            log.log(f"list: {exc}")
            from .config import Config

            board = Switchboard(Config(None, [], None))
        stdout.write(protocol.format_list(board.list()))
        return 0
    data = stdin.read()
    if action == "store":
        server, creds = protocol.parse_store(data)
        Switchboard().store(hosts.parse(server), creds)
        return 0
    server = protocol.parse_server_url(data)
    routes_read: tuple[tuple[str, str | None], ...] = ()
    if fast_record:  # the routes file's signature before it is read (helper/fastpath.py)
        from . import fastpath, paths

        routes_read = fastpath.signed((paths.routes_file(),))
    board = Switchboard()
    key = hosts.parse(server)
    if action == "get":
        _get(board, key, server, stdout, fast_record, routes_read)
    else:
        board.erase(key)
    return 0


def _get(board: Switchboard, key: RegistryKey, server: str, stdout: IO[str], fast_record: str | None,
         routes_read: tuple[tuple[str, str | None], ...]) -> None:
    from . import protocol

    try:
        creds = board.get(key)
    except HelperError:
        if fast_record:
            from . import fastpath

            fastpath.forget(fast_record)
        raise
    answer = protocol.format_credentials(server, creds)
    stdout.write(answer)
    if fast_record:  # the launcher is in front (helper/fastpath.py): let it repeat a token answer
        from . import fastpath
        from .backends.base import TokenCredentials

        entry = creds.pin() if isinstance(creds, TokenCredentials) else None
        if isinstance(creds, TokenCredentials) and entry is not None:
            fastpath.write(fast_record, answer, creds.fresh_until, (*routes_read, *creds.depends_on, entry))
        else:
            fastpath.forget(fast_record)


def main(argv: list[str], stdin: IO[bytes], stdout: IO[str], fast_record: str | None = None) -> int:
    """Run one command. `argv` excludes the program name. Returns the exit code.

    `fast_record` is the fingerprint the standalone build's launcher computed for this `get`
    (helper/fastpath.py); None everywhere else.
    """
    try:
        if not argv:
            stdout.write(USAGE + "\n")
            return 1
        action = argv[0]
        if action in ("-v", "--version") and len(argv) == 1:
            action = "version"
        if action in ("-h", "--help", "help") and len(argv) == 1:
            stdout.write(HELP + "\n")
            return 0
        if action in PROTOCOL_ACTIONS:
            if len(argv) != 1:
                stdout.write(USAGE + "\n")
                return 1
            return _protocol(action, stdin, stdout, fast_record if action == "get" else None)
        if action in COMMANDS:
            from .commands import run_command

            return run_command(argv, stdin, stdout)
        stdout.write(f"{NAME}: unknown action: {action}\n")
        return 1
    except HelperError as exc:
        log.log(f"{argv[0] if argv else ''}: {exc.message}")
        stdout.write(exc.message + "\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # the last line of defence: one line, no traceback, no secret
        if log.debug_enabled():
            import traceback

            traceback.print_exc()
        log.log(f"internal error: {type(exc).__name__}")
        stdout.write(f"{NAME}: internal error ({type(exc).__name__}); rerun with SWITCHBOARD_DEBUG=1 "
                     "and report it\n")
        return 1


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

    def read(self) -> bytes:
        return b""
