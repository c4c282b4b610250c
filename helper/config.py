"""Read and validate the routes file (TOML). Errors name the file, the line and the fix, in one line.

```toml
[store]
kind = "auto"        # auto | keyring | file  (SWITCHBOARD_STORE overrides)

[[route]]
match = "nvcr.io"    # or a list of patterns; see helper.patterns for the rules
backend = "env"
preset = "ngc"
```

Layers: the system-wide routes files (helper/paths.py system_routes_files) under the user's file; the router
ranks the user's routes over the system ones at equal specificity. A missing file is not an error (the built-in
routes apply), except a file an environment variable names (`SWITCHBOARD_CONFIG`, `SWITCHBOARD_SYSTEM_CONFIG`):
a typo there is an error naming the path. `tomllib` is imported only when a file exists.
Root (euid 0) refuses a routes file that another user owns or can write, or that it reaches through a
folder another user controls (`fsutil.path_problem`): an `exec` route runs its command as root, so a
routes file in a HOME that `sudo -E` kept would let that user run anything as root.
"""

from __future__ import annotations

import os
import stat
import sys

from . import fsutil
from .backends.registry import BACKENDS, SECONDS, STRINGS, Param, unknown_kind
from .errors import ConfigError
from .patterns import compile_pattern
from .route import RouteSpec

STORE_KINDS = ("auto", "keyring", "file")
MAX_FILE_BYTES = 1024 * 1024  # a routes file is a few KB; a bigger one is a mistake (or /dev/zero)

# Views of the backend table (helper/backends/registry.py), which is the one source; kept for their readers.
PARAMS: dict[str, frozenset[str]] = {kind: frozenset(row.params) for kind, row in BACKENDS.items()}
ENV_PRESETS = BACKENDS["env"].params["preset"].choices


class Config:
    """The parsed routes files: the user's (`path`, `routes`) over the system-wide ones (`system_paths`, `system`)."""

    __slots__ = ("path", "routes", "store_kind", "system", "system_paths")

    def __init__(self, path: str | None, routes: list[RouteSpec], store_kind: str | None,
                 system: list[RouteSpec] | None = None, system_paths: list[str] | None = None) -> None:
        self.path = path
        self.routes = routes
        self.store_kind = store_kind
        self.system = system or []  # every system file's routes, the most important file first
        self.system_paths = system_paths or []  # the system files in force (present), most important first

    @property
    def paths(self) -> list[str]:
        """Every routes file in force, the user's first."""
        return ([self.path] if self.path else []) + self.system_paths


def _header_lines(text: str, header: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), 1) if line.strip().replace(" ", "").startswith(header)]


def _type_problem(name: str, param: Param, value: object) -> str | None:
    if param.type == SECONDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= param.cap:
            return f"'{name}' must be a positive number of seconds, at most {param.cap}"
    elif param.type == STRINGS:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            return f"'{name}' must be a non-empty list of strings, e.g. [\"prog\", \"--flag\"]"
    elif not isinstance(value, str) or not value:
        return f"'{name}' must be a non-empty string"
    return None


def _check_route(n: int, raw: object, where: str) -> RouteSpec:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{where}: route {n}: {problem}")

    if not isinstance(raw, dict):
        raise fail("must be a table ([[route]])")
    match, backend = raw.get("match"), raw.get("backend")
    if match is None:
        raise fail("has no 'match'; add match = \"host.example\" (or a list of patterns)")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise fail(unknown_kind(backend))
    row = BACKENDS[backend]
    texts = match if isinstance(match, list) else [match]
    try:
        patterns = [compile_pattern(t) for t in texts]
    except ValueError as exc:
        raise fail(str(exc)) from None
    if not patterns:
        raise fail("'match' is an empty list")
    params = {k: v for k, v in raw.items() if k not in ("match", "backend")}
    unknown = sorted(set(params) - set(row.params))
    if unknown:
        allowed = ", ".join(sorted(row.params)) or "none"
        raise fail(f"unknown parameter {unknown[0]!r} for backend {backend!r} (allowed: {allowed})")
    for name, value in params.items():  # every type first, then choices, then requirements: the first problem wins
        problem = _type_problem(name, row.params[name], value)
        if problem:
            raise fail(problem)
    for name, param in row.params.items():
        if param.choices and name in params and params[name] not in param.choices:
            raise fail(f"{name} {params[name]!r} is not one of {', '.join(param.choices)}")
    if row.requires and not any(need <= params.keys() for need in row.requires):
        raise fail(row.requires_message)
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


def _refuse_as_root(path: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: refusing the routes file: {problem}, and {fsutil.ROOT_RULE}; run as root with "
                       "root's own HOME (sudo -H, not sudo -E) or point SWITCHBOARD_CONFIG at a file only root can "
                       "write")


def _root_check(path: str, opened: os.stat_result) -> None:
    # root runs what the routes file says: the file and every folder on its way must be root's alone
    why = fsutil.distrust(opened)
    if why:
        raise _refuse_as_root(path, f"it {why}")
    _, problem = fsutil.path_problem(path)
    if problem:
        raise _refuse_as_root(path, problem)


def load(path: str, must_exist: str | None = None) -> Config:
    """Load the routes file at `path`; a missing file gives an empty config, or a ConfigError when `must_exist`
    names the variable that named the file."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(f"{path}: no such routes file, and {must_exist} names it; create the file or unset "
                              f"{must_exist}") from None
        return Config(None, [], None)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the routes file ({exc.strerror}); point SWITCHBOARD_CONFIG "
                          "at a readable file") from None
    if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO (would hang), a device (/dev/zero)
        raise ConfigError(f"{path}: is not a regular file; point SWITCHBOARD_CONFIG at a routes file")
    if info.st_size > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: is larger than {MAX_FILE_BYTES // 1024} KiB; is it really the routes file?")
    try:
        # non-blocking: a FIFO swapped in after the stat above must not hang the helper
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as handle:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode):
                raise ConfigError(f"{path}: is not a regular file; point SWITCHBOARD_CONFIG at a routes file")
            if sys.platform != "win32" and os.geteuid() == 0:
                _root_check(path, opened)
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


def load_all() -> Config:
    """The user's routes file (`paths.routes_file`) layered over the system-wide ones (`paths.system_routes_files`)."""
    from . import paths

    user = load(paths.routes_file(), "SWITCHBOARD_CONFIG" if paths.routes_file_named() else None)
    named_system = bool(os.environ.get("SWITCHBOARD_SYSTEM_CONFIG"))
    for system_path in paths.system_routes_files():
        layer = load(system_path, "SWITCHBOARD_SYSTEM_CONFIG" if named_system else None)
        if layer.path is not None:
            user.system += layer.routes
            user.system_paths.append(layer.path)
            if user.store_kind is None:
                user.store_kind = layer.store_kind
    return user
