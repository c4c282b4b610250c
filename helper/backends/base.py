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


class Credentials:
    """A username and secret. Immutable; the secret never appears in repr() or str()."""

    __slots__ = ("secret", "username")

    username: str
    secret: str

    def __init__(self, username: str, secret: str) -> None:
        object.__setattr__(self, "username", username)
        object.__setattr__(self, "secret", secret)

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


class TokenCredentials(Credentials):
    """Credentials made from a cached token: how long the answer stands, and which files it read.

    `fresh_until` (epoch seconds, None = no expiry known), `depends_on` ((path, signature before it was
    read) pairs) and `pin` (the token cache entry's (path, signature), or None when it no longer holds this
    token; called only when a record is wanted) let the standalone build's launcher repeat the answer
    without Python (helper/fastpath.py).
    """

    __slots__ = ("depends_on", "fresh_until", "pin")

    fresh_until: float | None
    depends_on: tuple[tuple[str, str | None], ...]
    pin: Callable[[], tuple[str, str | None] | None]

    def __init__(self, username: str, secret: str, fresh_until: float | None,
                 depends_on: tuple[tuple[str, str | None], ...],
                 pin: Callable[[], tuple[str, str | None] | None]) -> None:
        super().__init__(username, secret)
        object.__setattr__(self, "fresh_until", fresh_until)
        object.__setattr__(self, "depends_on", depends_on)
        object.__setattr__(self, "pin", pin)


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
