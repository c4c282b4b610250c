"""The header and claims of a JWT, read unverified: only to learn what a token says about itself (its expiry,
tenant, service account), never to trust it. Whoever accepts the token verifies it."""

from __future__ import annotations

import binascii

from . import fastjson


def b64url_decode(part: str) -> bytes:
    """base64url without padding, as JWTs write it; binascii.Error or UnicodeError when it is not."""
    return binascii.a2b_base64((part.replace("-", "+").replace("_", "/") + "=" * (-len(part) % 4)).encode("ascii"))


def segments(token: str) -> tuple[dict[str, object], dict[str, object]] | None:
    """(header, claims) of a JWT, both JSON objects; None when `token` is not one."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        return None
    try:
        header, claims = fastjson.loads(b64url_decode(parts[0])), fastjson.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeError, binascii.Error):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims
