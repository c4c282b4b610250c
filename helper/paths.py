"""Where the helper keeps its files: the routes file (config), the store (data) and the token cache.

Linux and other Unix: XDG (`$XDG_CONFIG_HOME`, `$XDG_DATA_HOME`, `$XDG_CACHE_HOME`, defaulting to
`~/.config`, `~/.local/share`, `~/.cache`). macOS: `~/Library/Application Support` (config, data) and
`~/Library/Caches`, unless the XDG variable is set. Windows: `%APPDATA%` for config and `%LOCALAPPDATA%`
for data and cache. `SWITCHBOARD_CONFIG` names the routes file, `SWITCHBOARD_DATA_DIR` the data folder
and `SWITCHBOARD_CACHE_DIR` the cache folder, for CI images and tests.
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
    """The routes file: `$SWITCHBOARD_CONFIG`, else `routes.toml` in the config folder."""
    return os.environ.get("SWITCHBOARD_CONFIG") or os.path.join(config_dir(), "routes.toml")


def data_dir() -> str:
    """The private folder (0700) of the encrypted store, its key file, lock and index."""
    return _folder("SWITCHBOARD_DATA_DIR", "XDG_DATA_HOME", os.path.join(".local", "share"), "LOCALAPPDATA",
                   "Local", "Application Support")


def cache_dir() -> str:
    """The private folder (0700) of the token cache."""
    return _folder("SWITCHBOARD_CACHE_DIR", "XDG_CACHE_HOME", ".cache", "LOCALAPPDATA", "Local", "Caches",
                   windows_sub="cache")
