"""Map a registry key to its route: the most specific matching pattern wins, else the static store.

Built-in routes claim the cloud registries from the start (ECR in every partition, FIPS and dual-stack,
ECR Public, GCR and Artifact Registry, ACR). Routes from the user's routes file come first at equal
specificity, then the system-wide files' (helper/config.py load_all), then the built-ins, so a user can take
any host back (`backend = "store"`, or `"none"` for anonymous).

The env presets (PRESET_ROUTES: nvcr.io, ghcr.io, Docker Hub, quay.io, and the host `$CI_REGISTRY` names) take
only the hosts no other route claims, whatever its specificity: they stand in for the default route, and like it
fall back to the static store when they have nothing (their variables unset). So a routes file always wins over a
preset, and `CI_REGISTRY` can move a host only from the static store to the env backend, both static backends
whose answers the standalone launcher never records.

A Docker Hub key (`https://index.docker.io/v1/`, `index.docker.io`, `registry-1.docker.io`,
`registry.hub.docker.com`) matches a route for its spelling and a route for `docker.io`.
Keys that do not name a host (userinfo, spaces, ...) and hosts with capitals or a trailing dot never
match a route: they go to the static store only.
"""

from __future__ import annotations

import os

from .config import Config
from .hosts import HUB, HUB_ALIASES, RegistryKey
from .patterns import Pattern, compile_pattern
from .route import RouteSpec

_ECR_SERVICE_LABELS = ("dkr.ecr", "dkr.ecr-fips", "dkr-ecr", "dkr-ecr-fips")
# The partitions' DNS suffixes, as amazon-ecr-credential-helper's anchored regex lists them.
_ECR_SUFFIXES = ("amazonaws.com", "amazonaws.com.cn", "amazonaws.eu", "on.aws", "on.amazonwebservices.com.cn",
                 "sc2s.sgov.gov", "c2s.ic.gov", "cloud.adc-e.uk", "csp.hci.ic.gov")

BUILTIN: list[tuple[str, tuple[str, ...]]] = [
    ("ecr", tuple(f"*.{svc}.*.{suffix}" for svc in _ECR_SERVICE_LABELS for suffix in _ECR_SUFFIXES)),
    ("ecr-public", ("public.ecr.aws", "ecr-public.aws.com")),
    ("gcp", ("gcr.io", "*.gcr.io", "*-docker.pkg.dev", "docker.*.rep.pkg.dev")),
    ("acr", ("*.azurecr.io", "*.azurecr.cn", "*.azurecr.us")),
]

DEFAULT_SOURCE = "default (every host no route claims)"

# env preset -> its hosts; "gitlab" has none here: its host is $CI_REGISTRY at run time (gitlab_route)
PRESET_ROUTES: list[tuple[str, tuple[str, ...]]] = [
    ("ngc", ("nvcr.io",)), ("ghcr", ("ghcr.io",)), ("dockerhub", (HUB,)), ("quay", ("quay.io",)),
]
PRESET_SOURCE = "built-in env preset {0!r} (when its variables are unset: the static store)"


class Route:
    """The route chosen for a key: its spec and the pattern that matched (None for the default)."""

    __slots__ = ("pattern", "spec")

    def __init__(self, spec: RouteSpec, pattern: Pattern | None) -> None:
        self.spec = spec
        self.pattern = pattern

    @property
    def backend(self) -> str:
        """The backend name, e.g. `store`, `env`, `ecr`."""
        return self.spec.backend


_builtin: list[RouteSpec] = []


def builtin_routes() -> list[RouteSpec]:
    """The built-in cloud routes, without parameters (compiled once per process)."""
    if not _builtin:
        _builtin.extend(RouteSpec([compile_pattern(text) for text in texts], backend, {}, "built-in")
                        for backend, texts in BUILTIN)
    return _builtin


DEFAULT_ROUTE = RouteSpec([], "store", {}, DEFAULT_SOURCE)

_presets: list[RouteSpec] = []


def preset_routes() -> list[RouteSpec]:
    """The fixed env-preset routes (compiled once per process); see gitlab_route for the GitLab one."""
    if not _presets:
        _presets.extend(RouteSpec([compile_pattern(text) for text in texts], "env", {"preset": preset},
                                  PRESET_SOURCE.format(preset))
                        for preset, texts in PRESET_ROUTES)
    return _presets


def gitlab_route() -> RouteSpec | None:
    """The GitLab CI preset's route, for the host `$CI_REGISTRY` names (`host` or `host:port`); None when it is
    unset or is not a plain host."""
    named = os.environ.get("CI_REGISTRY", "").strip().lower()
    if "://" in named:
        named = named.split("://", 1)[1]
    named = named.rstrip("/")
    if not named or "*" in named or "/" in named:
        return None
    try:
        pattern = compile_pattern(named)
    except ValueError:
        return None
    return RouteSpec([pattern], "env", {"preset": "gitlab"},
                     "built-in env preset 'gitlab' for $CI_REGISTRY (when its variables are unset: the static store)")


def all_presets() -> list[RouteSpec]:
    """The env-preset routes in force: the GitLab one first (an explicit host), then the fixed ones."""
    gitlab = gitlab_route()
    return ([gitlab] if gitlab else []) + preset_routes()


def _layers(config: Config) -> tuple[list[RouteSpec], ...]:
    return config.routes, config.system, builtin_routes()


def all_routes(config: Config) -> list[tuple[Pattern, RouteSpec]]:
    """Every (pattern, route) pair in precedence order: most specific first, the user's routes file before the
    system-wide ones before built-ins; then the env presets, which only take what no other route claims."""
    pairs = [(p, spec, origin, n) for origin, specs in enumerate(_layers(config))
             for n, spec in enumerate(specs) for p in spec.patterns]
    pairs.sort(key=lambda item: (tuple(-v for v in item[0].specificity()), item[2], item[3]))
    return [(p, spec) for p, spec, _, _ in pairs] + [(p, spec) for spec in all_presets() for p in spec.patterns]


def _hosts(key: RegistryKey) -> tuple[str, ...]:
    host = key.host or ""
    if key.port is None and host in HUB_ALIASES and host != HUB:
        return (host, HUB)  # Docker Hub: a route for docker.io takes every spelling of it
    return (host,)


def _best(key: RegistryKey, layers: tuple[list[RouteSpec], ...]) -> Route | None:
    best: tuple[tuple[int, ...], Pattern, RouteSpec] | None = None
    names = _hosts(key)
    for origin, specs in enumerate(layers):
        for spec in specs:
            for pattern in spec.patterns:
                if any(pattern.matches(name, key.port) for name in names):
                    rank = (*pattern.specificity(), -origin)
                    if best is None or rank > best[0]:
                        best = (rank, pattern, spec)
    return Route(best[2], best[1]) if best is not None else None


def route_for(key: RegistryKey, config: Config) -> Route:
    """The route for `key`."""
    if key.host is None:
        return Route(DEFAULT_ROUTE, None)
    return (_best(key, _layers(config)) or _best(key, (all_presets(),))
            or Route(DEFAULT_ROUTE, None))
