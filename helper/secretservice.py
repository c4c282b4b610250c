"""The freedesktop Secret Service (gnome-keyring, KeePassXC, KWallet 5.97+), keyring-compatible, and fast to read.

keyring's own SecretService backend does the same calls, but importing it runs `keyring/__init__.py`
(keyring.core, jaraco.context, urllib.request, email, ...): ~120 ms of imports on every keyring-store
`get`. Items are exactly keyring's (attributes `service` and `username`, plus `application` on creation,
label "Password for 'USER' on 'SERVICE'"), so items written by either are read by the other, and
`secret-tool lookup service S username U` reads ours.

The probe and `get` (every `docker pull`) speak D-Bus themselves (helper/dbuswire.py) on one connection:
measured on gnome-keyring, a `get` through `secretstorage` cost ~60 ms against ~12 ms for Debian's
`docker-credential-secretservice`, of which ~23 ms was importing jeepney and secretstorage, ~9 ms
`cryptography` (loaded for the session cipher) and ~5 ms a second connection for the availability probe;
the D-Bus traffic itself is under 2 ms. A `get` now sends OpenSession, the default collection's `Locked`
property and SearchItems in one write, then GetSecret: two round trips after Hello. The session is the
encrypted one libsecret uses (helper/dhsession.py says why not `plain`), without `cryptography`.

Anything unusual (the default collection missing or locked, an item locked on its own, an error reply, a
bus address other than `unix:`) takes the `secretstorage` path, which prompts to unlock and creates the
default collection as keyring does. `store` and `erase` always take it: they are rare, and their speed is
not what a pull waits for.
"""

from __future__ import annotations

import os

from . import log

TYPE_CHECKING = False  # `typing` is not imported on the hot path; mypy still sees the import
if TYPE_CHECKING:
    from secretstorage.collection import Collection

    from .dbuswire import Connection

APPLICATION = "Python keyring library"  # keyring's appid: the attribute its items carry
BUS_NAME = "org.freedesktop.secrets"
SERVICE_PATH = "/org/freedesktop/secrets"
DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"  # the alias path, as secretstorage uses it
SS = "org.freedesktop.Secret"
PROPERTIES = "org.freedesktop.DBus.Properties"
DBUS = ("/org/freedesktop/DBus", "org.freedesktop.DBus")


class _SlowPath(Exception):
    """The fast path met something it leaves to secretstorage."""


def _bus_address() -> str | None:
    return os.environ.get("DBUS_SESSION_BUS_ADDRESS") or None


class SecretServiceKeychain:
    """get_password / set_password / delete_password over the default collection, keyring-compatible."""

    def __init__(self, wire: Connection | None = None) -> None:
        self._wire = wire  # the probe's connection, kept for this process's first `get`

    def __del__(self) -> None:
        self._drop_wire()

    def _drop_wire(self) -> None:
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.close()

    @classmethod
    def probe(cls) -> SecretServiceKeychain | None:
        """A keychain when a Secret Service answers (or can be activated) on the session bus, else None."""
        address = _bus_address()
        if address is not None:
            from . import dbuswire

            try:
                wire = dbuswire.Connection(address)
            except dbuswire.Unsupported:
                pass
            else:
                owned = wire.call(*DBUS, "NameHasOwner", "org.freedesktop.DBus", "s", BUS_NAME)
                activatable = wire.call(*DBUS, "ListActivatableNames", "org.freedesktop.DBus")
                try:
                    found = bool(wire.reply(owned)[0]) or BUS_NAME in wire.reply(activatable)[0]  # type: ignore[operator]
                except BaseException:
                    wire.close()
                    raise
                if found:
                    return cls(wire)
                wire.close()
                return None
        from contextlib import closing

        import secretstorage

        with closing(secretstorage.dbus_init()) as connection:
            return cls() if secretstorage.check_service_availability(connection) else None

    def _take_wire(self) -> Connection:
        wire, self._wire = self._wire, None
        if wire is not None:
            return wire
        address = _bus_address()
        if address is None:
            raise _SlowPath("no DBUS_SESSION_BUS_ADDRESS")
        from . import dbuswire

        try:
            return dbuswire.Connection(address)
        except dbuswire.Unsupported as exc:
            raise _SlowPath(str(exc)) from None

    def _fast_get(self, service: str, username: str) -> str | None:
        from . import dbuswire, dhsession

        wire = self._take_wire()
        try:
            session = dhsession.Session()
            opened = wire.call(SERVICE_PATH, f"{SS}.Service", "OpenSession", BUS_NAME, "sv", dhsession.ALGORITHM,
                               ("ay", session.public))
            locked = wire.call(DEFAULT_COLLECTION, PROPERTIES, "Get", BUS_NAME, "ss", f"{SS}.Collection", "Locked")
            search = wire.call(DEFAULT_COLLECTION, f"{SS}.Collection", "SearchItems", BUS_NAME, "a{ss}",
                               {"service": service, "username": username})
            try:
                output, session_path = wire.reply(opened)
                is_locked = wire.reply(locked)[0]
                items = wire.reply(search)[0]
            except dbuswire.DBusError as exc:  # no default collection, no DH support, ...
                raise _SlowPath(exc.name) from None
            if is_locked is not False:
                raise _SlowPath("the default collection is locked")
            if not isinstance(items, list) or not items:
                return None
            try:
                reply = wire.reply(wire.call(items[0], f"{SS}.Item", "GetSecret", BUS_NAME, "o", session_path))[0]
            except dbuswire.DBusError as exc:  # the item is locked on its own, or went away meanwhile
                raise _SlowPath(exc.name) from None
            if not (isinstance(reply, tuple) and len(reply) == 4 and isinstance(output, bytes)
                    and isinstance(reply[1], bytes) and isinstance(reply[2], bytes)):
                raise _SlowPath("an unexpected GetSecret or OpenSession reply")
            secret = dhsession.decrypt(session.key(output), reply[1], reply[2])
        finally:
            wire.close()
        return secret.decode("utf-8")

    @staticmethod
    def _collection() -> Collection:
        import secretstorage

        collection = secretstorage.get_default_collection(secretstorage.dbus_init())
        if collection.is_locked():
            collection.unlock()  # may show the desktop's unlock prompt, as keyring does
            if collection.is_locked():
                collection.connection.close()
                raise secretstorage.exceptions.LockedException("the keychain is locked")
        return collection

    def get_password(self, service: str, username: str) -> str | None:
        """The secret of the first matching item, or None."""
        try:
            return self._fast_get(service, username)
        except _SlowPath as exc:
            log.log(f"keychain: reading through secretstorage ({exc})")
        from contextlib import closing

        collection = self._collection()
        with closing(collection.connection):
            for item in collection.search_items({"service": service, "username": username}):
                if item.is_locked():
                    item.unlock()
                secret: bytes = item.get_secret()
                return secret.decode("utf-8")
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        """Create or replace the item."""
        from contextlib import closing

        self._drop_wire()
        collection = self._collection()
        attributes = {"service": service, "username": username, "application": APPLICATION}
        with closing(collection.connection):
            collection.create_item(f"Password for '{username}' on '{service}'", attributes, password.encode("utf-8"),
                                   replace=True)

    def delete_password(self, service: str, username: str) -> None:
        """Delete the matching item; none is fine."""
        from contextlib import closing

        self._drop_wire()
        collection = self._collection()
        with closing(collection.connection):
            for item in collection.search_items({"service": service, "username": username}):
                item.delete()
                return
