"""AES-256-GCM for the encrypted file store, and the three places its key can come from.

* `keyring`: 32 random bytes kept in the OS keychain; the file alone is useless to a thief.
* `passphrase`: scrypt(SWITCHBOARD_PASSPHRASE, salt) for headless machines that get a secret injected.
* `keyfile`: 32 random bytes in `store.key` beside the store (0600): protects a copied or backed-up
  store file, not against someone who can read the user's files.
`cryptography` is imported only when a secret is actually sealed or opened.
"""

from __future__ import annotations

import binascii
import os

from .errors import StoreError

KEY_BYTES = 32
NONCE_BYTES = 12  # GCM's standard nonce; random per message, ~2^-32 collision risk after 2^32 writes
# scrypt cost: 2^14 is the interactive-login setting (about 16 MiB and tens of ms): paid on every call
# that opens a passphrase store, so no higher.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
CHECK_PLAINTEXT = b"docker-credential-switchboard key check"
CHECK_AAD = b"key-check"


def b64(data: bytes) -> str:
    """Standard base64 without a newline."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def unb64(text: str) -> bytes:
    """Inverse of `b64`; raises ValueError on bad input."""
    try:
        return binascii.a2b_base64(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("bad base64") from exc


def new_key() -> bytes:
    """A fresh random key."""
    return os.urandom(KEY_BYTES)


def derive_key(passphrase: str, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> bytes:
    """The file key for a passphrase and salt (scrypt)."""
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _aesgcm() -> type:
    """cryptography's AESGCM class.

    Taken from its Rust binding when that is where it lives (cryptography 42 and later): the public
    module `cryptography.hazmat.primitives.ciphers.aead` re-exports the same class but imports `typing`
    and the cipher registry first, about 15 ms more on every `get`. Same class, same code, either way.
    """
    try:
        from cryptography.hazmat.bindings._rust import openssl

        found = openssl.aead.AESGCM
        if isinstance(found, type):
            return found
    except (ImportError, AttributeError):
        pass
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM


def warm_up() -> None:
    """Import the cipher now (callers do it before taking a lock)."""
    _aesgcm()


def seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    """Encrypt and authenticate `plaintext`, bound to `aad`; returns base64(nonce || ciphertext)."""
    nonce = os.urandom(NONCE_BYTES)
    return b64(nonce + _aesgcm()(key).encrypt(nonce, plaintext, aad))


def open_sealed(key: bytes, sealed: str, aad: bytes) -> bytes:
    """Inverse of `seal`; raises StoreError when the key is wrong or the data was altered."""
    try:
        blob = unb64(sealed)
        plain = _aesgcm()(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except Exception as exc:  # cryptography's InvalidTag, or ValueError for a short blob or bad key
        if type(exc).__name__ not in ("InvalidTag", "ValueError"):
            raise
        raise StoreError("cannot decrypt: wrong key (SWITCHBOARD_PASSPHRASE, key file or keychain item) "
                         "or damaged data") from None
    assert isinstance(plain, bytes)
    return plain
