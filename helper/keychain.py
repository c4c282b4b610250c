"""Find a real OS keychain, cheaply, or say there is none.

macOS and Windows: keyring's backend, instantiated directly rather than through keyring's entry-point
discovery (~80 ms of imports per call; a PyInstaller build loses entry points altogether, keyring#324).
Linux: the Secret Service (helper/secretservice.py, keyring-compatible items, without keyring's ~120 ms
of imports), probed only when a D-Bus session bus exists, so a headless CI runner pays nothing; the
probe's connection serves the first `get`, so a keychain `get` connects and authenticates once.
`PYTHON_KEYRING_BACKEND` (keyring's own variable) still selects any keyring backend.
"""

from __future__ import annotations

import os
import sys

from . import log

SERVICE = "docker-credential-switchboard"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeAlias

    from .secretservice import SecretServiceKeychain

    Keychain: TypeAlias = "SecretServiceKeychain | KeyringKeychain"

_cached: list[Keychain | None] = []


class KeyringKeychain:
    """A keyring backend (macOS, Windows, or PYTHON_KEYRING_BACKEND) with SecretServiceKeychain's behaviour:
    deleting a missing item is not an error."""

    def __init__(self, backend: object) -> None:
        self.backend = backend

    def get_password(self, service: str, username: str) -> str | None:
        value = self.backend.get_password(service, username)  # type: ignore[attr-defined]
        return value if isinstance(value, str) else None

    def set_password(self, service: str, username: str, password: str) -> None:
        self.backend.set_password(service, username, password)  # type: ignore[attr-defined]

    def delete_password(self, service: str, username: str) -> None:
        import keyring.errors

        try:
            self.backend.delete_password(service, username)  # type: ignore[attr-defined]
        except keyring.errors.PasswordDeleteError:
            pass


def _session_bus_present() -> bool:
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return True
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return runtime is not None and os.path.exists(os.path.join(runtime, "bus"))


def _load() -> Keychain | None:
    named = os.environ.get("PYTHON_KEYRING_BACKEND")
    if named:
        import keyring.core

        return KeyringKeychain(keyring.core.load_keyring(named))
    if sys.platform == "darwin":
        import keyring.backends.macOS

        return KeyringKeychain(keyring.backends.macOS.Keyring())
    if sys.platform == "win32":
        import keyring.backends.Windows

        return KeyringKeychain(keyring.backends.Windows.WinVaultKeyring())
    if not _session_bus_present():
        return None
    from .secretservice import SecretServiceKeychain

    try:
        return SecretServiceKeychain.probe()  # its connection is kept for the first `get`
    except Exception as exc:  # any failure means "not viable": fall back to the encrypted file
        log.log(f"keychain: Secret Service not available ({type(exc).__name__})")
        return None


def backend() -> Keychain | None:
    """The keychain to use, or None when this machine has no viable keychain."""
    if not _cached:
        try:
            _cached.append(_load())
        except Exception as exc:
            log.log(f"keychain: unavailable ({type(exc).__name__})")
            _cached.append(None)
    return _cached[0]


def label() -> str:
    """Which keychain answers, for `resolve`."""
    kr = backend()
    if kr is None:
        return "none"
    return type(kr.backend).__module__ if isinstance(kr, KeyringKeychain) else type(kr).__module__


def get(name: str) -> str | None:
    """The keychain item `name` of our service, or None."""
    kr = backend()
    if kr is None:
        return None
    return kr.get_password(SERVICE, name)


def put(name: str, value: str) -> None:
    """Create or replace the keychain item `name`."""
    kr = backend()
    if kr is None:
        raise RuntimeError("no keychain")
    kr.set_password(SERVICE, name, value)


def delete(name: str) -> None:
    """Delete the keychain item `name`; nothing happens when it does not exist."""
    kr = backend()
    if kr is not None:
        kr.delete_password(SERVICE, name)
