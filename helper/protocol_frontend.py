"""The docker-credential-helpers front end: `store`, `get`, `erase`, `list`, `version`.

What Docker, Podman, Buildah, Skopeo, docker-py and crane run (../shared/PROTOCOL.md). The wire's
parsing and formatting are in `protocol`; this module runs the actions and owns their error policy:
every failure is one line on stdout with exit 1, never a traceback (`guarded`, which the management
commands share). A plain `get` imports this module and nothing else new: no argparse, no command table.
"""

from __future__ import annotations

from . import NAME, __version__, log
from .errors import HelperError

TYPE_CHECKING = False  # `typing` costs ~4 ms of import on a `get` miss; mypy still sees the import
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO

    from .actions import Switchboard
    from .fastpath import FastRecord
    from .hosts import RegistryKey

USAGE = f"Usage: {NAME} <store|get|erase|list|version>"
# the words of the wire contract, in the order the help lists them, with the help's one-line summaries
ACTIONS = {
    "get": "read a server URL on stdin, print its credentials as JSON",
    "store": 'read {"ServerURL","Username","Secret"} JSON on stdin and save it',
    "erase": "read a server URL on stdin and forget it",
    "list": "print the stored server URLs and usernames as a JSON object",
    "version": "print the version",
}


def claims(argv: list[str]) -> bool:
    """Whether `argv` is for this front end: no word, a protocol action, or a lone -v/--version."""
    return not argv or argv[0] in ACTIONS or (argv[0] in ("-v", "--version") and len(argv) == 1)


def main(argv: list[str], stdin: IO[bytes], stdout: IO[str], fast_record: str | None = None) -> int:
    """Run one protocol action; `argv` as `claims` accepted it. Returns the exit code.

    `fast_record` is the fingerprint the standalone build's launcher computed for this `get`
    (helper/fastpath.py); None everywhere else, and ignored by every other action.
    """
    return guarded(argv[0] if argv else "", stdout, lambda: _run(argv, stdin, stdout, fast_record))


def guarded(label: str, out: IO[str], call: Callable[[], int]) -> int:
    """Run `call`; turn every failure into one line on `out` and exit 1 (130 on Ctrl-C).

    `label` names the action in the log. No traceback unless `SWITCHBOARD_DEBUG=1`, and then on stderr.
    """
    try:
        return call()
    except HelperError as exc:
        log.log(f"{label}: {exc.message}")
        out.write(exc.message + "\n")
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
        out.write(f"{NAME}: internal error ({type(exc).__name__}); rerun with SWITCHBOARD_DEBUG=1 "
                  "and report it\n")
        return 1


def _run(argv: list[str], stdin: IO[bytes], stdout: IO[str], fast_record: str | None) -> int:
    if len(argv) != 1:  # `get --help` too: clients never pass arguments, so the answer is the protocol's usage
        stdout.write(USAGE + "\n")
        return 1
    action = "version" if argv[0] in ("-v", "--version") else argv[0]
    if action == "get" and fast_record:  # the launcher is in front: this get may leave a record for it
        from .fastpath import FastRecord

        return _protocol(action, stdin, stdout, FastRecord(fast_record))
    return _protocol(action, stdin, stdout, None)


def _protocol(action: str, stdin: IO[bytes], stdout: IO[str], record: FastRecord | None) -> int:
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
    data = stdin.read(protocol.MAX_INPUT + 1)  # never more: one byte past the cap is enough to refuse it
    if action == "store":
        server, creds = protocol.parse_store(data)
        Switchboard().store(hosts.parse(server), creds)
        return 0
    server = protocol.parse_server_url(data)
    if record is not None:  # the routes file's signature before it is read
        from . import paths

        record.watch(paths.all_routes_files())
    board = Switchboard()
    key = hosts.parse(server)
    if action == "get":
        _get(board, key, server, stdout, record)
    else:
        board.erase(key)
    return 0


def _get(board: Switchboard, key: RegistryKey, server: str, stdout: IO[str], record: FastRecord | None) -> None:
    from . import protocol

    try:
        creds = board.get(key)
    except HelperError:
        if record is not None:
            record.failed()
        raise
    answer = protocol.format_credentials(server, creds)
    stdout.write(answer)
    if record is not None:
        record.answered(answer, creds)
