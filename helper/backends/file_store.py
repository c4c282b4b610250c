"""The embedded default store: one AES-GCM encrypted JSON file, for machines with no keychain.

Layout (in the private data folder, 0700): `store.json` (0600), its `store.lock`, and `store.key` when
the key is a key file. Each secret is sealed on its own, so a damaged entry never hides the others and
`list` needs no decryption. Registry keys and usernames are stored in clear, like the attributes of a
Secret Service or Keychain item. Writes hold the lock and replace the file atomically; a store that
cannot be read or authenticated is reported in one line, never overwritten.

Format 2 (`FORMAT`), against someone who can write the folder but does not know the key (a passphrase
store on a shared volume):

* The header is authenticated: `header_aad` packs the format and every header field (key source, KDF,
  salt, scrypt parameters, keychain item) and is the AES-GCM associated data of the key `check` and of
  every entry, with the entry's key and username. A changed header field, a downgraded format, an
  entry moved to another key or username: nothing opens, so nothing is served or written under it.
* With `SWITCHBOARD_PASSPHRASE` set only a passphrase header is accepted: a header that names a key
  file or the keychain (a key the attacker can supply: her `store.key` and her `check`) is refused
  with one line by every action that would open or change the store (`list` shows none of its keys),
  so no secret is ever sealed under her key and none of hers is served.
* scrypt parameters are taken only as this version writes them: a header cannot make a call slow or
  a key weak.
* An entry's canonical spelling (alias lookups, erase by alias) is recomputed from its authenticated
  key (`canonical`), never read from the file.
What remains possible for her: deleting entries or the file; rolling the whole file back to an older
copy (format 1 included), or an entry to its older sealed value under the same key and username: a copy
she kept still opens, as it did when it was written; and, through the clear `stored` time, choosing
which of the user's own entries for one registry answers an alias.

Format 1 (`FORMAT_V1`, written before): entries bound to key and username only, the check to a constant,
so the header was not authenticated. Such a store still reads, and the next `store` migrates it: under
the lock, with the key its own check accepts, every entry is opened with the old associated data and
sealed again with the new, and the file is replaced atomically in format 2. An entry that does not
open is carried over unchanged (it was unreadable before and stays so; no byte is dropped). `erase`,
which needs no key, deletes in place and leaves the format as it was. Older versions refuse a format 2
file as "not a switchboard store" and write nothing to it.

`SWITCHBOARD_PASSPHRASE` is taken out of the environment when this module loads, which every call does
before any backend runs (actions -> backends.store -> here): no child this process starts inherits it,
including the `credential_process` children that botocore spawns with `os.environ`. `passphrase()`
keeps the value for the rest of the process.
"""

from __future__ import annotations

import os
import time

from .. import crypto, fastjson, fsutil, keychain, log
from ..errors import CredentialsNotFound, StoreError
from ..hosts import RegistryKey, parse
from .base import Backend, Credentials, Rows

FORMAT = "docker-credential-switchboard/store/2"
FORMAT_V1 = "docker-credential-switchboard/store/1"  # unauthenticated header; migrated by the next store
KEYRING_ITEM_PREFIX = "file-store-key-"  # + a random id kept in the store header: one item per store
PASSPHRASE_VAR = "SWITCHBOARD_PASSPHRASE"  # noqa: S105 - a variable name, not a password
SALT_BYTES = 16
Doc = dict[str, object]
Entries = dict[str, dict[str, object]]


def _take_passphrase() -> str | None:
    return os.environ.pop(PASSPHRASE_VAR, None) or None


# Read and removed at import (see the module docstring): from here on no child can inherit it.
_PASSPHRASE = _take_passphrase()


def passphrase() -> str | None:
    """The store passphrase: SWITCHBOARD_PASSPHRASE as this process started with it, kept in memory.

    A value set in `os.environ` after this module loaded (a program that runs the helper in-process, the
    tests) wins, and stays where its caller put it: its children are its caller's business.
    """
    return os.environ.get(PASSPHRASE_VAR) or _PASSPHRASE


def _pack(parts: tuple[str, ...] | list[str]) -> bytes:
    """Length-prefixed UTF-8 parts: no two different lists give the same bytes."""
    out = bytearray()
    for part in parts:
        data = part.encode("utf-8")
        out += b"%d:%s" % (len(data), data)
    return bytes(out)


def header_aad(doc_format: str, header: dict[str, object]) -> bytes:
    """The associated data that binds the format and every header field; ValueError for a value that is
    neither a string nor an integer."""
    parts = ["docker-credential-switchboard store header", doc_format]
    for name in sorted(header):
        value = header[name]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError(name)
        parts += [name, ("i" if isinstance(value, int) else "s") + str(value)]
    return _pack(parts)


def check_aad(doc_format: str, header: dict[str, object]) -> bytes:
    """Associated data of the key check."""
    if doc_format == FORMAT_V1:
        return crypto.CHECK_AAD
    return _pack(("key-check",)) + header_aad(doc_format, header)


def entry_aad(doc_format: str, header: dict[str, object], raw: str, username: str) -> bytes:
    """Associated data of one entry: its key, its username and (format 2) the whole header."""
    if doc_format == FORMAT_V1:
        return f"{raw}\0{username}".encode()
    return _pack(("entry", raw, username)) + header_aad(doc_format, header)


def canonical(raw: str) -> str | None:
    """The canonical spelling of a stored key, recomputed: a copy kept in a file is never trusted."""
    return parse(raw).canonical


def find_entry(entries: Entries, key: RegistryKey) -> str | None:
    """The stored key that answers `key`: the exact key, else the newest entry of the most specific alias."""
    if key.raw in entries:
        return key.raw
    candidates = key.candidates()
    if not candidates:
        return None
    spelled = {raw: canonical(raw) for raw, entry in entries.items() if isinstance(entry, dict)}
    for candidate in candidates:
        best: tuple[float, str] | None = None
        for raw, spelling in spelled.items():
            if spelling == candidate:
                stored = entries[raw].get("stored")
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
        if (not isinstance(doc, dict) or doc.get("format") not in (FORMAT, FORMAT_V1)
                or not isinstance(doc.get("entries"), dict) or not isinstance(doc.get("key"), dict)):
            raise StoreError(f"the store {self.path} is damaged or not a switchboard store; nothing was "
                             "changed: move it aside to start a new one, or restore it from a backup")
        return doc

    def _entries(self, doc: Doc) -> Entries:
        entries = doc["entries"]
        assert isinstance(entries, dict)
        return entries

    def _header(self, doc: Doc) -> dict[str, object]:
        header = doc["key"]
        assert isinstance(header, dict)
        return header

    def _format(self, doc: Doc) -> str:
        return str(doc["format"])

    def _refuse_foreign_source(self, doc: Doc) -> None:
        """With a passphrase set, a header that names another key source is someone else's store."""
        source = self._header(doc).get("source")
        if source != "passphrase" and passphrase():
            raise StoreError(f"SWITCHBOARD_PASSPHRASE is set but the store {self.path} is not protected by a "
                             f"passphrase (its header names {source!r}): refused, nothing was changed; move it "
                             "aside if someone else may have written it, or unset SWITCHBOARD_PASSPHRASE to use it")

    def _damaged_header(self) -> StoreError:
        return StoreError(f"the key header of {self.path} is damaged; nothing was changed: restore the store "
                          "from a backup, or move it aside to start a new one")

    def _aad(self, doc: Doc, raw: str, username: str) -> bytes:
        try:
            return entry_aad(self._format(doc), self._header(doc), raw, username)
        except ValueError:
            raise self._damaged_header() from None

    def _file_key(self, doc: Doc) -> bytes:
        self._refuse_foreign_source(doc)
        return self._source_key(doc, passphrase())

    def _source_key(self, doc: Doc, secret: str | None) -> bytes:
        """The key the header's source gives (`secret`: the passphrase, for a passphrase header)."""
        header = self._header(doc)
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
            if not secret:
                raise StoreError(f"the store {self.path} is protected by a passphrase: "
                                 "set SWITCHBOARD_PASSPHRASE")
            try:
                salt = crypto.unb64(str(header["salt"]))
                n, r, p = header["n"], header["r"], header["p"]
            except (KeyError, ValueError):
                raise self._damaged_header() from None
            if header.get("kdf") != "scrypt" or not SALT_BYTES <= len(salt) <= 64:
                raise self._damaged_header()
            if (n, r, p) != (crypto.SCRYPT_N, crypto.SCRYPT_R, crypto.SCRYPT_P) or not all(
                    type(value) is int for value in (n, r, p)):
                raise StoreError(f"the key header of {self.path} names scrypt parameters this version never "
                                 f"writes (n={n!r}, r={r!r}, p={p!r}): refused, nothing was changed; restore the "
                                 "store from a backup")
            return crypto.derive_key(secret, salt)
        if source == "keyring":
            item = header.get("item")
            if not isinstance(item, str) or not item.startswith(KEYRING_ITEM_PREFIX):
                raise self._damaged_header()
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
        file_key = self._file_key(doc)
        secret = crypto.open_sealed(file_key, sealed, self._aad(doc, found, username))
        return Credentials(username, secret.decode("utf-8"))

    def list(self) -> dict[str, str]:
        try:
            doc = self._load()
            if doc is not None:
                self._refuse_foreign_source(doc)
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
            rows.append(("file key", str(self._header(doc).get("source"))))
            rows.append(("store format", "2" if self._format(doc) == FORMAT else
                         "1 (header not authenticated; the next store migrates it)"))
            found = find_entry(self._entries(doc), key)
            rows.append(("entry", found if found is not None else "none stored"))
        else:
            rows.append(("entry", "none stored (no store file yet)"))
        return rows

    # -- writing ---------------------------------------------------------------------------------
    def _new_doc(self) -> tuple[Doc, bytes]:
        header: dict[str, object]
        secret = passphrase()
        if secret:
            header, key = _passphrase_source(secret)
        elif keychain.backend() is not None:
            header, key = _keyring_source("")
        else:
            existing = fsutil.read_bytes(self.key_path)
            if existing is not None and len(existing) == crypto.KEY_BYTES:
                key = existing
            else:
                key = crypto.new_key()
                fsutil.atomic_write(self.key_path, key)
            header = {"source": "keyfile"}
        doc: Doc = {"format": FORMAT, "key": header,
                    "check": crypto.seal(key, crypto.CHECK_PLAINTEXT, check_aad(FORMAT, header)), "entries": {}}
        return doc, key

    def _key_for_write(self, doc: Doc) -> bytes:
        """The file key, once the store's check proves it is the key the store was made with."""
        key = self._file_key(doc)
        check = doc.get("check")
        try:
            aad = check_aad(self._format(doc), self._header(doc))
        except ValueError:
            raise self._damaged_header() from None
        if not isinstance(check, str) or crypto.open_sealed(key, check, aad) != crypto.CHECK_PLAINTEXT:
            raise StoreError(f"the key does not open {self.path} (wrong SWITCHBOARD_PASSPHRASE?); "
                             "nothing was written")
        return key

    def _migrated(self, doc: Doc, key: bytes) -> Doc:
        """A format 1 store (whose check `key` opened) as format 2: the same header, key and entries."""
        header = dict(self._header(doc))
        try:
            check = crypto.seal(key, crypto.CHECK_PLAINTEXT, check_aad(FORMAT, header))
        except ValueError:
            raise self._damaged_header() from None
        entries: Entries = {}
        for raw, entry in self._entries(doc).items():
            username, sealed = (entry.get("username"), entry.get("secret")) if isinstance(entry, dict) else (None, None)
            if not isinstance(username, str) or not isinstance(sealed, str):
                entries[raw] = entry
                continue
            try:
                plain = crypto.open_sealed(key, sealed, entry_aad(FORMAT_V1, header, raw, username))
            except StoreError:
                log.log(f"migrating {self.path}: the entry for {raw} does not open; kept as it was")
                entries[raw] = entry
                continue
            entries[raw] = {"username": username, "secret": crypto.seal(key, plain, entry_aad(FORMAT, header, raw,
                                                                                              username)),
                            "stored": entry.get("stored", 0.0)}
        log.log(f"migrated {self.path} to {FORMAT} (authenticated header)")
        return {"format": FORMAT, "key": header, "check": check, "entries": entries}

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
                if self._format(doc) == FORMAT_V1:
                    doc = self._migrated(doc, file_key)
            sealed = crypto.seal(file_key, creds.secret.encode("utf-8"), self._aad(doc, key.raw, creds.username))
            self._entries(doc)[key.raw] = {"username": creds.username, "secret": sealed, "stored": time.time()}
            self._write(doc)

    def erase(self, key: RegistryKey) -> None:
        if not os.path.exists(self.path):
            return
        with fsutil.FileLock(self.lock_path):
            fsutil.remove_stale_temps(self.path)
            doc = self._load()
            if doc is None:
                return
            self._refuse_foreign_source(doc)
            entries = self._entries(doc)
            doomed = [raw for raw in entries if raw == key.raw or (
                key.canonical is not None and canonical(raw) == key.canonical)]
            if doomed:
                for raw in doomed:
                    del entries[raw]
                self._write(doc)

    # -- changing the key source ---------------------------------------------------------------------
    def source(self) -> str | None:
        """The key source the store's header names ("keyfile", "keyring", "passphrase"), or None for no store."""
        doc = self._load()
        return None if doc is None else str(self._header(doc).get("source"))

    def rekey(self, old_passphrase: str | None = None, *, drop_unreadable: bool = False,
              dry_run: bool = False) -> Rekeyed | None:
        """Re-seal every entry under the key source the environment names now (`target_source`).

        None when there is no store file. The store is opened with the source its header names, whatever
        the environment says (`old_passphrase`, else `passphrase()`, for a passphrase header): running
        `rekey` is the user adopting the store under the new source. Under the lock: every entry is opened
        first (an entry that does not open refuses the whole rekey unless `drop_unreadable`), the new key
        is made (a new key file is written before the store that needs it, a keychain item put), the new
        store replaces the old one in one rename, and only then is the old key file or keychain item
        removed. A failure before the rename leaves the old store and its key as they were (a new key file
        or item is taken back); a crash after it leaves at most an unused old key file or item.
        """
        if not os.path.exists(self.path):
            return None
        crypto.warm_up()
        with fsutil.FileLock(self.lock_path):
            if not dry_run:
                fsutil.remove_stale_temps(self.path)
                fsutil.remove_stale_temps(self.key_path)
            doc = self._load()
            if doc is None:
                return None
            header, doc_format = self._header(doc), self._format(doc)
            old_source, new_source = str(header.get("source")), target_source()
            if old_source == new_source and old_source != "passphrase":
                return Rekeyed(old_source, new_source, 0, [], unchanged=True)
            secret = (old_passphrase or passphrase()) if old_source == "passphrase" else None
            if old_source == "passphrase" and not secret:
                raise StoreError(f"the store {self.path} is protected by a passphrase and none was given; "
                                 "nothing was changed")
            old_key = self._source_key(doc, secret)
            self._prove_key(doc, old_key)
            opened: dict[str, tuple[str, bytes, object]] = {}
            unreadable: list[str] = []
            for raw, entry in self._entries(doc).items():
                username, sealed = (entry.get("username"), entry.get("secret")) if isinstance(entry, dict) else (
                    None, None)
                try:
                    if not isinstance(username, str) or not isinstance(sealed, str):
                        raise StoreError("damaged entry")
                    plain = crypto.open_sealed(old_key, sealed, self._aad(doc, raw, username))
                except StoreError:
                    unreadable.append(raw)
                    continue
                opened[raw] = (username, plain, entry.get("stored", 0.0))
            if unreadable and not drop_unreadable:
                raise StoreError(f"{len(unreadable)} of the {len(opened) + len(unreadable)} entries of {self.path} do "
                                 f"not open under its current key ({', '.join(sorted(unreadable))}): refused, nothing "
                                 "was changed; `rekey --drop-unreadable` re-seals the others and drops these")
            result = Rekeyed(old_source, new_source, len(opened), sorted(unreadable), doc_format=doc_format)
            if dry_run:
                return result
            new_header, new_key = self._new_source(new_source)
            try:
                entries: Entries = {}
                for raw, (username, plain, stored) in opened.items():
                    entries[raw] = {"username": username, "stored": stored, "secret": crypto.seal(
                        new_key, plain, entry_aad(FORMAT, new_header, raw, username))}
                self._write({"format": FORMAT, "key": new_header, "entries": entries,
                             "check": crypto.seal(new_key, crypto.CHECK_PLAINTEXT, check_aad(FORMAT, new_header))})
            except BaseException:
                self._forget_source(new_header)  # the old store and its key are untouched: take the new key back
                raise
            if old_source != new_source:  # passphrase -> passphrase: nothing to remove
                result.leftover = self._forget_source(header)
            log.log(f"rekey {self.path}: {len(opened)} entries from {old_source} to {new_source}, "
                    f"{len(unreadable)} dropped")
            return result

    def _prove_key(self, doc: Doc, key: bytes) -> None:
        """StoreError unless the store's check opens with `key`."""
        check = doc.get("check")
        try:
            aad = check_aad(self._format(doc), self._header(doc))
        except ValueError:
            raise self._damaged_header() from None
        try:
            if not isinstance(check, str) or crypto.open_sealed(key, check, aad) != crypto.CHECK_PLAINTEXT:
                raise StoreError("no check")
        except StoreError:
            raise StoreError(f"the current key does not open {self.path} (wrong old passphrase?): nothing was "
                             "changed") from None

    def _new_source(self, source: str) -> tuple[dict[str, object], bytes]:
        """A fresh key of `source` and its header; the key file is written, the keychain item put."""
        if source == "passphrase":
            secret = passphrase()
            assert secret
            return _passphrase_source(secret)
        if source == "keyring":
            return _keyring_source(": nothing was changed")
        key = crypto.new_key()
        try:  # the old source is not the key file (keyfile -> keyfile has nothing to do): this one is unused
            fsutil.atomic_write(self.key_path, key)
        except OSError as exc:
            raise StoreError(f"cannot write the key file {self.key_path}: {exc.strerror}; nothing was "
                             "changed") from None
        return {"source": "keyfile"}, key

    def _forget_source(self, header: dict[str, object]) -> str | None:
        """Remove the key file or keychain item of `header` (no longer used); what could not be removed."""
        source = header.get("source")
        try:
            if source == "keyfile":
                os.unlink(self.key_path)
            elif source == "keyring" and isinstance(header.get("item"), str):
                keychain.delete(str(header["item"]))
        except FileNotFoundError:
            pass
        except Exception as exc:
            log.log(f"rekey: the old {source} key was not removed: {type(exc).__name__}")
            return f"the old key ({self.key_path if source == 'keyfile' else 'keychain item'}) is unused; remove it"
        return None


def target_source() -> str:
    """The key source a new store (or `rekey`) uses now: the passphrase if set, else the keychain, else a key file."""
    if passphrase():
        return "passphrase"
    return "keyring" if keychain.backend() is not None else "keyfile"


class Rekeyed:
    """What `EncryptedFileStore.rekey` did (or, in a dry run, would do). Names and counts only, no secret."""

    def __init__(self, old_source: str, new_source: str, resealed: int, dropped: list[str], *,
                 unchanged: bool = False, doc_format: str = FORMAT) -> None:
        self.old_source = old_source
        self.new_source = new_source
        self.resealed = resealed
        self.dropped = dropped
        self.unchanged = unchanged  # the store already uses that (non-passphrase) source
        self.doc_format = doc_format
        self.leftover: str | None = None


def _passphrase_source(secret: str) -> tuple[dict[str, object], bytes]:
    """A passphrase header with a fresh salt, and the key scrypt derives from it."""
    salt = os.urandom(SALT_BYTES)
    return ({"source": "passphrase", "kdf": "scrypt", "salt": crypto.b64(salt), "n": crypto.SCRYPT_N,
             "r": crypto.SCRYPT_R, "p": crypto.SCRYPT_P}, crypto.derive_key(secret, salt))


def _keyring_source(then: str) -> tuple[dict[str, object], bytes]:
    """A fresh key put in the keychain as a new item, and its header; `then` ends the refusal's message."""
    key = crypto.new_key()
    item = KEYRING_ITEM_PREFIX + os.urandom(8).hex()
    try:
        keychain.put(item, key.hex())
    except Exception as exc:
        raise StoreError(f"the keychain refused the store key ({type(exc).__name__}); unlock the keychain and "
                         f"retry{then}") from None
    return {"source": "keyring", "item": item}, key
