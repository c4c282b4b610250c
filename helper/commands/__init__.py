"""Management commands: one table, one module per command, the top-level help generated from both.

A command is a module of this package (see `CommandModule`) and one row of `COMMANDS`: its word, its
one-line summary and a loader whose body is a literal `from . import x` (PyInstaller follows only
literal imports; the loader keeps one command from importing the others' modules). Adding a command
is that module and that row: `--help` (which loads every row), `CMD --help` and dispatch follow.

Front end: the commands answer people in plain text on stdout, and every error is one line on stdout
with exit 1, the protocol's own policy (`protocol_frontend.guarded`). A command whose caller is a
program with its own wire contract (`kubelet`, the kubelet's image credential provider plugin) is the
same module and row: its `run` speaks the caller's format on stdout, and the row says
`errors_to_stderr=True` so that its one-line errors go to stderr instead. No separate front-end table:
the first word of argv picks the row, and the row is all that differs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import IO, NoReturn, Protocol

from .. import NAME, hosts
from ..errors import HelperError, UsageError
from ..protocol_frontend import ACTIONS, USAGE, guarded

HELP_WORDS = ("-h", "--help", "help")
ENVIRONMENT = """Environment: SWITCHBOARD_CONFIG (routes file), SWITCHBOARD_STORE=auto|keyring|file,
SWITCHBOARD_PASSPHRASE, SWITCHBOARD_DATA_DIR, SWITCHBOARD_DEBUG=1, SWITCHBOARD_LOG=FILE,
SWITCHBOARD_FASTPATH=0 (standalone build: every get through Python)."""


class CommandModule(Protocol):
    """What a command module defines (a module satisfies this Protocol by its top-level names)."""

    DESCRIPTION: str  # shown under the summary in `CMD --help`; "" for none

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's arguments (-h/--help is already there)."""

    def run(self, args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
        """Do the command; return the exit code, or raise HelperError with a one-line message."""


class Command:
    """One row of the table: the command's word, its summary for the help, and its module's loader."""

    __slots__ = ("errors_to_stderr", "load", "name", "summary")

    def __init__(self, name: str, summary: str, load: Callable[[], CommandModule], *,
                 errors_to_stderr: bool = False) -> None:
        self.name = name
        self.summary = summary  # one line, lower case, no full stop: a column of the top-level help
        self.load = load
        self.errors_to_stderr = errors_to_stderr  # for a program-facing command: stdout carries answers only

    def __repr__(self) -> str:
        return f"Command({self.name!r})"


def _login() -> CommandModule:
    from . import login
    return login


def _logout() -> CommandModule:
    from . import logout
    return logout


def _resolve() -> CommandModule:
    from . import resolve
    return resolve


def _routes() -> CommandModule:
    from . import routes
    return routes


def _kubelet_config() -> CommandModule:
    from . import kubelet_config
    return kubelet_config


def _import() -> CommandModule:
    from . import import_cmd
    return import_cmd


def _configure() -> CommandModule:
    from . import configure
    return configure


def _rekey() -> CommandModule:
    from . import rekey
    return rekey


def _doctor() -> CommandModule:
    from . import doctor
    return doctor


def _kubelet() -> CommandModule:
    from . import kubelet
    return kubelet


def _export() -> CommandModule:
    from . import export
    return export


COMMANDS: tuple[Command, ...] = (
    Command("login", "store credentials for HOST (password from --password-stdin or a no-echo prompt)", _login),
    Command("logout", "forget the credentials of HOST", _logout),
    Command("resolve", "show which route and backend answer HOST, and where the secret would come from", _resolve),
    Command("routes", "show the effective routing table", _routes),
    Command("kubelet-config", "print a kubelet CredentialProviderConfig for the routing table in force",
            _kubelet_config, errors_to_stderr=True),
    Command("configure", "make Docker (config.json) or Podman/Buildah/Skopeo (a drop-in) use this helper", _configure),
    Command("import", "move the plaintext logins of Docker's and Podman's auth files into the store", _import),
    Command("rekey", "re-seal the encrypted file store under the key source the environment names now", _rekey),
    Command("doctor", "check that Docker, Podman and the store will work here, and say how to fix what won't", _doctor),
    Command("export", "write credentials as a dockerconfigjson, a Kubernetes Secret, a netrc or env lines",
            _export, errors_to_stderr=True),
    Command("kubelet", "answer a kubelet's CredentialProviderRequest on stdin (an image credential provider plugin)",
            _kubelet, errors_to_stderr=True),
)


class HelpRequested(Exception):
    """Raised by -h/--help while parsing: the front end prints the help on its own stdout, exit 0."""


class Parser(argparse.ArgumentParser):
    """argparse for one command: a usage error is a UsageError (one line), -h never prints to sys.stdout."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def print_help(self, file: object = None) -> None:
        raise HelpRequested  # argparse's -h action calls this, then exit(): stop parsing here instead


def registry_key(host: str) -> hosts.RegistryKey:
    """A command's HOST argument as a registry key; a UsageError for an empty or multi-line one."""
    host = host.strip()
    if not host:
        raise UsageError("a registry host is required, e.g. ghcr.io or 127.0.0.1:5000")
    if "\0" in host or "\n" in host or "\r" in host:
        raise UsageError("the registry host must be a single line without NUL bytes")
    return hosts.parse(host)


def find(name: str) -> Command | None:
    """The row of command `name`, or None."""
    return next((row for row in COMMANDS if row.name == name), None)


def parser(row: Command, module: CommandModule, *, add_help: bool = True, width: int | None = None) -> Parser:
    """The parser of `row`'s command; `width` fixes the line length (default: the terminal's)."""
    description = row.summary + (f"\n\n{module.DESCRIPTION}" if module.DESCRIPTION else "")
    made = Parser(prog=f"{NAME} {row.name}", description=description, add_help=add_help,
                  formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(prog, width=width))
    module.add_arguments(made)
    return made


def help_text() -> str:
    """The top-level help: usage lines, protocol actions, the table's commands, the environment."""
    usages = [parser(row, row.load(), add_help=False, width=10_000).format_usage().removeprefix("usage: ").strip()
              for row in COMMANDS]
    column = max(10, 2 + max(len(word) for word in [*ACTIONS, *(row.name for row in COMMANDS)]))
    lines = [USAGE, *(f"       {usage}" for usage in usages), "",
             "Protocol actions (run by Docker, Podman, Buildah, Skopeo, docker-py, crane):",
             *(f"  {word.ljust(column - 1)} {summary}" for word, summary in ACTIONS.items()), "",
             "Management commands:",
             *(f"  {row.name.ljust(column - 1)} {row.summary}" for row in COMMANDS), "",
             f"Run `{NAME} COMMAND --help` for a command's options.", "", ENVIRONMENT]
    return "\n".join(lines) + "\n"


def main(argv: list[str], stdin: IO[bytes], stdout: IO[str]) -> int:
    """Run `argv` (a word the protocol does not claim): help, a command, or an unknown word. Exit code."""
    if argv[:1] == ["help"] and len(argv) == 2 and find(argv[1]):  # `help CMD` is `CMD --help`
        argv = [argv[1], "--help"]
    row = find(argv[0])
    out = sys.stderr if row is not None and row.errors_to_stderr else stdout
    return guarded(argv[0], out, lambda: _dispatch(row, argv, stdin, stdout))


def _dispatch(row: Command | None, argv: list[str], stdin: IO[bytes], stdout: IO[str]) -> int:
    if row is None:
        if argv[0] in HELP_WORDS and len(argv) == 1:
            stdout.write(help_text())
            return 0
        stdout.write(f"{NAME}: unknown action: {argv[0]}\n")
        return 1
    module = row.load()
    command = parser(row, module)
    try:
        args = command.parse_args(argv[1:])
    except HelpRequested:
        stdout.write(command.format_help())
        return 0
    try:
        return module.run(args, stdin, stdout)
    except EOFError:  # input() at a prompt whose stdin was closed
        raise HelperError("no input: nothing stored") from None
