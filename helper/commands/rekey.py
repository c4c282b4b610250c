"""`rekey`: re-seal every entry of the encrypted file store under the key source the environment names now."""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO

from ..backends.file_store import EncryptedFileStore, passphrase
from ..errors import StoreError, UsageError

DESCRIPTION = """The store is opened with the key its header names: the key file, the keychain item, or
a passphrase (the old one from --old-passphrase-stdin or a no-echo prompt, never from argv; without
either, SWITCHBOARD_PASSPHRASE itself). Every entry is then sealed again under the source the
environment names: SWITCHBOARD_PASSPHRASE if set (a fresh salt), else the keychain if one is reachable,
else a new key file. The new store replaces the old one in one rename under the store lock; the old key
file or keychain item is removed only after that. An entry that does not open refuses the whole rekey,
unless --drop-unreadable. The encrypted file store only: the keychain store has no store key."""

SOURCES = {"keyfile": "the key file", "keyring": "the keychain", "passphrase": "a passphrase"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--old-passphrase-stdin, --drop-unreadable, --dry-run."""
    parser.add_argument("--old-passphrase-stdin", action="store_true",
                        help="read the passphrase that protects the store now from stdin")
    parser.add_argument("--drop-unreadable", action="store_true",
                        help="drop the entries that do not open under the current key instead of refusing")
    parser.add_argument("--dry-run", action="store_true", help="open every entry and say what would change; "
                        "change nothing")


def _name(source: str) -> str:
    return f"{SOURCES.get(source, 'an unknown source')} ({source})"


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Rekey the file store; one summary line (and the dropped keys), no secret."""
    from ..actions import Switchboard

    static = Switchboard().static
    store = next((backend for backend in (static.primary, static.fallback)
                  if isinstance(backend, EncryptedFileStore)), None)
    if store is None:
        raise StoreError("rekey applies to the encrypted file store only: the keychain store "
                         "(SWITCHBOARD_STORE=keyring) keeps each secret in the keychain and has no store key")
    old_passphrase = _old_passphrase(args, stdin, store)
    done = store.rekey(old_passphrase, drop_unreadable=args.drop_unreadable, dry_run=args.dry_run)
    if done is None:
        stdout.write(f"Nothing to rekey: there is no store at {store.path} (the next login creates one).\n")
        return 0
    if done.unchanged:
        stdout.write(f"The store {store.path} is already under {_name(done.new_source)}: nothing to do "
                     "(set SWITCHBOARD_PASSPHRASE to move it under a passphrase).\n")
        return 0
    verb = "Would re-seal" if args.dry_run else "Re-sealed"
    plural = "entry" if done.resealed == 1 else "entries"
    stdout.write(f"{verb} {done.resealed} {plural} of {store.path}: {_name(done.old_source)} -> "
                 f"{_name(done.new_source)}{' (dry run: nothing changed)' if args.dry_run else ''}.\n")
    if done.dropped:
        stdout.write(f"{'Would drop' if args.dry_run else 'Dropped'} {len(done.dropped)} unreadable: "
                     f"{', '.join(done.dropped)}.\n")
    if done.leftover:
        stdout.write(f"Note: {done.leftover}.\n")
    return 0


def _old_passphrase(args: argparse.Namespace, stdin: IO[bytes], store: EncryptedFileStore) -> str | None:
    """The passphrase that protects the store now: stdin, else a prompt when one is needed, else None."""
    if args.old_passphrase_stdin:
        from ..protocol import MAX_INPUT

        raw = stdin.read(MAX_INPUT + 1)
        if len(raw) > MAX_INPUT:
            raise UsageError("--old-passphrase-stdin: the input is too large")
        try:
            secret = raw.decode("utf-8", "strict").rstrip("\r\n")
        except UnicodeDecodeError:
            raise UsageError("--old-passphrase-stdin: the passphrase is not valid UTF-8") from None
        if not secret:
            raise UsageError("--old-passphrase-stdin: nothing was read from stdin")
        return secret
    if store.source() != "passphrase" or passphrase():
        return None  # not needed, or SWITCHBOARD_PASSPHRASE is the old one too (a fresh salt)
    try:
        tty_ok = os.isatty(0) or sys.platform == "win32"
    except OSError:
        tty_ok = False
    if not tty_ok:
        raise UsageError("the store is protected by a passphrase: pipe it with --old-passphrase-stdin; "
                         "nothing was changed")
    import getpass

    return getpass.getpass("Current store passphrase: ") or None
