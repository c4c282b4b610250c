"""Azure Container Registry: an Entra ID access token, exchanged at the registry for an ACR refresh token.

Step 1, an Entra ID (Azure AD) access token for Azure Resource Manager, from the first credential the
environment offers (a client secret, a federated token file, else a managed identity) at the registry cloud's
authority: see `entra`, which also says how a route's `tenant`, `client_id` and `scope` are used.

Step 2, as `az acr login` does: `POST https://<registry>/oauth2/exchange` with `grant_type=access_token`,
`service`, `tenant` and the access token answers `{"refresh_token": ...}`, which Docker uses as the password
of the user `00000000-0000-0000-0000-000000000000`. It lives 3 h (its JWT `exp` is read, unverified).
The exchange goes only to the host the anchored ACR route matched: never to a host named in a
`WWW-Authenticate` header or a redirect (redirects are refused), so a lookalike registry gets nothing.

Both steps are plain urllib, bounded, never retried, with secrets scrubbed from errors: see `oauth_http`.
Nothing network-related is imported until a token must be fetched: a cache hit imports no `urllib`,
`http.client` or `ssl`.
"""

from __future__ import annotations

from ..errors import HelperError
from ..hosts import RegistryKey
from ..jwtparts import segments
from ..tokens import Token, now
from .base import Rows
from .entra import TENANT_CHARS, Plan, authority_for, entra_token, make_plan, pod_plan
from .oauth_http import TokenHttpError, json_field, post_form
from .token_base import Identity, TokenBackend

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..pod import PodIdentity

# TokenHttpError (oauth_http) and authority_for (entra) are re-exported: callers know the backend's API as `acr`
__all__ = ["DEFAULT_LIFETIME_S", "USERNAME", "AcrBackend", "TokenHttpError", "authority_for", "exchange", "expiry",
           "jwt_claims"]

USERNAME = "00000000-0000-0000-0000-000000000000"  # az acr login's EMPTY_GUID: the password is a refresh token
DEFAULT_LIFETIME_S = 3 * 3600.0  # ACR refresh tokens live 3 h (when the JWT carries no readable `exp`)


def jwt_claims(token: str) -> dict[str, object]:
    """The payload of a JWT, unverified (only to read `exp` and `tid`); {} when it is not one."""
    found = segments(token)
    return found[1] if found is not None else {}


def expiry(refresh_token: str, obtained_at: float) -> float:
    """The refresh token's `exp`, else 3 h from `obtained_at`."""
    exp = jwt_claims(refresh_token).get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp > 0:
        return float(exp)
    return obtained_at + DEFAULT_LIFETIME_S


def exchange(hostport: str, service: str, tenant: str, access_token: str) -> str:
    """The ACR refresh token for an Entra access token: POST https://<hostport>/oauth2/exchange."""
    form = {"grant_type": "access_token", "service": service, "access_token": access_token}
    if tenant:
        form["tenant"] = tenant
    body = post_form(f"https://{hostport}/oauth2/exchange", form, "ACR token exchange", (access_token,))
    return json_field(body, "refresh_token", "ACR token exchange")


class AcrBackend(TokenBackend):
    """Azure Container Registry (every cloud), through the Entra ID -> ACR refresh-token exchange."""

    kind = "acr"

    def _target(self, key: RegistryKey) -> tuple[str, str]:
        """(host, host[:port]) the route matched: the only place the exchange is sent."""
        if key.host is None or key.hostport is None:
            raise TokenHttpError(f"{key.raw!r} does not name a registry host")
        return key.host, key.hostport

    def _plan(self, key: RegistryKey) -> Plan:
        return make_plan(self.spec.params, self._target(key)[0])

    def target(self, key: RegistryKey) -> str:
        return self._target(key)[1]

    def who(self, key: RegistryKey) -> Identity:
        # the credential kind, tenant, client id, authority and scope (entra.Plan): all from the route and
        # the environment, no file. A federated token file's or a client secret's content is the proof of
        # that identity, not the identity: rotating it keeps the entry.
        return Identity(self._plan(key).cache_identity())

    def pod_plan(self, key: RegistryKey) -> str | None:
        plan = pod_plan(self.spec.params, self._target(key)[0], self.pod) if self.pod is not None else None
        return None if plan is None else plan.cache_identity()

    def fetch_for_pod(self, key: RegistryKey, pod: PodIdentity) -> Token:
        plan = pod_plan(self.spec.params, self._target(key)[0], pod)
        assert plan is not None  # TokenBackend asks only after pod_plan named one
        return self._fetch(key, plan, pod.token)

    def fetch(self, key: RegistryKey) -> Token:
        return self._fetch(key, self._plan(key), None)

    def _fetch(self, key: RegistryKey, plan: Plan, assertion: str | None) -> Token:
        host, hostport = self._target(key)
        started = now()
        access_token = entra_token(plan, assertion)
        tenant = plan.tenant
        if not tenant:  # a managed identity's tenant, as the token says
            tid = jwt_claims(access_token).get("tid")
            tenant = tid if isinstance(tid, str) and tid and set(tid) <= TENANT_CHARS else ""
        refresh_token = exchange(hostport, host, tenant, access_token)
        return Token(USERNAME, refresh_token, expiry(refresh_token, started), started)

    def identity(self, key: RegistryKey) -> Rows:
        try:
            host, hostport = self._target(key)
            rows = self._plan(key).rows()
        except HelperError as exc:
            return [("azure credential", f"incomplete: {exc}")]
        return [*rows, ("exchange", f"https://{hostport}/oauth2/exchange (service {host})")]
