"""The freedesktop Secret Service (gnome-keyring, KeePassXC, KWallet 5.97+) through `secretstorage` alone.

keyring's own SecretService backend does the same calls, but importing it runs `keyring/__init__.py`
(keyring.core, jaraco.context, urllib.request, email, ...): ~120 ms of imports on every keyring-store
`get`, against ~40 ms for `secretstorage` (which needs cryptography for the D-Bus session cipher).
Items are exactly keyring's (attributes `service` and `username`, plus `application` on creation,
label "Password for 'USER' on 'SERVICE'"), so items written by either are read by the other.
"""

from __future__ import annotations

from contextlib import closing

TYPE_CHECKING = False  # `typing` is not imported on the hot path; mypy still sees the import
if TYPE_CHECKING:
    from secretstorage.collection import Collection

APPLICATION = "Python keyring library"  # keyring's appid: the attribute its items carry


class SecretServiceKeychain:
    """get_password / set_password / delete_password over the default collection, keyring-compatible."""

    @staticmethod
    def available() -> bool:
        """Whether a Secret Service answers (or can be activated) on the session bus."""
        import secretstorage

        with closing(secretstorage.dbus_init()) as connection:
            return bool(secretstorage.check_service_availability(connection))

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
        collection = self._collection()
        attributes = {"service": service, "username": username, "application": APPLICATION}
        with closing(collection.connection):
            collection.create_item(f"Password for '{username}' on '{service}'", attributes, password.encode("utf-8"),
                                   replace=True)

    def delete_password(self, service: str, username: str) -> None:
        """Delete the matching item; none is fine."""
        collection = self._collection()
        with closing(collection.connection):
            for item in collection.search_items({"service": service, "username": username}):
                item.delete()
                return
