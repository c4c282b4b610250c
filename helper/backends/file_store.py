"""The embedded default store: one AES-GCM encrypted JSON file, for machines with no keychain.

Layout (in the private data folder, 0700): `store.json` (0600), its `store.lock`, and `store.key` when
the key is a key file. Each secret is sealed on its own, bound to its key and username, so a damaged
entry never hides the others and `list` needs no decryption. Registry keys and usernames are stored in
clear, like the attributes of a Secret Service or Keychain item. Writes hold the lock and replace the
file atomically; a store that cannot be read is reported, never overwritten.
"""

from __future__ import annotations

import os
import time

from .. import crypto, fastjson, fsutil, keychain, log
from ..errors import CredentialsNotFound, StoreError
from ..hosts import RegistryKey
from .base import Backend, Credentials, Rows

FORMAT = "docker-credential-switchboard/store/1"
KEYRING_ITEM_PREFIX = "file-store-key-"  # + a random id kept in the store header: one item per store
Doc = dict[str, object]
Entries = dict[str, dict[str, object]]


def _aad(raw: str, username: str) -> bytes:
    return f"{raw}\0{username}".encode()


def find_entry(entries: Entries, key: RegistryKey) -> str | None:
    """The stored key that answers `key`: the exact key, else the newest entry of the most specific alias."""
    if key.raw in entries:
        return key.raw
    for candidate in key.candidates():
        best: tuple[float, str] | None = None
        for raw, entry in entries.items():
            if isinstance(entry, dict) and entry.get("canonical") == candidate:
                stored = entry.get("stored")
                rank = (float(stored) if isinstance(stored, (int, float)) else 0.0, raw)
                best = rank if best is None or rank > best else best
        if best is not None:
            return best[1]
    return None


class EncryptedFileStore(Backend):
    """Secrets in an encrypted file; see the module docstring for the layout and guarantees."""

    kind = "file"

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, "store.json")
        self.key_path = os.path.join(folder, "store.key")
        self.lock_path = os.path.join(folder, "store.lock")

    # -- reading ---------------------------------------------------------------------------------
    def _load(self) -> Doc | None:
        try:
            data = fsutil.read_bytes(self.path)
        except OSError as exc:
            raise StoreError(f"cannot read the store {self.path}: {exc.strerror}") from None
        if data is None:
            return None
        try:
            doc = fastjson.loads(data)
        except (ValueError, UnicodeDecodeError):
            doc = None
        if (not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), dict)
                or not isinstance(doc.get("key"), dict)):
            raise StoreError(f"the store {self.path} is damaged or not a switchboard store; nothing was "
                             "changed: move it aside to start a new one, or restore it from a backup")
        return doc

    def _entries(self, doc: Doc) -> Entries:
        entries = doc["entries"]
        assert isinstance(entries, dict)
        return entries

    def _file_key(self, doc: Doc) -> bytes:
        header = doc["key"]
        assert isinstance(header, dict)
        source = header.get("source")
        if source == "keyfile":
            try:
                key = fsutil.read_bytes(self.key_path)
            except OSError as exc:
                raise StoreError(f"cannot read the key file {self.key_path}: {exc.strerror}") from None
            if key is None or len(key) != crypto.KEY_BYTES:
                raise StoreError(f"the key file {self.key_path} is missing or damaged, so {self.path} cannot "
                                 "be decrypted; restore the key file (the store was left untouched)")
            return key
        if source == "passphrase":
            passphrase = os.environ.get("SWITCHBOARD_PASSPHRASE")
            if not passphrase:
                raise StoreError(f"the store {self.path} is protected by a passphrase: "
                                 "set SWITCHBOARD_PASSPHRASE")
            try:
                salt = crypto.unb64(str(header["salt"]))
                n, r, p = int(str(header["n"])), int(str(header["r"])), int(str(header["p"]))
            except (KeyError, ValueError):
                raise StoreError(f"the key header of {self.path} is damaged") from None
            return crypto.derive_key(passphrase, salt, n, r, p)
        if source == "keyring":
            item = header.get("item")
            if not isinstance(item, str) or not item.startswith(KEYRING_ITEM_PREFIX):
                raise StoreError(f"the key header of {self.path} is damaged")
            try:
                value = keychain.get(item)
                key = bytes.fromhex(value) if value else b""
            except Exception as exc:
                raise StoreError(f"cannot read the store key from the keychain ({type(exc).__name__}); "
                                 "unlock the keychain and retry") from None
            if len(key) != crypto.KEY_BYTES:
                raise StoreError(f"the keychain holds no key for {self.path}; unlock the keychain, or move "
                                 "the store aside to start a new one")
            return key
        raise StoreError(f"the store {self.path} names an unknown key source {source!r}")

    def get(self, key: RegistryKey) -> Credentials:
        doc = self._load()
        if doc is None:
            raise CredentialsNotFound()
        entries = self._entries(doc)
        found = find_entry(entries, key)
        if found is None:
            raise CredentialsNotFound()
        entry = entries[found]
        username, sealed = entry.get("username"), entry.get("secret")
        if not isinstance(username, str) or not isinstance(sealed, str):
            raise StoreError(f"the entry for {found} in {self.path} is damaged; store it again")
        secret = crypto.open_sealed(self._file_key(doc), sealed, _aad(found, username))
        return Credentials(username, secret.decode("utf-8"))

    def list(self) -> dict[str, str]:
        try:
            doc = self._load()
        except StoreError as exc:
            log.log(f"list: {exc}")
            return {}
        if doc is None:
            return {}
        return {raw: str(entry["username"]) for raw, entry in self._entries(doc).items()
                if isinstance(entry, dict) and isinstance(entry.get("username"), str)
                and isinstance(entry.get("secret"), str)}

    def describe(self, key: RegistryKey) -> Rows:
        rows = [("store", f"encrypted file {self.path}")]
        try:
            doc = self._load()
        except StoreError as exc:
            return [*rows, ("problem", str(exc))]
        if doc is not None:
            header = doc["key"]
            assert isinstance(header, dict)
            rows.append(("file key", str(header.get("source"))))
            found = find_entry(self._entries(doc), key)
            rows.append(("entry", found if found is not None else "none stored"))
        else:
            rows.append(("entry", "none stored (no store file yet)"))
        return rows

    # -- writing ---------------------------------------------------------------------------------
    def _new_doc(self) -> tuple[Doc, bytes]:
        header: dict[str, object]
        passphrase = os.environ.get("SWITCHBOARD_PASSPHRASE")
        if passphrase:
            salt = os.urandom(16)
            key = crypto.derive_key(passphrase, salt)
            header = {"source": "passphrase", "kdf": "scrypt", "salt": crypto.b64(salt),
                      "n": crypto.SCRYPT_N, "r": crypto.SCRYPT_R, "p": crypto.SCRYPT_P}
        elif keychain.backend() is not None:
            key = crypto.new_key()
            item = KEYRING_ITEM_PREFIX + os.urandom(8).hex()
            try:
                keychain.put(item, key.hex())
            except Exception as exc:
                raise StoreError(f"the keychain refused the store key ({type(exc).__name__}); unlock the "
                                 "keychain and retry") from None
            header = {"source": "keyring", "item": item}
        else:
            existing = fsutil.read_bytes(self.key_path)
            if existing is not None and len(existing) == crypto.KEY_BYTES:
                key = existing
            else:
                key = crypto.new_key()
                fsutil.atomic_write(self.key_path, key)
            header = {"source": "keyfile"}
        doc: Doc = {"format": FORMAT, "key": header,
                    "check": crypto.seal(key, crypto.CHECK_PLAINTEXT, crypto.CHECK_AAD), "entries": {}}
        return doc, key

    def _key_for_write(self, doc: Doc) -> bytes:
        key = self._file_key(doc)
        check = doc.get("check")
        if not isinstance(check, str) or crypto.open_sealed(key, check, crypto.CHECK_AAD) != crypto.CHECK_PLAINTEXT:
            raise StoreError(f"the key does not open {self.path} (wrong SWITCHBOARD_PASSPHRASE?); "
                             "nothing was written")
        return key

    def _write(self, doc: Doc) -> None:
        import json

        data = json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")
        try:
            fsutil.atomic_write(self.path, data)
        except OSError as exc:
            raise StoreError(f"cannot write the store {self.path}: {exc.strerror}") from None

    def store(self, key: RegistryKey, creds: Credentials) -> None:
        fsutil.ensure_private_dir(self.folder)
        crypto.warm_up()  # import AES before the lock: the lock is held for the write, not for imports
        with fsutil.FileLock(self.lock_path):
            fsutil.remove_stale_temps(self.path)
            fsutil.remove_stale_temps(self.key_path)
            doc = self._load()
            if doc is None:
                doc, file_key = self._new_doc()
            else:
                file_key = self._key_for_write(doc)
            sealed = crypto.seal(file_key, creds.secret.encode("utf-8"), _aad(key.raw, creds.username))
            self._entries(doc)[key.raw] = {"username": creds.username, "secret": sealed,
                                           "canonical": key.canonical, "stored": time.time()}
            self._write(doc)

    def erase(self, key: RegistryKey) -> None:
        if not os.path.exists(self.path):
            return
        with fsutil.FileLock(self.lock_path):
            fsutil.remove_stale_temps(self.path)
            doc = self._load()
            if doc is None:
                return
            entries = self._entries(doc)
            doomed = [raw for raw, entry in entries.items() if raw == key.raw or (
                key.canonical is not None and isinstance(entry, dict) and entry.get("canonical") == key.canonical)]
            if doomed:
                for raw in doomed:
                    del entries[raw]
                self._write(doc)
