"""`import`: move the plaintext logins of Docker's and Podman's auth files into the helper's store."""

from __future__ import annotations

import argparse
import shlex
from typing import IO

from .. import authfiles
from ..actions import Switchboard
from ..backends.base import Credentials
from ..errors import HelperError, UsageError
from . import registry_key

HELPER = "switchboard"

DESCRIPTION = """Reads `auths` from $DOCKER_CONFIG/config.json (default ~/.docker/config.json),
$REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json and ~/.config/containers/auth.json (or
only the --from files). Every login is stored and read back first; only then is each file rewritten
once, atomically, with the entry left as {} (Docker's form: Docker still asks the helper for it).
If any store fails, no file is changed. Malformed entries are reported and left in place. Exit 0
when every importable login was imported, 1 otherwise."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--from, --dry-run, --keep-plaintext, --no-backup."""
    parser.add_argument("--from", dest="sources", metavar="FILE", action="append",
                        help="read only this auth file (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="say what would happen; store and write nothing")
    parser.add_argument("--keep-plaintext", action="store_true", help="store the logins, leave the files as they are")
    parser.add_argument("--no-backup", action="store_true", help="make no backup (it would hold the plaintext)")


class _Source:
    def __init__(self, path: str, raw: bytes, doc: dict[str, object], found: list[authfiles.Entry]) -> None:
        self.path, self.raw, self.doc, self.entries = path, raw, doc, found
        self.lines: list[str] = []
        self.imported: set[str] = set()


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Read every file, store every login, read each back, then rewrite the files."""
    paths = args.sources or authfiles.default_sources()
    if not paths:
        stdout.write("No auth file found: nothing to import.\n")
        return 0
    failed = store_failed = False
    sources: list[_Source] = []
    for path in paths:
        try:
            raw, doc = authfiles.read(path)
            sources.append(_Source(path, raw, doc, authfiles.entries(doc)))
        except (OSError, ValueError) as exc:
            if not args.sources and isinstance(exc, FileNotFoundError):
                continue
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            stdout.write(f"{path}: cannot read it ({why}); left unchanged\n")
            failed = True
    board = None if args.dry_run else Switchboard()
    chosen: dict[str, tuple[str, str, str]] = {}  # key -> (username, secret, first path)
    for source in sources:
        for entry in source.entries:
            name = entry.key
            if entry.problem:
                source.lines.append(f"{name}: skipped: {entry.problem}; left in place")
            elif not entry.login:
                source.lines.append(f"{name}: skipped: no plaintext login (already {{}})")
            elif name in chosen and chosen[name][:2] != (entry.username, entry.secret):
                source.lines.append(f"{name}: skipped: differs from the login in {chosen[name][2]}; left in place")
            elif board is None:
                source.lines.append(f"{name}: would import (user {entry.username})")
                chosen.setdefault(name, (entry.username, entry.secret, source.path))
            else:
                if name not in chosen:
                    chosen[name] = (entry.username, entry.secret, source.path)
                    problem = _store_and_verify(board, name, entry.username, entry.secret)
                    if problem:
                        failed = store_failed = True
                        source.lines.append(f"{name}: not imported: {problem}")
                        continue
                source.imported.add(name)
                source.lines.append(f"{name}: imported (user {entry.username})")
    for source in sources:
        stdout.write(f"{source.path}:\n" + "".join(f"  {line}\n" for line in source.lines or ["no `auths`"]))
    if args.dry_run:
        stdout.write("Dry run: nothing stored, no file changed.\n")
        return 1 if failed else 0
    if store_failed:
        stdout.write("No file changed: the plaintext stays until every login is stored.\n")
        return 1
    if args.keep_plaintext:
        if any(source.imported for source in sources):
            stdout.write("Plaintext kept (--keep-plaintext): the files are unchanged.\n")
        return 1 if failed else 0
    for source in sources:
        if source.imported and not _rewrite(source, args.no_backup, stdout):
            failed = True
    return 1 if failed else 0


def _store_and_verify(board: Switchboard, name: str, username: str, secret: str) -> str:
    """Store, then read back from where it was stored; "" or why not (never the secret)."""
    key = registry_key(name)
    try:
        board.store(key, Credentials(username, secret))
        route = board.route(key)
        # read back from the writer: a token route's get would answer with its token first
        reader = board.backend(route.spec) if route.backend == "helper" else board.static
        got = reader.get(key)
    except UsageError:
        raise
    except HelperError as exc:
        return f"store failed ({exc})"
    except Exception as exc:
        return f"store failed ({type(exc).__name__})"
    if (got.username, got.secret) != (username, secret):
        return "stored, but reading it back gave other credentials"
    return ""


def _rewrite(source: _Source, no_backup: bool, stdout: IO[str]) -> bool:
    """Back up and rewrite one file (the imported entries as {}); False (and a line) on failure."""
    path = source.path
    try:
        with open(path, "rb") as handle:
            if handle.read() != source.raw:
                stdout.write(f"{path}: changed while importing; left unchanged (run import again)\n")
                return False
        saved = None if no_backup else authfiles.backup(path, source.raw)
        authfiles.replace(path, authfiles.without_plaintext(source.doc, source.imported))
    except OSError as exc:
        stdout.write(f"{path}: not rewritten ({exc.strerror or type(exc).__name__}); the plaintext stays\n")
        return False
    stdout.write(f"Removed the plaintext from {path} (entries kept as {{}}).\n")
    if saved:
        stdout.write(f"Backup with the plaintext (0600): {saved}; delete it once logins work: "
                     f"rm {shlex.quote(saved)}\n")
    if not all(authfiles.uses_helper(source.doc, key, HELPER) for key in source.imported):
        stdout.write(f"Note: {path} does not send every imported host to the helper yet: run "
                     "`docker-credential-switchboard configure docker` (or `configure podman`).\n")
    return True
