"""`doctor` checks of the static store: which key protects it, and a round trip of one throw-away entry.

The round trip stores, reads back and erases `PROBE_KEY` only (a `.invalid` host, RFC 2606: no registry
has it, so no real entry shares its key or its canonical spelling), with a random secret that is never
printed, and compares the store's list before and after. A store that does not exist yet is not created
by `doctor`: the first `login` creates it, with the key source the environment names then.
"""

from __future__ import annotations

import os

from .. import NAME, hosts, keychain
from ..backends.base import Credentials
from ..backends.file_store import PASSPHRASE_VAR, EncryptedFileStore, passphrase
from ..backends.keyring_store import KeyringStore
from ..backends.store import StaticStore, open_store
from ..config import Config
from ..errors import HelperError
from . import FAIL, OK, WARN, Check

PROBE_KEY = "doctor.switchboard.invalid"
PROBE_USER = "switchboard-doctor"
KEY_SOURCES = {"keyfile": "a key file", "passphrase": "a passphrase (SWITCHBOARD_PASSPHRASE)",
               "keyring": "a key kept in the OS keychain"}


def checks(config: Config | None) -> list[Check]:
    """Open the store (as every action would), say what protects it, and round-trip the probe entry."""
    try:
        static = open_store(config.store_kind if config is not None else None)
    except HelperError as exc:
        return [Check(FAIL, "store", str(exc), "set SWITCHBOARD_STORE to auto, keyring or file")]
    return [*key_source(static), round_trip(static)]


def _file_source(store: EncryptedFileStore) -> tuple[str | None, str | None]:
    """(the key source its header names, a problem), from `describe` (which never decrypts or prints a secret)."""
    rows = dict(store.describe(hosts.parse(PROBE_KEY)))
    return rows.get("file key"), rows.get("problem")


def key_source(static: StaticStore) -> list[Check]:
    """The keychain or the file key in use, and a SWITCHBOARD_PASSPHRASE that protects nothing."""
    found: list[Check] = []
    primary = static.primary
    files = [store for store in (primary, static.fallback) if isinstance(store, EncryptedFileStore)]
    if isinstance(primary, KeyringStore):
        found.append(Check(OK, "store key", f"secrets go to the OS keychain ({keychain.label()}); "
                           f"index {primary.index_path}"))
    for store in files:
        role = "" if store is primary else " (read fallback)"
        if not os.path.exists(store.path):
            would = ("a passphrase (SWITCHBOARD_PASSPHRASE)" if passphrase() else
                     "a key kept in the OS keychain" if keychain.backend() is not None else
                     f"the key file {store.key_path}")
            if store is primary:
                found.append(Check(OK, "store key", f"no store file yet at {store.path}; the first login creates it, "
                                   f"protected by {would}"))
            continue
        source, problem = _file_source(store)
        if problem:
            found.append(Check(FAIL, "store key", problem, "restore the store from a backup, or move it aside"))
            continue
        where = f" ({store.key_path})" if source == "keyfile" else ""
        found.append(Check(OK, "store key", f"encrypted file {store.path}{role}, protected by "
                           f"{KEY_SOURCES.get(str(source), repr(source))}{where}"))
        if passphrase() and source != "passphrase":
            found.append(Check(WARN, "passphrase", f"{PASSPHRASE_VAR} is set, but {store.path} is protected by "
                               f"{KEY_SOURCES.get(str(source), repr(source))}, not by it: the store refuses to "
                               "open while it is set",
                               f"{NAME} rekey (re-seals every entry under the passphrase), or unset "
                               f"{PASSPHRASE_VAR}"))
    if passphrase() and not files:
        found.append(Check(WARN, "passphrase", f"{PASSPHRASE_VAR} is set, but secrets go to the OS keychain: "
                           "the passphrase protects nothing",
                           f"unset {PASSPHRASE_VAR}, or set SWITCHBOARD_STORE=file and run {NAME} rekey"))
    return found


def round_trip(static: StaticStore) -> Check:
    """Store, read back and erase the probe entry; the list must be the same before and after."""
    primary = static.primary
    if isinstance(primary, EncryptedFileStore) and not os.path.exists(primary.path):
        return Check(OK, "store round trip", "skipped: no store yet (doctor does not create one)")
    key = hosts.parse(PROBE_KEY)
    secret = "doctor-" + os.urandom(16).hex()
    try:
        before = {raw: user for raw, user in static.list().items() if raw != PROBE_KEY}
    except HelperError as exc:
        return Check(FAIL, "store round trip", f"cannot list the store: {exc}", "see the message")
    try:
        try:
            primary.store(key, Credentials(PROBE_USER, secret))
            got = primary.get(key)
        finally:
            static.erase(key)
    except HelperError as exc:
        return Check(FAIL, "store round trip", f"store, get and erase of {PROBE_KEY} failed: {exc}",
                     "logins cannot be stored or read until this is fixed: see the message")
    if got.username != PROBE_USER or got.secret != secret:
        return Check(FAIL, "store round trip", f"{PROBE_KEY} read back differently from what was stored",
                     "the store is damaged: move it aside and log in again")
    after = static.list()
    if after != before:
        return Check(FAIL, "store round trip", f"the store's entries changed during the round trip "
                     f"({len(before)} before, {len(after)} after)", "run doctor again; another process may be "
                     "writing the store")
    return Check(OK, "store round trip", f"stored, read back and erased {PROBE_KEY} ({primary.kind}); "
                 f"{len(after)} real {'entry' if len(after) == 1 else 'entries'} untouched")
