"""Every error the helper can report: one line of text each, printed by the front end that ran it
(`protocol_frontend.guarded`) with exit 1."""

from __future__ import annotations


class HelperError(Exception):
    """An error the user sees as one line on stdout. `message` is the exact text, with no secret in it."""

    message = "error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else type(self).message
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class CredentialsNotFound(HelperError):
    """The wire's not-found answer: clients match this exact text (PROTOCOL.md §3)."""

    message = "credentials not found in native keychain"


class MissingServerURL(HelperError):
    """Empty key on get/erase, or no ServerURL in a store payload (PROTOCOL.md §2)."""

    message = "no credentials server URL"


class MissingUsername(HelperError):
    """A store payload without a Username (PROTOCOL.md §2.1)."""

    message = "no credentials username"


class BadInput(HelperError):
    """Stdin that is not what the action expects (not UTF-8, not a JSON object, wrong types)."""


class ConfigError(HelperError):
    """The routes file is unreadable or invalid; the message names the file, the line and the fix."""


class StoreError(HelperError):
    """The secret store cannot be read or written; the message says why and what to do."""


class NotSupported(HelperError):
    """A backend that cannot do this operation (for example `store` into environment variables)."""


class UsageError(HelperError):
    """Wrong command-line arguments."""


class TokenUnavailable(CredentialsNotFound):
    """A token backend could not mint a token: on the wire the exact not-found (Docker then pulls
    anonymously, as with the cloud helpers), while `reason` (one line, never a secret) is kept for a
    front end whose caller needs it: the kubelet logs a plugin's stderr, and its operator needs the why."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
