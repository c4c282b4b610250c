"""Map a registry key to its route: the most specific matching pattern wins, else the static store.

Built-in routes claim the cloud registries from the start (ECR in every partition, FIPS and dual-stack,
ECR Public, GCR and Artifact Registry, ACR). Routes from the routes file come first at equal
specificity, so a user can take any host back (`backend = "store"`, or `"none"` for anonymous).
Keys that do not name a host (userinfo, spaces, ...) and hosts with capitals or a trailing dot never
match a route: they go to the static store only.
"""

from __future__ import annotations

from .config import Config
from .hosts import RegistryKey
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


def all_routes(config: Config) -> list[tuple[Pattern, RouteSpec]]:
    """Every (pattern, route) pair in precedence order: most specific first, the routes file before built-ins."""
    pairs = [(p, spec, 0, n) for n, spec in enumerate(config.routes) for p in spec.patterns]
    pairs += [(p, spec, 1, n) for n, spec in enumerate(builtin_routes()) for p in spec.patterns]
    pairs.sort(key=lambda item: (tuple(-v for v in item[0].specificity()), item[2], item[3]))
    return [(p, spec) for p, spec, _, _ in pairs]


def route_for(key: RegistryKey, config: Config) -> Route:
    """The route for `key`."""
    if key.host is None:
        return Route(DEFAULT_ROUTE, None)
    best: tuple[tuple[int, ...], int, Pattern, RouteSpec] | None = None
    for origin, specs in ((0, config.routes), (1, None)):
        for spec in specs if specs is not None else builtin_routes():
            for pattern in spec.patterns:
                if pattern.matches(key.host, key.port):
                    rank = (*pattern.specificity(), -origin)
                    if best is None or rank > best[0]:
                        best = (rank, origin, pattern, spec)
    if best is None:
        return Route(DEFAULT_ROUTE, None)
    return Route(best[3], best[2])
