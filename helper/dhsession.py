"""The Secret Service's `dh-ietf1024-sha256-aes128-cbc-pkcs7` session, client side, for reading one secret.

Why encrypt at all on a local bus: the secret crosses the session bus (dbus-daemon), where `dbus-monitor`,
`busctl capture` or Bustle record every message; such captures end up in bug reports. With this session they
hold ciphertext. It is not a defence against code running as the user (that can ask the Secret Service for
the secret itself), and it is what libsecret, and so `docker-credential-secretservice` and `secret-tool`, and
keyring/secretstorage use by default (checked with dbus-monitor), so we are not the weak one among them.

Why not `cryptography`: importing it costs ~5-9 ms per call, a third of a keychain `get`. The key agreement
is one `pow()` on Python ints each way; HKDF-SHA256 is two HMACs; AES-128 is needed only to *decrypt* a
few blocks the Secret Service encrypted for us, so the inverse cipher is written out here (FIPS-197) and
tested against `cryptography` (tests/test_keychain_secretservice.py). Storing still goes through
secretstorage, which encrypts with `cryptography`.

Timing side channels: the table lookups below depend on the key and data; the key is ephemeral (one call)
and anyone placed to time this process runs as the user, who can read the secret outright.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hashlib import sha256
else:
    try:  # the builtin SHA-256 (3.10-3.11: _sha256, 3.12+: _sha2) avoids loading OpenSSL's _hashlib (~2 ms)
        from _sha256 import sha256
    except ImportError:
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256

ALGORITHM = "dh-ietf1024-sha256-aes128-cbc-pkcs7"
# RFC 2409 section 6.2, the Second Oakley Group (a safe prime), generator 2: what the algorithm name fixes
PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF", 16)
# A 256-bit private exponent: the group gives ~80-bit security, and with a safe prime an exponent of twice
# that strength is enough (NIST SP 800-56A, RFC 3526 section 8); a full 1024-bit one costs ~2 ms more.
PRIVATE_BITS = 256


class Session:
    """One ephemeral key pair; `key()` derives the AES key from the service's public key."""

    def __init__(self) -> None:
        self._private = int.from_bytes(os.urandom(PRIVATE_BITS // 8), "big") | 1 << (PRIVATE_BITS - 1)
        self.public = pow(2, self._private, PRIME).to_bytes(128, "big")

    def key(self, service_public: bytes) -> bytes:
        """HKDF-SHA256 (zero salt, empty info) of the shared secret, 16 bytes, as libsecret and gnome-keyring do."""
        y = int.from_bytes(service_public, "big")
        if not 1 < y < PRIME - 1:
            raise ValueError("the Secret Service sent an invalid DH public key")
        shared = pow(y, self._private, PRIME).to_bytes(128, "big")
        prk = _hmac(b"\0" * 32, shared)
        return _hmac(prk, b"\x01")[:16]


def _hmac(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 for keys of at most one block (64 bytes), RFC 2104."""
    padded = key.ljust(64, b"\0")
    inner = sha256(bytes(b ^ 0x36 for b in padded) + message).digest()
    return sha256(bytes(b ^ 0x5C for b in padded) + inner).digest()


# ---- AES-128 decryption (FIPS-197 inverse cipher), CBC, PKCS#7 --------------------------------------------


def _mul(a: int, b: int) -> int:
    product = 0
    while b:
        if b & 1:
            product ^= a
        a = (a << 1) ^ 0x11B if a & 0x80 else a << 1
        b >>= 1
    return product


def _sbox() -> list[int]:
    box = [0x63] * 256
    p = q = 1
    while True:  # p runs through the multiplicative group (times 3), q through its inverses (divided by 3)
        p = p ^ (p << 1) ^ (0x1B if p & 0x80 else 0)
        p &= 0xFF
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09
        x = q ^ ((q << 1) | (q >> 7)) ^ ((q << 2) | (q >> 6)) ^ ((q << 3) | (q >> 5)) ^ ((q << 4) | (q >> 4))
        box[p] = (x ^ 0x63) & 0xFF
        if p == 1:
            return box


_SBOX = _sbox()
_INV_SBOX = [0] * 256
for _i, _v in enumerate(_SBOX):
    _INV_SBOX[_v] = _i
_M9, _M11, _M13, _M14 = ([_mul(x, k) for x in range(256)] for k in (9, 11, 13, 14))
# InvShiftRows on a column-major state (byte r + 4c is row r, column c): row r moves right by r
_INV_SHIFT = [r + 4 * ((c - r) % 4) for c in range(4) for r in range(4)]


def _round_keys(key: bytes) -> list[list[int]]:
    words = [list(key[i:i + 4]) for i in range(0, 16, 4)]
    rcon = 1
    for i in range(4, 44):
        t = list(words[i - 1])
        if i % 4 == 0:
            t = [_SBOX[t[1]] ^ rcon, _SBOX[t[2]], _SBOX[t[3]], _SBOX[t[0]]]
            rcon = _mul(rcon, 2)
        words.append([a ^ b for a, b in zip(words[i - 4], t, strict=True)])
    return [words[4 * r] + words[4 * r + 1] + words[4 * r + 2] + words[4 * r + 3] for r in range(11)]


def _decrypt_block(block: bytes, keys: list[list[int]]) -> list[int]:
    s = [b ^ k for b, k in zip(block, keys[10], strict=True)]
    for rnd in range(9, 0, -1):
        s = [_INV_SBOX[s[i]] ^ k for i, k in zip(_INV_SHIFT, keys[rnd], strict=True)]
        mixed: list[int] = []
        for c in range(0, 16, 4):
            a0, a1, a2, a3 = s[c:c + 4]
            mixed += (_M14[a0] ^ _M11[a1] ^ _M13[a2] ^ _M9[a3], _M9[a0] ^ _M14[a1] ^ _M11[a2] ^ _M13[a3],
                      _M13[a0] ^ _M9[a1] ^ _M14[a2] ^ _M11[a3], _M11[a0] ^ _M13[a1] ^ _M9[a2] ^ _M14[a3])
        s = mixed
    return [_INV_SBOX[s[i]] ^ k for i, k in zip(_INV_SHIFT, keys[0], strict=True)]


def decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """AES-128-CBC decryption and PKCS#7 unpadding; ValueError when the lengths or the padding are wrong."""
    if len(key) != 16 or len(iv) != 16 or not ciphertext or len(ciphertext) % 16:
        raise ValueError("not AES-128-CBC ciphertext")
    keys = _round_keys(key)
    out = bytearray()
    previous = iv
    for at in range(0, len(ciphertext), 16):
        block = ciphertext[at:at + 16]
        out += bytes(a ^ b for a, b in zip(_decrypt_block(block, keys), previous, strict=True))
        previous = block
    n = out[-1]
    if not 1 <= n <= 16 or out[-n:] != bytes((n,)) * n:
        raise ValueError("bad PKCS#7 padding")
    return bytes(out[:-n])
