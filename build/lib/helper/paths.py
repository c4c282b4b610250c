"""Where the helper keeps its files: the routes file (config) and the store and key file (data).

Linux and other Unix: XDG (`$XDG_CONFIG_HOME`, `$XDG_DATA_HOME`, defaulting under `~/.config` and
`~/.local/share`). macOS: `~/Library/Application Support`, unless the XDG variable is set.
Windows: `%APPDATA%` for config and `%LOCALAPPDATA%` for data. `SWITCHBOARD_CONFIG` names the routes
file and `SWITCHBOARD_DATA_DIR` the data folder, for CI images and tests.
"""

from __future__ import annotations

import os
import sys

APP = "docker-credential-switchboard"


def _home() -> str:
    return os.path.expanduser("~")


def config_dir() -> str:
    """The folder that holds `routes.toml`."""
    if os.environ.get("XDG_CONFIG_HOME"):
        return os.path.join(os.environ["XDG_CONFIG_HOME"], APP)
    if sys.platform == "win32":
        return os.path.join(os.environ.get("APPDATA") or os.path.join(_home(), "AppData", "Roaming"), APP)
    if sys.platform == "darwin":
        return os.path.join(_home(), "Library", "Application Support", APP)
    return os.path.join(_home(), ".config", APP)


def routes_file() -> str:
    """The routes file: `$SWITCHBOARD_CONFIG`, else `routes.toml` in the config folder."""
    return os.environ.get("SWITCHBOARD_CONFIG") or os.path.join(config_dir(), "routes.toml")


def data_dir() -> str:
    """The private folder (0700) of the encrypted store, its key file, lock and index."""
    if os.environ.get("SWITCHBOARD_DATA_DIR"):
        return os.environ["SWITCHBOARD_DATA_DIR"]
    if os.environ.get("XDG_DATA_HOME"):
        return os.path.join(os.environ["XDG_DATA_HOME"], APP)
    if sys.platform == "win32":
        return os.path.join(os.environ.get("LOCALAPPDATA") or os.path.join(_home(), "AppData", "Local"), APP)
    if sys.platform == "darwin":
        return os.path.join(_home(), "Library", "Application Support", APP)
    return os.path.join(_home(), ".local", "share", APP)
