"""The four operations over the router: which backend answers, and the static-store fallback.

Rules:
* `get`: the route's backend answers first; when it has nothing, the static store does (a secret a user
  stored for that host with `docker login` still works). Route `none` is always not-found.
* `store`: a `helper` route stores into that helper; every other route stores into the static store,
  so nothing a user sends is ever refused or lost (no "not implemented" as the cloud helpers answer).
* `erase`: the same place `store` wrote to; erasing nothing succeeds.
* `list`: the static store's entries; never fails, never fetches anything.
"""

from __future__ import annotations

from . import log
from .backends import registry
from .backends.base import Backend, Credentials
from .backends.store import StaticStore, open_store
from .config import Config
from .config import load_all as load_config
from .errors import CredentialsNotFound, TokenUnavailable
from .hosts import RegistryKey
from .route import RouteSpec
from .router import Route, route_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .pod import PodIdentity


def _forget_fast_records() -> None:
    from . import fastpath  # store and erase only: a get never imports it without a launcher

    fastpath.forget_all()


class Switchboard:
    """One helper invocation's view of the configuration and the static store (opened lazily)."""

    def __init__(self, config: Config | None = None, static: StaticStore | None = None,
                 pod: PodIdentity | None = None) -> None:
        self.config = config if config is not None else load_config()
        self._static = static
        # the service account of the pod a kubelet asks for (KEP-4412); token routes that name a per-pod
        # identity ask as it (TokenBackend.pod_plan), everything else answers as it would without a pod
        self.pod = pod

    @property
    def static(self) -> StaticStore:
        """The static store (keychain or encrypted file)."""
        if self._static is None:
            self._static = open_store(self.config.store_kind)
        return self._static

    def route(self, key: RegistryKey) -> Route:
        """The route for `key`."""
        return route_for(key, self.config)

    def backend(self, spec: RouteSpec) -> Backend:
        """The backend object for a route, built by its kind's row in the backend registry.

        An unknown kind is a ConfigError naming the kinds (the routes file refuses it first): no fall-through.
        """
        return registry.build(spec, self)

    def get(self, key: RegistryKey) -> Credentials:
        """Credentials for `key`, or CredentialsNotFound."""
        return self.answer(key)[0]

    def answer(self, key: RegistryKey, store_key: RegistryKey | None = None) -> tuple[Credentials, Route | None]:
        """Credentials for `key` and the route whose backend gave them (None: the static store did), or
        CredentialsNotFound: a TokenUnavailable with its reason when the route's token backend failed and
        the static store had nothing either. `store_key`: what the static store looks up instead of `key`
        (the kubelet asks route backends for the registry, as Docker does, and the store for the repository,
        whose entries may be per namespace)."""
        route = self.route(key)
        if route.backend == "none":
            log.log(f"get {key.raw}: route {route.pattern.text if route.pattern else ''} ({route.spec.source}) "
                    "is anonymous: not-found")
            raise CredentialsNotFound()
        failed: TokenUnavailable | None = None
        if route.backend != "store":
            try:
                return self.backend(route.spec).get(key), route
            except CredentialsNotFound as exc:
                failed = exc if isinstance(exc, TokenUnavailable) else None
                log.log(f"get {key.raw}: {route.backend} route has nothing; trying the static store")
        key = key if store_key is None else store_key
        try:
            return self.static.get(key), None
        except CredentialsNotFound:
            looked = ", ".join(dict.fromkeys([key.raw, *key.candidates()]))
            log.log(f"get {key.raw}: the static store has no entry (looked up: {looked}): not-found")
            if failed is not None:
                raise failed from None
            raise

    def _writer(self, key: RegistryKey) -> Backend:
        route = self.route(key)
        return self.backend(route.spec) if route.backend == "helper" else self.static

    def store(self, key: RegistryKey, creds: Credentials) -> None:
        """Save `creds` for `key`."""
        self._writer(key).store(key, creds)
        _forget_fast_records()

    def erase(self, key: RegistryKey) -> None:
        """Forget `key` (and its aliases); nothing to forget is fine."""
        self._writer(key).erase(key)
        _forget_fast_records()

    def list(self) -> dict[str, str]:
        """Stored keys and their usernames, plus registries with a valid cached token. Never fetches."""
        found: dict[str, str] = {}
        try:
            from . import tokens
            from .cache import TokenCache

            cache = TokenCache()
            for server, _, token in cache.entries():
                if token.state(cache.clock()) != tokens.EXPIRED:
                    found[server] = token.username
        except Exception as exc:  # list must never fail (PROTOCOL.md §2.4); say why in the log
            log.log(f"list: token cache: {type(exc).__name__}: {exc}")
        try:
            found.update(self.static.list())
        except Exception as exc:
            log.log(f"list: {type(exc).__name__}: {exc}")
        return found
