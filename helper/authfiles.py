"""Docker's config.json and Podman's auth.json: where they are, their plaintext `auths`, and rewriting them.

Only `import` uses this module (never a `get`). An `auths` entry holds a login in one of three forms:
`auth` (base64 `user:pass`, which wins when present, as in Docker's loader), `username`/`password`, or
`identitytoken` (Docker's refresh token: the user becomes `<token>`, as Docker's native-store code does).
The plaintext is removed by Docker's own `{}` form: the key stays, so Docker still lists it and asks the
helper. Files are replaced atomically with their mode (and, for root, owner) kept; a symlink is followed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time

from . import fsutil

TOKEN_USER = "<token>"  # noqa: S105 - Docker's username for an identity token, not a secret


class Entry:
    """One `auths` entry: a login to import (`username`, `secret`), or `problem` (why not), or neither (`{}`)."""

    __slots__ = ("key", "problem", "secret", "username")

    def __init__(self, key: str, username: str = "", secret: str = "", problem: str = "") -> None:
        self.key = key
        self.username = username
        self.secret = secret
        self.problem = problem

    @property
    def login(self) -> bool:
        """Whether this entry holds a login to import."""
        return bool(self.secret) and not self.problem


def docker_config_path() -> str:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`."""
    folder = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(folder, "config.json")


def default_sources() -> list[str]:
    """The auth files `import` reads without --from: Docker's config, then Podman's (existing ones only)."""
    home = os.path.expanduser("~")
    found = [docker_config_path()]
    if os.environ.get("REGISTRY_AUTH_FILE"):
        found.append(os.environ["REGISTRY_AUTH_FILE"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        found.append(os.path.join(os.environ["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    found.append(os.path.join(config_home, "containers", "auth.json"))
    unique: list[str] = []
    seen: set[str] = set()
    for path in found:
        real = os.path.realpath(path)
        if real not in seen and os.path.isfile(path):
            seen.add(real)
            unique.append(path)
    return unique


def read(path: str) -> tuple[bytes, dict[str, object]]:
    """The file's bytes and its JSON object; OSError or ValueError (one line, no content) otherwise."""
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        doc = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not valid JSON") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return raw, doc


def entries(doc: dict[str, object]) -> list[Entry]:
    """Every `auths` entry of `doc`, parsed (a ValueError if `auths` is not an object)."""
    auths = doc.get("auths", {})
    if not isinstance(auths, dict):
        raise ValueError("`auths` is not an object")
    return [parse_entry(str(key), value) for key, value in auths.items()]


def parse_entry(key: str, value: object) -> Entry:
    """One entry; never raises, never puts the secret in `problem`."""
    if not key.strip() or any(c in key for c in "\0\r\n"):
        return Entry(key, problem="the registry key is empty or not a single line")
    if not isinstance(value, dict):
        return Entry(key, problem="the entry is not a JSON object")
    token = value.get("identitytoken")
    if token not in (None, ""):
        if not isinstance(token, str):
            return Entry(key, problem="identitytoken is not a string")
        return Entry(key, TOKEN_USER, token)
    auth = value.get("auth")
    if auth not in (None, ""):
        if not isinstance(auth, str):
            return Entry(key, problem="auth is not a string")
        try:
            text = base64.b64decode(auth.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return Entry(key, problem="auth is not base64 of UTF-8 user:password")
        username, colon, secret = text.partition(":")
        return _checked(key, username if colon else "", secret, "auth")
    user, password = value.get("username"), value.get("password")
    if user in (None, "") and password in (None, ""):
        return Entry(key)  # `{}` (or only `email`): nothing in plaintext
    if not isinstance(user, (str, type(None))) or not isinstance(password, (str, type(None))):
        return Entry(key, problem="username or password is not a string")
    return _checked(key, user or "", password or "", "username/password")


def _checked(key: str, username: str, secret: str, form: str) -> Entry:
    if not username:
        return Entry(key, problem=f"{form}: no username")
    if not secret:
        return Entry(key, problem=f"{form}: no password")
    if any(c in username for c in "\0\r\n"):
        return Entry(key, problem=f"{form}: the username is not a single line")
    return Entry(key, username, secret)


def without_plaintext(doc: dict[str, object], keys: set[str]) -> bytes:
    """`doc` with each of `keys` in `auths` replaced by `{}`, every other key kept, tab-indented as Docker writes."""
    auths = doc.get("auths")
    assert isinstance(auths, dict)
    cleaned = dict(doc)
    cleaned["auths"] = {key: ({} if key in keys else value) for key, value in auths.items()}
    return (json.dumps(cleaned, indent="\t", ensure_ascii=False) + "\n").encode("utf-8")


def backup(path: str, raw: bytes) -> str:
    """Write `raw` (the old file, plaintext included) next to `path`, 0600, never over anything; its path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(100):
        name = f"{path}.plaintext-backup-{stamp}" + (f"-{n}" if n else "")
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), 0o600)  # whatever the umask
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        return name
    raise OSError(f"no free backup name next to {path}")


def replace(path: str, data: bytes) -> None:
    """Replace the file at `path` (a symlink's target) with `data` atomically, keeping its mode and owner."""
    target = os.path.realpath(path)
    info = os.stat(target)
    fsutil.replace_file(target, data, mode=info.st_mode & 0o7777, owner=fsutil.kept_owner(info))


def uses_helper(doc: dict[str, object], key: str, helper: str) -> bool:
    """Whether Docker, reading `doc`, asks `helper` for `key` (credHelpers entry, else credsStore)."""
    named = doc.get("credHelpers")
    if isinstance(named, dict) and key in named:
        return bool(named[key] == helper)
    return bool(doc.get("credsStore") == helper)
