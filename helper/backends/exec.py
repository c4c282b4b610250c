"""`exec`: a command (an argv list, no shell) that prints a secret, or a JSON object with `Username`,
`Secret` and an optional `ExpiresAt` (epoch seconds or RFC 3339). The registry key arrives on its stdin
(as a credential helper's would) and in `SWITCHBOARD_REGISTRY`; it runs under a timeout in its own
process group, and past 1 MiB of output that group is killed (`procs`). Any failure is logged and answered
not-found. Its answer is cached until `ExpiresAt`, else for the route's `ttl` seconds, else not at all.
"""

from __future__ import annotations

import os

from ..hosts import RegistryKey
from ..procs import run_child
from ..tokens import Token, now
from .base import Rows
from .token_base import Identity, TokenBackend

DEFAULT_TIMEOUT_S = 10.0


def _parse_expiry(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        from datetime import datetime, timezone

        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    raise ValueError("ExpiresAt must be epoch seconds or an RFC 3339 time")


class ExecBackend(TokenBackend):
    """Credentials from a command of the user's."""

    kind = "exec"

    def _argv(self) -> list[str]:
        command = self.spec.params["command"]
        assert isinstance(command, list)
        return [str(part) for part in command]

    def target(self, key: RegistryKey) -> str:
        return key.hostport or key.raw

    def who(self, key: RegistryKey) -> Identity:
        # the command line is all the helper knows: what the command itself reads (files, variables) is its
        # own business, which its ExpiresAt or the route's ttl bounds
        return Identity("\x1f".join(self._argv()))

    def caching(self) -> bool:
        return True

    def deadline(self) -> float:
        # the command's own timeout kills it; the margin covers starting it and reading its answer
        return float(self.spec.params.get("timeout", DEFAULT_TIMEOUT_S)) + 5.0  # type: ignore[arg-type]

    def fetch(self, key: RegistryKey) -> Token:
        timeout = float(self.spec.params.get("timeout", DEFAULT_TIMEOUT_S))  # type: ignore[arg-type]
        argv = self._argv()
        started = now()
        os.environ["SWITCHBOARD_REGISTRY"] = key.hostport or key.raw
        result = run_child(argv, key.raw.encode("utf-8"), timeout, f"the exec command {argv[0]}")
        if result.returncode != 0:
            raise RuntimeError(f"the exec command {argv[0]} exited {result.returncode}")
        text = result.stdout.decode("utf-8").strip()
        if not text:
            raise RuntimeError(f"the exec command {argv[0]} printed nothing")
        ttl = self.spec.params.get("ttl")
        expires = started + float(ttl) if isinstance(ttl, (int, float)) else None
        username = str(self.spec.params.get("username", ""))
        secret = text
        if text.startswith("{"):
            import json

            try:
                doc = json.loads(text)
            except ValueError:
                raise RuntimeError(f"the exec command {argv[0]} printed broken JSON") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("Secret"), str):
                raise RuntimeError(f"the exec command {argv[0]} printed JSON without a string Secret")
            secret = doc["Secret"]
            username = str(doc.get("Username") or username)
            if doc.get("ExpiresAt") is not None:
                expires = _parse_expiry(doc["ExpiresAt"])
        if not username:
            raise RuntimeError("no username: print JSON with Username, or set username in the route")
        token = Token(username, secret, expires, started)
        if expires is None:
            # no expiry and no ttl: never cache (an expired-by-clock token is served once, not stored)
            token = Token(username, secret, started, started)
        return token

    def identity(self, key: RegistryKey) -> Rows:
        ttl = self.spec.params.get("ttl")
        return [("command", " ".join(self._argv())),
                ("timeout", f"{self.spec.params.get('timeout', DEFAULT_TIMEOUT_S)} s"),
                ("ttl", f"{ttl} s (unless the command prints ExpiresAt)" if ttl else
                 "none: cached only when the command prints ExpiresAt")]
