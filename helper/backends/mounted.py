"""Credentials from mounted files: a Kubernetes secret's `username`/`password` files, or a
`.dockerconfigjson` (the `auths` map Docker and Kubernetes use).

Route parameters: `username_file` and `secret_file`, or `username` with `secret_file`, or
`dockerconfigjson`. Files are read at call time, so a rotated secret is picked up at once. A missing
file or host is not-found; a file that exists but cannot be parsed is an error naming it.
"""

from __future__ import annotations

import json

from .. import hosts, log
from ..authfiles import parse_entry
from ..errors import CredentialsNotFound, StoreError
from ..hosts import RegistryKey
from .base import Backend, Credentials


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip("\r\n")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read {path}: {type(exc).__name__}") from None


def _from_auth(name: str, entry: dict[str, object]) -> Credentials | None:
    # one reading of an `auths` entry for the whole helper (authfiles, as `import` and `configure` read it)
    parsed = parse_entry(name, entry)
    return Credentials(parsed.username, parsed.secret) if parsed.login else None


def entry_for(auths: dict[str, object], key: RegistryKey) -> Credentials | None:
    """The login an `auths` map holds for `key`: the exact key first, then its canonical spellings, most
    specific first, each as written or as any name that canonicalises to it; None when no entry is usable.
    The one host matching for every `.dockerconfigjson` the helper reads (this backend's, `aws-secret`'s)."""
    by_canonical = {hosts.parse(name).canonical: name for name in auths}
    for want in [key.raw, *key.candidates()]:
        name = want if want in auths else by_canonical.get(want)
        entry = auths.get(name) if name is not None else None
        if isinstance(entry, dict):
            creds = _from_auth(str(name), entry)
            if creds is not None:
                return creds
    return None


def wanted(key: RegistryKey) -> str:
    """The names `entry_for` looks for, for a not-found's reason."""
    return ", ".join(dict.fromkeys([key.raw, *key.candidates()]))


class MountedFileBackend(Backend):
    """Reads credentials from files on disk."""

    kind = "file"

    def __init__(self, params: dict[str, object]) -> None:
        self.params = params

    def _from_dockerconfig(self, path: str, key: RegistryKey) -> Credentials:
        text = _read_text(path)
        if text is None:
            log.log(f"get {key.raw}: file: {path} does not exist: not-found")
            raise CredentialsNotFound()
        try:
            doc = json.loads(text)
        except ValueError:
            raise StoreError(f"{path} is not valid JSON") from None
        auths = doc.get("auths", doc) if isinstance(doc, dict) else None
        if not isinstance(auths, dict):
            raise StoreError(f"{path} has no 'auths' object")
        creds = entry_for(auths, key)
        if creds is None:
            log.log(f"get {key.raw}: file: {path} has no usable entry for {wanted(key)}: not-found")
            raise CredentialsNotFound()
        return creds

    def get(self, key: RegistryKey) -> Credentials:
        if "dockerconfigjson" in self.params:
            return self._from_dockerconfig(str(self.params["dockerconfigjson"]), key)
        secret = _read_text(str(self.params["secret_file"]))
        if "username_file" in self.params:
            username = _read_text(str(self.params["username_file"]))
        else:
            username = str(self.params.get("username", ""))
        if not secret or not username:
            missing = [str(self.params[name]) for name, value in (("secret_file", secret),
                                                                   ("username_file", username))
                       if name in self.params and not value]
            log.log(f"get {key.raw}: file: {' and '.join(missing) or 'the username'} missing or empty: not-found")
            raise CredentialsNotFound()
        return Credentials(username, secret)

    def describe(self, key: RegistryKey) -> list[tuple[str, str]]:
        return [(name, str(value)) for name, value in self.params.items()
                if name in ("dockerconfigjson", "username_file", "secret_file", "username")]
