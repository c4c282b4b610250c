"""Where the helper keeps its files: the routes file (config), the store (data) and the token cache.

Linux and other Unix: XDG (`$XDG_CONFIG_HOME`, `$XDG_DATA_HOME`, `$XDG_CACHE_HOME`, defaulting to
`~/.config`, `~/.local/share`, `~/.cache`). macOS: `~/Library/Application Support` (config, data) and
`~/Library/Caches`, unless the XDG variable is set. Windows: `%APPDATA%` for config and `%LOCALAPPDATA%`
for data and cache. `SWITCHBOARD_CONFIG` names the user's routes file (it replaces only that one: the
system-wide files still apply), `SWITCHBOARD_SYSTEM_CONFIG` the one system-wide routes file (instead of
`/etc/xdg/docker-credential-switchboard/routes.toml` and `/etc/docker-credential-switchboard/routes.toml`),
`SWITCHBOARD_DATA_DIR` the data folder and `SWITCHBOARD_CACHE_DIR` the cache folder, for CI images and tests.
"""

from __future__ import annotations

import os
import sys

APP = "docker-credential-switchboard"


def _folder(override: str | None, xdg: str, unix_default: str, windows_var: str, windows_default: str,
            mac_default: str, windows_sub: str = "") -> str:
    if override and os.environ.get(override):
        return os.environ[override]
    if os.environ.get(xdg):
        return os.path.join(os.environ[xdg], APP)
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get(windows_var) or os.path.join(home, "AppData", windows_default)
        return os.path.join(base, APP, windows_sub) if windows_sub else os.path.join(base, APP)
    if sys.platform == "darwin":
        return os.path.join(home, "Library", mac_default, APP)
    return os.path.join(home, unix_default, APP)


def config_dir() -> str:
    """The folder that holds `routes.toml`."""
    return _folder(None, "XDG_CONFIG_HOME", ".config", "APPDATA", "Roaming", "Application Support")


def routes_file() -> str:
    """The user's routes file: `$SWITCHBOARD_CONFIG`, else `routes.toml` in the config folder."""
    return os.environ.get("SWITCHBOARD_CONFIG") or os.path.join(config_dir(), "routes.toml")


def routes_file_named() -> bool:
    """Whether `SWITCHBOARD_CONFIG` names the user's routes file (then it must exist)."""
    return bool(os.environ.get("SWITCHBOARD_CONFIG"))


# The fleet's own routes file, after those of XDG_CONFIG_DIRS (system_routes_files).
ETC_ROUTES_FILE = f"/etc/{APP}/routes.toml"


def system_routes_files() -> tuple[str, ...]:
    """The system-wide routes files, most important first: `$SWITCHBOARD_SYSTEM_CONFIG` alone when set (tests,
    images that keep it elsewhere), else `$XDG_CONFIG_DIRS/<app>/routes.toml` for each folder (default /etc/xdg), then
    /etc/<app>/routes.toml (none on Windows). A missing one is skipped."""
    named = os.environ.get("SWITCHBOARD_SYSTEM_CONFIG")
    if named:
        return (named,)
    if sys.platform == "win32":
        return ()
    # XDG_CONFIG_DIRS, most important first (default /etc/xdg); relative entries are ignored, as the spec says.
    # The standalone launcher fingerprints the variable, so a record never outlives a change of it.
    dirs = [d for d in (os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":") if d.startswith("/")]
    found = [os.path.join(d, APP, "routes.toml") for d in dirs] + [ETC_ROUTES_FILE]
    return tuple(dict.fromkeys(found))


def all_routes_files() -> tuple[str, ...]:
    """Every routes file that may be in force (present or not), the user's first: what a recorded answer pins."""
    return (routes_file(), *system_routes_files())


def data_dir() -> str:
    """The private folder (0700) of the encrypted store, its key file, lock and index."""
    return _folder("SWITCHBOARD_DATA_DIR", "XDG_DATA_HOME", os.path.join(".local", "share"), "LOCALAPPDATA",
                   "Local", "Application Support")


def cache_dir() -> str:
    """The private folder (0700) of the token cache."""
    return _folder("SWITCHBOARD_CACHE_DIR", "XDG_CACHE_HOME", ".cache", "LOCALAPPDATA", "Local", "Caches",
                   windows_sub="cache")
