"""Tokens with an expiry, their freshness against an injected clock, and the refresh windows.

Two windows in the botocore manner, scaled down for short-lived tokens:

* advisory: inside it one process refreshes while the others keep using the current token, and if the
  refresh fails the still-valid token is served;
* mandatory: inside it the token is about to expire; every caller waits for the refresh and a failure
  is an error (answered as not-found).

A token already expired by the local clock (clock skew; moto's ECR tokens carry a fixed 2015 expiry)
is served for the call that fetched it, never cached.
"""

from __future__ import annotations

import time

ADVISORY_REFRESH_S = 15 * 60  # refresh 15 min early, keeping the old token if that fails (botocore's value)
MANDATORY_REFRESH_S = 5 * 60  # 5 min left: no client should start a pull with it; everyone waits
# For tokens shorter than an hour the windows shrink with the lifetime, or a 10-minute token would be
# "stale" from birth: advisory from half of its life, mandatory from its last quarter.
ADVISORY_FRACTION = 0.5
MANDATORY_FRACTION = 0.25

FRESH, STALE, EXPIRING, EXPIRED = "fresh", "stale", "expiring", "expired"


def now() -> float:
    """Seconds since the epoch (UTC): the default clock, injected everywhere else."""
    return time.time()


class Token:
    """A username and secret valid until `expires_at` (epoch seconds, None = no expiry known)."""

    __slots__ = ("expires_at", "obtained_at", "secret", "username")

    def __init__(self, username: str, secret: str, expires_at: float | None, obtained_at: float) -> None:
        self.username = username
        self.secret = secret
        self.expires_at = expires_at
        self.obtained_at = obtained_at

    def state(self, at: float) -> str:
        """FRESH, STALE (advisory window), EXPIRING (mandatory window) or EXPIRED at time `at`."""
        if self.expires_at is None:
            return FRESH
        left = self.expires_at - at
        if left != left or left == float("inf"):  # NaN or infinite: nothing to trust, treat as expired
            return EXPIRED
        if left <= 0:
            return EXPIRED
        lifetime = max(self.expires_at - self.obtained_at, 1.0)
        if left <= min(MANDATORY_REFRESH_S, lifetime * MANDATORY_FRACTION):
            return EXPIRING
        if left <= min(ADVISORY_REFRESH_S, lifetime * ADVISORY_FRACTION):
            return STALE
        return FRESH

    def fresh_until(self) -> float | None:
        """When `state` stops being FRESH (the advisory window opens); None when the token never expires."""
        if self.expires_at is None:
            return None
        lifetime = max(self.expires_at - self.obtained_at, 1.0)
        return self.expires_at - min(ADVISORY_REFRESH_S, lifetime * ADVISORY_FRACTION)

    def __repr__(self) -> str:
        return f"Token(username={self.username!r}, secret=<{len(self.secret)} chars>, expires_at={self.expires_at})"
