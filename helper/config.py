"""Read and validate the routes file (TOML). Errors name the file, the line and the fix, in one line.

```toml
[store]
kind = "auto"        # auto | keyring | file  (SWITCHBOARD_STORE overrides)

[[route]]
match = "nvcr.io"    # or a list of patterns; see helper.patterns for the rules
backend = "env"
preset = "ngc"
```

A missing file is not an error (the built-in routes apply); `tomllib` is imported only when a file exists.
"""

from __future__ import annotations

import os
import stat
import sys

from .errors import ConfigError
from .patterns import Pattern, compile_pattern

STORE_KINDS = ("auto", "keyring", "file")
MAX_TIMEOUT_S = 300  # a helper call that waits longer than 5 minutes is a hang, whatever the route says
MAX_TTL_S = 30 * 24 * 3600  # a cached secret older than 30 days is no longer a token
MAX_FILE_BYTES = 1024 * 1024  # a routes file is a few KB; a bigger one is a mistake (or /dev/zero)
ENV_PRESETS = ("ngc", "ghcr", "dockerhub", "gitlab", "quay")

# backend -> the parameters its routes may carry (besides `match` and `backend`)
PARAMS: dict[str, frozenset[str]] = {
    "store": frozenset(),
    "none": frozenset(),
    "env": frozenset({"preset", "username", "username_env", "secret_env"}),
    "file": frozenset({"username", "username_file", "secret_file", "dockerconfigjson"}),
    "helper": frozenset({"helper", "timeout"}),
    "ecr": frozenset({"profile", "role_arn", "external_id", "session_name", "region", "registry"}),
    "ecr-public": frozenset({"profile", "role_arn", "external_id", "session_name"}),
    "gcp": frozenset({"impersonate", "scopes"}),
    "acr": frozenset({"tenant", "client_id", "scope"}),
    "exec": frozenset({"command", "timeout", "ttl", "username"}),
}


class RouteSpec:
    """One route as written: its patterns, backend name and parameters, and where it came from."""

    __slots__ = ("backend", "params", "patterns", "source")

    def __init__(self, patterns: list[Pattern], backend: str, params: dict[str, object], source: str) -> None:
        self.patterns = patterns
        self.backend = backend
        self.params = params
        self.source = source


class Config:
    """The parsed routes file."""

    __slots__ = ("path", "routes", "store_kind")

    def __init__(self, path: str | None, routes: list[RouteSpec], store_kind: str | None) -> None:
        self.path = path
        self.routes = routes
        self.store_kind = store_kind


def _header_lines(text: str, header: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), 1) if line.strip().replace(" ", "").startswith(header)]


def _check_route(n: int, raw: object, where: str) -> RouteSpec:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{where}: route {n}: {problem}")

    if not isinstance(raw, dict):
        raise fail("must be a table ([[route]])")
    match, backend = raw.get("match"), raw.get("backend")
    if match is None:
        raise fail("has no 'match'; add match = \"host.example\" (or a list of patterns)")
    if backend not in PARAMS:
        raise fail(f"backend {backend!r} is not one of {', '.join(PARAMS)}")
    assert isinstance(backend, str)
    texts = match if isinstance(match, list) else [match]
    try:
        patterns = [compile_pattern(t) for t in texts]
    except ValueError as exc:
        raise fail(str(exc)) from None
    if not patterns:
        raise fail("'match' is an empty list")
    params = {k: v for k, v in raw.items() if k not in ("match", "backend")}
    unknown = sorted(set(params) - PARAMS[backend])
    if unknown:
        allowed = ", ".join(sorted(PARAMS[backend])) or "none"
        raise fail(f"unknown parameter {unknown[0]!r} for backend {backend!r} (allowed: {allowed})")
    for name, value in params.items():
        if name in ("timeout", "ttl"):
            cap = MAX_TIMEOUT_S if name == "timeout" else MAX_TTL_S
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= cap:
                raise fail(f"'{name}' must be a positive number of seconds, at most {cap}")
        elif name in ("command", "scopes"):
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise fail(f"'{name}' must be a non-empty list of strings, e.g. [\"prog\", \"--flag\"]")
        elif not isinstance(value, str) or not value:
            raise fail(f"'{name}' must be a non-empty string")
    if backend == "env":
        if "preset" in params and params["preset"] not in ENV_PRESETS:
            raise fail(f"preset {params['preset']!r} is not one of {', '.join(ENV_PRESETS)}")
        if "preset" not in params and ("secret_env" not in params or not (
                "username" in params or "username_env" in params)):
            raise fail("an env route needs secret_env and username (or username_env), or a preset")
    if backend == "file" and "dockerconfigjson" not in params and ("secret_file" not in params or not (
            "username" in params or "username_file" in params)):
        raise fail("a file route needs dockerconfigjson, or secret_file with username or username_file")
    if backend == "helper" and "helper" not in params:
        raise fail("a helper route needs helper = \"osxkeychain\" (the docker-credential-<name> suffix)")
    if backend == "exec" and "command" not in params:
        raise fail("an exec route needs command = [\"program\", \"arg\"]")
    return RouteSpec(patterns, backend, params, where)


def parse(text: str, path: str) -> Config:
    """Parse routes-file text; raises ConfigError naming `path` and the line."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}; fix the syntax at that line") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    unknown = sorted(set(doc) - {"route", "store"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key {unknown[0]!r}; only [store] and [[route]] are allowed")
    store = doc.get("store", {})
    store_line = (_header_lines(text, "[store]") or [1])[0]
    if not isinstance(store, dict) or set(store) - {"kind"}:
        raise ConfigError(f"{path}:{store_line}: [store] takes only kind = \"auto\" | \"keyring\" | \"file\"")
    kind = store.get("kind")
    if kind is not None and kind not in STORE_KINDS:
        raise ConfigError(f"{path}:{store_line}: [store] kind {kind!r} is not one of auto, keyring, file")
    raw_routes = doc.get("route", [])
    if not isinstance(raw_routes, list):
        raise ConfigError(f"{path}: 'route' must be written as [[route]] tables")
    lines = _header_lines(text, "[[route]]")
    routes = [_check_route(n, raw, f"{path}:{lines[n - 1] if n <= len(lines) else 1}")
              for n, raw in enumerate(raw_routes, 1)]
    return Config(path, routes, kind)


def load(path: str) -> Config:
    """Load the routes file at `path`; a missing file gives an empty config."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return Config(None, [], None)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the routes file ({exc.strerror}); point SWITCHBOARD_CONFIG "
                          "at a readable file") from None
    if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO (would hang), a device (/dev/zero)
        raise ConfigError(f"{path}: is not a regular file; point SWITCHBOARD_CONFIG at a routes file")
    if info.st_size > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: is larger than {MAX_FILE_BYTES // 1024} KiB; is it really the routes file?")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the routes file ({exc.strerror}); fix its permissions or "
                          "point SWITCHBOARD_CONFIG elsewhere") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a BOM from a Windows editor is harmless
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text; save the routes file as UTF-8") from None
    return parse(text, path)
