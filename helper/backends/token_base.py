"""What every token-refreshing backend shares: the cache round trip, failures answered as not-found.

A subclass says what a token is for (`target`), who asks (`who`: the identity and the files it was read
from, one function, so that the cache key and the files an answer rests on always agree), how to fetch a
token (`fetch`, where its SDK is imported) and how to describe itself to `resolve`. A cloud failure is
logged (SWITCHBOARD_DEBUG=1 or SWITCHBOARD_LOG) and answered with the exact not-found, so Docker goes on
anonymously and Podman says "unauthorized", as with amazon-ecr-credential-helper.
"""

from __future__ import annotations

import time

from .. import log
from ..cache import TokenCache, get_token
from ..errors import TokenUnavailable
from ..fsutil import signature
from ..hosts import RegistryKey
from ..tokens import Token
from .base import Backend, Basis, Credentials, Rows, Signed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..pod import PodIdentity
    from ..route import RouteSpec

FETCH_DEADLINE_S = 30.0  # no cloud call, retries included, may hold a pull longer than this


class Identity:
    """Who asks for a token: the identity part of its cache key, and the files that named it.

    `name` never holds a secret (digests of key ids and refresh tokens, never the values). `files` are
    (path, signature) pairs taken when each file was read (`fsutil.read_signed`): an answer that rests on
    them stands only while they are unchanged. An identity read from nothing local (an instance or
    container role, a metadata server) is "ambient": its own name, so it never shares an entry with one
    that a file or a variable named.
    """

    __slots__ = ("files", "name", "repeatable")

    def __init__(self, name: str, files: Signed = (), repeatable: bool = True) -> None:
        self.name = name
        self.files = files
        # False: something that named it cannot be compared later (a secret value, a path through other
        # variables), so an answer for it is never repeated outside this call (Credentials.basis is None)
        self.repeatable = repeatable

    def changed(self) -> bool:
        """Whether a file it was read from has changed since (compared where a signature was taken)."""
        return any(sig is not None and signature(path) != sig for path, sig in self.files)

    def __repr__(self) -> str:
        return f"Identity({self.name!r}, files={[path for path, _ in self.files]})"


class TokenBackend(Backend):
    """A backend whose secrets are short-lived tokens minted from a cloud identity."""

    kind = "token"

    def __init__(self, spec: RouteSpec, cache: TokenCache | None, pod: PodIdentity | None = None) -> None:
        self.spec = spec
        self.cache = cache
        self.pod = pod  # the pulling pod's service account (kubelet plugin, KEP-4412); None: the node's identity

    def target(self, key: RegistryKey) -> str:
        """What the token is for (a registry, a region, scopes): the part of the cache key that is not who asks."""
        raise NotImplementedError

    def who(self, key: RegistryKey) -> Identity:
        """Who asks, read from the environment and local files now (cheap: this runs on every cache hit)."""
        raise NotImplementedError

    def cache_key(self, key: RegistryKey, who: Identity | None = None) -> str:
        """Backend, route, target and identity: the same identity on the same route shares a token."""
        who = self.who(key) if who is None else who
        return "|".join(part for part in (self.kind, self.spec.source, self.target(key), who.name) if part)

    def server(self, key: RegistryKey) -> str:
        """The registry the token is for, as `list` shows it."""
        return key.hostport or key.raw

    def fetch(self, key: RegistryKey) -> Token:
        """Mint a new token (network). Raise anything on failure: it becomes a not-found."""
        raise NotImplementedError

    def pod_plan(self, key: RegistryKey) -> str | None:
        """With a pod's service account (`self.pod`): what this route would ask the cloud as, readable and
        never a secret (a role, a service account, a client id), or None when the route has nothing that
        names a per-pod identity and answers with the node's, as without a pod. The default: None."""
        return None

    def fetch_for_pod(self, key: RegistryKey, pod: PodIdentity) -> Token:
        """Mint a token for the pod's own cloud identity (`pod_plan` named it), with its service-account token."""
        raise NotImplementedError

    def _who(self, key: RegistryKey) -> Identity:
        """`who`, or the pod's service account when the route will ask as the pod: never the node's entry."""
        if self.pod is not None:
            plan = self.pod_plan(key)
            if plan is not None:
                return Identity(self.pod.key(plan), (), repeatable=False)
        return self.who(key)

    def identity(self, key: RegistryKey) -> Rows:
        """For `resolve`: which identity would be used (never a secret)."""
        return []

    def caching(self) -> bool:
        """Whether this backend's tokens go through the cache."""
        return True

    def deadline(self) -> float:
        """Seconds a whole fetch may take, retries included: the bound on a cold `get`."""
        return FETCH_DEADLINE_S

    def _bounded_fetch(self, key: RegistryKey) -> Token:
        # Socket timeouts bound each read, not a server that trickles a byte at a time: the fetch runs in
        # a daemon thread and is abandoned at the deadline (the process exits right after answering).
        import threading

        box: dict[str, object] = {}

        pod = self.pod if self.pod is not None and self.pod_plan(key) is not None else None

        def work() -> None:
            try:
                box["token"] = self.fetch(key) if pod is None else self.fetch_for_pod(key, pod)
            except BaseException as exc:
                box["error"] = exc

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        worker.join(self.deadline())
        if worker.is_alive():
            raise TimeoutError(f"no {self.kind} token within {self.deadline():g} s")
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        token = box["token"]
        assert isinstance(token, Token)
        return token

    def get(self, key: RegistryKey) -> Credentials:
        cache = self.cache if self.caching() else None
        try:
            who = self._who(key)
            cache_key = self.cache_key(key, who)
            token = get_token(cache, cache_key, self.server(key), lambda: self._fetch_for(key, who), self.deadline())
        except Exception as exc:  # any cloud failure is a not-found; the reason goes to the log
            reason = " ".join(f"{self.kind} token for {key.hostport or key.raw} failed: {type(exc).__name__}: "
                              f"{exc}".split())
            reason = self.pod.scrub(reason) if self.pod is not None else reason
            log.log(reason)
            raise TokenUnavailable(reason) from None
        if cache is None:  # no cache, no repeated answers: every get asks the cloud, as the user chose
            return Credentials(token.username, token.secret, token.fresh_until(), expires_at=token.expires_at)
        basis = Basis(who.files, lambda: cache.entry_holding(cache_key, token)) if who.repeatable else None
        return Credentials(token.username, token.secret, token.fresh_until(), basis, token.expires_at)

    def _fetch_for(self, key: RegistryKey, who: Identity) -> Token:
        try:
            token = self._bounded_fetch(key)
        except Exception as exc:
            if self.pod is None:
                raise
            # every caller logs the failure (the cache's failed advisory refresh too): never with a pod's token
            raise RuntimeError(self.pod.scrub(f"{type(exc).__name__}: {exc}")) from None
        # the SDK read the identity's files again: if they changed since `who` read them, the token may be
        # another identity's, and caching it under this key would serve it to the wrong one
        if who.changed():
            raise RuntimeError("the credentials files changed while a token was fetched; ask again")
        return token

    def describe(self, key: RegistryKey) -> Rows:
        rows = list(self.identity(key))
        try:
            cache_key = self.cache_key(key)
        except Exception as exc:
            return [*rows, ("token", f"cannot be requested: {exc}")]
        if not self.caching() or self.cache is None:
            return [*rows, ("cache", "disabled")]
        rows.append(("cache key", cache_key))
        cached = self.cache.read(cache_key)
        if cached is None:
            rows.append(("cached token", "none (the next get requests one)"))
        else:
            when = "no expiry" if cached.expires_at is None else time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(cached.expires_at))
            rows.append(("cached token", f"{cached.state(self.cache.clock())}, expires {when}"))
        return rows
