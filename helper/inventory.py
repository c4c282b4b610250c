"""Which registries this machine has credentials for, without fetching any: the static store's entries, the
env presets whose variables are set, and the literal hosts of the routes files. `kubelet-config` writes the
kubelet's `matchImages` from them and `export --all` / `--routes` exports them.
"""

from __future__ import annotations

import sys

from .actions import Switchboard
from .backends.env import EnvBackend
from .errors import HelperError
from .route import RouteSpec
from .router import all_presets


def warn(message: str) -> None:
    """One warning line on stderr (the commands' stdout is a document)."""
    sys.stderr.write(f"warning: {message}\n")


def stored(board: Switchboard) -> list[str]:
    """The static store's keys as stored, or none with a warning when the store cannot be read."""
    try:
        return list(board.static.list())
    except HelperError as exc:
        warn(f"the static store cannot be read ({exc}); its hosts are left out")
    except Exception as exc:  # a keychain library's own error: say which, go on with the rest
        warn(f"the static store cannot be read ({type(exc).__name__}); its hosts are left out")
    return []


def preset_answers(spec: RouteSpec) -> bool:
    """Whether an env-preset route would answer now: its variables are set."""
    return EnvBackend.from_params(spec.params).missing() is None


def answering_presets() -> list[RouteSpec]:
    """The built-in env-preset routes whose variables are set (their hosts are literal)."""
    return [spec for spec in all_presets() if preset_answers(spec)]


def route_hosts(board: Switchboard) -> list[str]:
    """The literal host patterns of the routes files in force (user's, then system-wide), not `none` routes';
    a pattern with a `*` names no host to export and is left out with a warning."""
    found: list[str] = []
    for spec in (*board.config.routes, *board.config.system):
        if spec.backend == "none":
            continue
        for pattern in spec.patterns:
            if "*" in pattern.text:
                warn(f"route {pattern.text} ({spec.source}) is a pattern, not a host: left out")
            else:
                found.append(pattern.text)
    return list(dict.fromkeys(found))
