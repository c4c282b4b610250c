"""The static store: the OS keychain where one is viable, else the encrypted file; chosen per call.

`SWITCHBOARD_STORE=keyring|file` (or `[store] kind` in the routes file) forces a choice. With `auto`,
reads also look in the encrypted file when the keychain has nothing, so secrets saved while no keychain
was reachable (an SSH session on a desktop) are still found.
"""

from __future__ import annotations

import os

from .. import keychain, paths
from ..errors import ConfigError, CredentialsNotFound, StoreError
from ..hosts import RegistryKey
from .base import Backend, Credentials, Rows
from .file_store import EncryptedFileStore
from .keyring_store import KeyringStore

KINDS = ("auto", "keyring", "file")


class StaticStore(Backend):
    """Where `store` puts secrets: a primary store, plus the file as a read fallback in `auto` mode."""

    kind = "store"

    def __init__(self, primary: Backend, fallback: Backend | None = None) -> None:
        self.primary = primary
        self.fallback = fallback

    def get(self, key: RegistryKey) -> Credentials:
        if self.fallback is None:
            return self.primary.get(key)
        # The exact key wins over an alias across both stores, as it does within one.
        exact = RegistryKey(key.raw)
        for backend, asked in ((self.primary, exact), (self.fallback, exact), (self.primary, key),
                               (self.fallback, key)):
            try:
                return backend.get(asked)
            except CredentialsNotFound:
                continue
        raise CredentialsNotFound()

    def store(self, key: RegistryKey, creds: Credentials) -> None:
        self.primary.store(key, creds)

    def erase(self, key: RegistryKey) -> None:
        self.primary.erase(key)
        if self.fallback is not None:
            self.fallback.erase(key)

    def list(self) -> dict[str, str]:
        found = self.fallback.list() if self.fallback is not None else {}
        found.update(self.primary.list())
        return found

    def describe(self, key: RegistryKey) -> Rows:
        rows = self.primary.describe(key)
        if self.fallback is not None:
            rows += [(f"fallback {name}", value) for name, value in self.fallback.describe(key)]
        return rows


def open_store(kind: str | None = None, folder: str | None = None) -> StaticStore:
    """The static store for this call. `kind` comes from the routes file; the environment wins."""
    chosen = os.environ.get("SWITCHBOARD_STORE") or kind or "auto"
    if chosen not in KINDS:
        raise ConfigError(f"SWITCHBOARD_STORE={chosen!r} is not one of auto, keyring, file")
    folder = folder or paths.data_dir()
    file_store = EncryptedFileStore(folder)
    if chosen == "file":
        return StaticStore(file_store)
    if keychain.backend() is not None:
        return StaticStore(KeyringStore(folder), file_store if chosen == "auto" else None)
    if chosen == "keyring":
        return StaticStore(_Unavailable())
    return StaticStore(file_store)


class _Unavailable(Backend):
    kind = "keyring"

    def _fail(self) -> StoreError:
        return StoreError("SWITCHBOARD_STORE=keyring but no keychain is available here (no Secret Service "
                          "on D-Bus); use SWITCHBOARD_STORE=file")

    def get(self, key: RegistryKey) -> Credentials:
        raise self._fail()

    def store(self, key: RegistryKey, creds: Credentials) -> None:
        raise self._fail()

    def erase(self, key: RegistryKey) -> None:
        raise self._fail()
