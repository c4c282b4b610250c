"""Secrets in the OS keychain (macOS Keychain, Windows Credential Locker, Secret Service) via `keyring`.

One keychain item per registry key (service `docker-credential-switchboard`, account = the key, value =
JSON with Username and Secret). keyring cannot enumerate items, so a small index file in the data folder
(no secrets: keys, usernames) serves `list` and alias lookups; it is rewritten under the store lock. If the
index is lost, exact keys still answer straight from the keychain. The index also holds each key's canonical
spelling, for older versions that read it; this one never does: alias lookups and erase by alias recompute
it from the key (file_store.canonical), so an edited index cannot point one registry's item at another host.
"""

from __future__ import annotations

import os
import sys
import time

from .. import fastjson, fsutil, keychain, log
from ..errors import CredentialsNotFound, StoreError
from ..hosts import RegistryKey
from .base import Backend, Credentials, Rows
from .file_store import Entries, canonical, find_entry


class KeyringStore(Backend):
    """The keychain-backed static store."""

    kind = "keyring"

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.index_path = os.path.join(folder, "keyring-index.json")
        self.lock_path = os.path.join(folder, "store.lock")

    def _index(self) -> Entries:
        try:
            data = fsutil.read_bytes(self.index_path)
            index = fastjson.loads(data) if data is not None else {}
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            log.log(f"keyring index unreadable ({type(exc).__name__}); exact keys still work")
            return {}
        return {k: v for k, v in index.items() if isinstance(v, dict)} if isinstance(index, dict) else {}

    def _write_index(self, index: Entries) -> None:
        import json

        try:
            fsutil.atomic_write(self.index_path, json.dumps(index, indent=1, sort_keys=True).encode("utf-8"))
        except OSError as exc:
            raise StoreError(f"cannot write {self.index_path}: {exc.strerror}") from None

    def _read_item(self, raw: str) -> Credentials | None:
        try:
            value = keychain.get(raw)
        except Exception as exc:
            raise StoreError(f"the keychain did not answer ({type(exc).__name__}); unlock it, or set "
                             "SWITCHBOARD_STORE=file") from None
        if value is None:
            return None
        try:
            item = fastjson.loads(value)
            assert isinstance(item, dict)
            return Credentials(str(item["Username"]), str(item["Secret"]))
        except (ValueError, KeyError, TypeError, AssertionError):
            raise StoreError(f"the keychain item for {raw} is damaged; store it again") from None

    def get(self, key: RegistryKey) -> Credentials:
        found = find_entry(self._index(), key) or key.raw
        creds = self._read_item(found)
        if creds is None and found != key.raw:
            creds = self._read_item(key.raw)
        if creds is None:
            raise CredentialsNotFound()
        return creds

    def store(self, key: RegistryKey, creds: Credentials) -> None:
        fsutil.ensure_private_dir(self.folder)
        value = fastjson.dumps_strings({"Username": creds.username, "Secret": creds.secret})
        with fsutil.FileLock(self.lock_path):
            try:
                keychain.put(key.raw, value)
            except Exception as exc:
                hint = ("Windows Credential Locker holds at most 2.5 KB: set SWITCHBOARD_STORE=file for larger "
                        "secrets" if sys.platform == "win32" else "unlock the keychain, or set SWITCHBOARD_STORE=file")
                raise StoreError(f"the keychain refused the secret ({type(exc).__name__}); {hint}") from None
            index = self._index()
            # "canonical" is for older versions only: this one recomputes it (see the module docstring)
            index[key.raw] = {"username": creds.username, "canonical": key.canonical, "stored": time.time()}
            self._write_index(index)

    def erase(self, key: RegistryKey) -> None:
        with fsutil.FileLock(self.lock_path) if os.path.isdir(self.folder) else _NoLock():
            index = self._index()
            doomed = {raw for raw in index if raw == key.raw or (
                key.canonical is not None and canonical(raw) == key.canonical)}
            doomed.add(key.raw)
            for raw in doomed:
                try:
                    keychain.delete(raw)
                except Exception as exc:
                    raise StoreError(f"the keychain did not erase {raw} ({type(exc).__name__})") from None
            if doomed & index.keys():
                for raw in doomed & index.keys():
                    del index[raw]
                self._write_index(index)

    def list(self) -> dict[str, str]:
        return {raw: str(entry["username"]) for raw, entry in self._index().items()
                if isinstance(entry.get("username"), str)}

    def describe(self, key: RegistryKey) -> Rows:
        found = find_entry(self._index(), key)
        return [("store", f"OS keychain ({keychain.label()}), index {self.index_path}"),
                ("entry", found if found is not None else "none in the index")]


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
