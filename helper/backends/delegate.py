"""Delegate a route to another credential helper (`docker-credential-osxkeychain`, `-wincred`, `-pass`,
`-desktop`, ...): same protocol, stdin passed through, its answer passed back, bounded by a timeout and
by 1 MiB of answer (`procs`: past either, its process group is killed and the call fails with one line).

Route parameters: `helper` (the suffix, or an absolute path) and `timeout` (seconds, default 10).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

from ..errors import CredentialsNotFound, HelperError
from ..hosts import RegistryKey
from ..procs import run_child
from .base import Backend, Credentials, Rows

DEFAULT_TIMEOUT_S = 10.0  # clients never time a helper out (PROTOCOL.md §7): we must
NOT_FOUND = "credentials not found in native keychain"
DEPTH_VAR = "SWITCHBOARD_DELEGATE_DEPTH"


class DelegateBackend(Backend):
    """Runs `docker-credential-<helper> <action>` for each operation."""

    kind = "helper"

    def __init__(self, helper: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.helper = helper
        self.timeout = timeout

    def _program(self) -> str:
        name = self.helper if os.path.isabs(self.helper) else f"docker-credential-{self.helper}"
        found = name if os.path.isabs(name) else shutil.which(name)
        if not found:
            raise HelperError(f"{name} is not on PATH; install it or fix 'helper' in the routes file")
        return found

    def _run(self, action: str, data: bytes) -> tuple[int, str]:
        depth = int(os.environ.get(DEPTH_VAR, "0") or 0)
        if depth >= 2:  # a routes file that delegates back to switchboard would recurse forever
            raise HelperError(f"delegation loop: docker-credential-{self.helper} calls back into switchboard")
        os.environ[DEPTH_VAR] = str(depth + 1)
        try:
            result = run_child([self._program(), action], data, self.timeout, f"docker-credential-{self.helper}")
        finally:
            os.environ[DEPTH_VAR] = str(depth)
        return result.returncode, result.stdout.decode("utf-8", "replace")

    def _fail(self, action: str, out: str, secret: str = "") -> HelperError:
        first = out.strip().splitlines()[0][:200] if out.strip() else "no output"
        if secret:  # a delegate that echoes its input must not put the secret in our error line
            for form in (secret, json.dumps(secret)[1:-1]):
                first = first.replace(form, "***")
            first = first if len(secret) < 4 or secret[:40] not in first else "(output withheld: it holds the secret)"
        return HelperError(f"docker-credential-{self.helper} {action} failed: {first}")

    def get(self, key: RegistryKey) -> Credentials:
        code, out = self._run("get", key.raw.encode("utf-8"))
        if code != 0:
            if out.strip() == NOT_FOUND:
                raise CredentialsNotFound()
            raise self._fail("get", out)
        try:
            doc = json.loads(out)
            username, secret = doc["Username"], doc["Secret"]
        except (ValueError, KeyError, TypeError):
            raise HelperError(f"docker-credential-{self.helper} get answered something that is not "
                              "credentials JSON") from None
        if not isinstance(username, str) or not isinstance(secret, str):
            raise HelperError(f"docker-credential-{self.helper} get answered non-string credentials")
        if not username and not secret:  # docker-credential-pass's way of saying not-found
            raise CredentialsNotFound()
        return Credentials(username, secret)

    def store(self, key: RegistryKey, creds: Credentials) -> None:
        payload = json.dumps({"ServerURL": key.raw, "Username": creds.username, "Secret": creds.secret})
        code, out = self._run("store", payload.encode("utf-8"))
        if code != 0:
            raise self._fail("store", out, creds.secret)

    def erase(self, key: RegistryKey) -> None:
        code, out = self._run("erase", key.raw.encode("utf-8"))
        if code != 0 and out.strip() != NOT_FOUND and "not in the password store" not in out:
            raise self._fail("erase", out)

    def list(self) -> dict[str, str]:
        try:
            code, out = self._run("list", b"unused")
            doc = json.loads(out) if code == 0 else {}
        except (HelperError, ValueError):
            return {}
        return {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, str)} \
            if isinstance(doc, dict) else {}

    def describe(self, key: RegistryKey) -> Rows:
        try:
            where = self._program()
        except HelperError as exc:
            where = str(exc)
        return [("helper", where), ("timeout", f"{self.timeout:g} s"), ("platform", sys.platform)]
