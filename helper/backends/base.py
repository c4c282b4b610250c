"""The one interface every backend implements, and the credential value they exchange.

Values are small hand-written classes rather than dataclasses: `import dataclasses` pulls in `inspect`,
several milliseconds on every `get`, the hot path Docker runs once per registry per command.
"""

from __future__ import annotations

from ..errors import CredentialsNotFound, NotSupported
from ..hosts import RegistryKey

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

#: (label, value) lines that `resolve` prints; never a secret
Rows = list[tuple[str, str]]


#: files with the signature each had when it was read (fsutil.signature_of); None: not comparable
Signed = tuple[tuple[str, str | None], ...]


class Basis:
    """What a token answer rests on, for whoever wants to repeat it without asking again.

    `files`: the files its identity was read from, signed when read; `entry()`: the token cache entry's
    (path, signature) while it still holds this very token, else None (a refresh or a removal by anybody
    ends it). Computed only when asked: a plain `get` never reads the entry twice.
    """

    __slots__ = ("entry", "files")

    def __init__(self, files: Signed, entry: Callable[[], tuple[str, str | None] | None]) -> None:
        self.files = files
        self.entry = entry


class Credentials:
    """A username and secret: every backend's answer. Immutable; the secret never appears in repr() or str().

    A token's answer also says how long it stands: `fresh_until` (epoch seconds, before the token's refresh
    window; None = no expiry known, and for every static secret) and `expires_at` (epoch seconds, when the
    token stops working; None likewise). A cached token's says what it rests on:
    `basis` (None for every other answer: a static secret, or a token the user chose not to cache, is never
    repeated outside this call).
    """

    __slots__ = ("basis", "expires_at", "fresh_until", "secret", "username")

    username: str
    secret: str
    fresh_until: float | None
    basis: Basis | None
    expires_at: float | None

    def __init__(self, username: str, secret: str, fresh_until: float | None = None,
                 basis: Basis | None = None, expires_at: float | None = None) -> None:
        object.__setattr__(self, "username", username)
        object.__setattr__(self, "secret", secret)
        object.__setattr__(self, "fresh_until", fresh_until)
        object.__setattr__(self, "basis", basis)
        object.__setattr__(self, "expires_at", expires_at)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Credentials are immutable")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Credentials) and other.username == self.username
                and other.secret == self.secret)

    def __hash__(self) -> int:
        return hash((self.username, self.secret))

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, secret=<{len(self.secret)} chars>)"

    __str__ = __repr__


class Backend:
    """A source of credentials for the hosts its route matched.

    Backends receive a clean, trimmed key (validated once in `protocol`) and never re-check it.
    `get` raises CredentialsNotFound when it has nothing; optional operations raise NotSupported.
    """

    #: the backend's name in the routes file
    kind = "backend"

    def get(self, key: RegistryKey) -> Credentials:
        """The credentials for `key`, or CredentialsNotFound."""
        raise CredentialsNotFound()

    def store(self, key: RegistryKey, creds: Credentials) -> None:
        """Save `creds` under `key` (an upsert)."""
        raise NotSupported(f"the {self.kind} backend cannot store credentials")

    def erase(self, key: RegistryKey) -> None:
        """Forget `key`; succeeds when there was nothing to forget."""
        raise NotSupported(f"the {self.kind} backend cannot erase credentials")

    def list(self) -> dict[str, str]:
        """Every key this backend holds, mapped to its username. Never fails; skips what it cannot read."""
        return {}

    def describe(self, key: RegistryKey) -> Rows:
        """For `resolve`: where this backend would take `key`'s secret from. Never includes a secret."""
        return []
