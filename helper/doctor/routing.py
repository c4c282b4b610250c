"""`doctor` checks of routing: the routes files in force, what each route would use, the token cache.

A route is described with its backend's `describe` (what `resolve` prints: local state only, never a
secret, never a network call) for a representative host of its first pattern. The cache key row is left
out (it repeats the identity); values are cut to VALUE_CHARS.
"""

from __future__ import annotations

import os

from .. import NAME, hosts, paths, tokens
from ..actions import Switchboard
from ..backends.env import EnvBackend
from ..cache import TokenCache
from ..config import Config, load_all
from ..errors import HelperError
from ..route import RouteSpec
from ..router import all_presets, builtin_routes
from . import FAIL, OK, WARN, Check

VALUE_CHARS = 100  # a described value longer than this is a path or a command line: enough to recognise it
# the built-in families' patterns have wildcards a backend cannot use (an ECR host needs an account and a region)
SAMPLE_HOSTS = {"ecr": "123456789012.dkr.ecr.us-east-1.amazonaws.com", "ecr-public": "public.ecr.aws",
                "gcp": "gcr.io", "acr": "example.azurecr.io"}
SKIPPED_ROWS = ("cache key",)


def routes_files() -> tuple[Config | None, list[Check]]:
    """The user's and the system's routes files; the Config, or None when they do not load."""
    user = paths.routes_file()
    if paths.routes_file_named() and not os.path.exists(user):
        return None, [Check(FAIL, "routes file", f"SWITCHBOARD_CONFIG names {user}, which does not exist: every "
                            "get, login and resolve fails", "create the file (it may be empty), or unset "
                            "SWITCHBOARD_CONFIG to use the default one")]
    try:
        config = load_all()
    except HelperError as exc:
        return None, [Check(FAIL, "routes file", str(exc), "correct the routes file where the message says")]
    found = [Check(OK, "routes file", f"{config.path} ({len(config.routes)} routes)" if config.path else
                   f"none at {user} (built-in routes only)")]
    found += [Check(OK, "system routes file", path) for path in config.system_paths]
    if config.system_paths:
        found.append(Check(OK, "system routes", f"{len(config.system)} routes from the system files; the user's "
                           "file wins at equal specificity"))
    return config, found


def _sample(spec: RouteSpec) -> str:
    if spec.source == "built-in" and spec.backend in SAMPLE_HOSTS:
        return SAMPLE_HOSTS[spec.backend]
    return spec.patterns[0].text.replace("*", "example")


def _cut(value: str) -> str:
    return value if len(value) <= VALUE_CHARS else value[: VALUE_CHARS - 3] + "..."


def _describe(board: Switchboard, spec: RouteSpec) -> Check:
    host = _sample(spec)
    label = f"route {spec.patterns[0].text}" + (f" (+{len(spec.patterns) - 1})" if len(spec.patterns) > 1 else "")
    try:
        backend = board.backend(spec)
        rows = backend.describe(hosts.parse(host))
    except Exception as exc:  # a route doctor cannot describe is a finding, not a crash
        return Check(WARN, label, f"{spec.backend} ({spec.source}): cannot be described: {type(exc).__name__}: "
                     f"{exc}", f"{NAME} resolve {host}")
    detail = "; ".join(f"{name} {_cut(value)}" for name, value in rows if name not in SKIPPED_ROWS)
    message = f"{spec.backend} from {spec.source}, e.g. {host}" + (f": {detail}" if detail else "")
    if isinstance(backend, EnvBackend) and backend.missing():
        return Check(WARN, label, f"{message}; answers from the static store ({backend.missing()})",
                     "set the route's variables where Docker and Podman run, or drop the route")
    return Check(OK, label, message)


def identities(config: Config) -> list[Check]:
    """Per route (the user's, the system's, the built-in families, the presets whose variables are set): which
    identity it would use and from where."""
    board = Switchboard(config=config)
    found = [_describe(board, spec) for spec in (*config.routes, *config.system, *builtin_routes())]
    idle = []
    for spec in all_presets():
        backend = EnvBackend.from_params(spec.params)
        if backend.missing():
            idle.append(str(spec.params.get("preset")))
        else:
            found.append(_describe(board, spec))
    if idle:
        found.append(Check(OK, "env presets", f"{', '.join(idle)}: their variables are unset, so their hosts use "
                           "the static store"))
    found.append(Check(OK, "default route", "every other host: the static store"))
    return found


def token_cache() -> list[Check]:
    """The token cache's folder and entries: how many, and how many still valid."""
    cache = TokenCache()
    if not os.path.isdir(cache.folder):
        return [Check(OK, "token cache", f"empty ({cache.folder} not created yet)")]
    now = cache.clock()
    states = [token.state(now) for _, _, token in cache.entries()]
    expired = states.count(tokens.EXPIRED)
    return [Check(OK, "token cache", f"{cache.folder}: {len(states)} entries, {len(states) - expired} valid, "
                  f"{expired} expired (refreshed on the next get)")]
