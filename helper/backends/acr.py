"""Azure Container Registry: an Entra ID access token, exchanged at the registry for an ACR refresh token.

Step 1, an Entra ID (Azure AD) access token for Azure Resource Manager, from the first credential the
environment offers, in azure-identity's `DefaultAzureCredential` order:

* client secret: `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_TENANT_ID`
  (`POST {authority}/{tenant}/oauth2/v2.0/token`, `grant_type=client_credentials`);
* federated token (AKS Workload Identity, GitHub Actions OIDC): `AZURE_FEDERATED_TOKEN_FILE` with
  `AZURE_CLIENT_ID` and `AZURE_TENANT_ID`; the file is read on every request (the kubelet rotates it) and
  sent as a `jwt-bearer` client assertion;
* managed identity: App Service, Functions and Container Apps (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`),
  Azure Arc (`IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`, with Arc's key-file challenge), else the instance
  metadata service (`http://169.254.169.254`, or `AZURE_POD_IDENTITY_AUTHORITY_HOST`); a user-assigned
  identity is chosen by `AZURE_CLIENT_ID` or the route's `client_id`.

The authority is `AZURE_AUTHORITY_HOST`, else the registry's cloud (`*.azurecr.io` public,
`*.azurecr.cn` Azure China, `*.azurecr.us` Azure Government). A route may set `tenant`, `client_id` and
`scope` (default: the cloud's ARM scope, e.g. `https://management.azure.com/.default`).

Step 2, as `az acr login` does: `POST https://<registry>/oauth2/exchange` with `grant_type=access_token`,
`service`, `tenant` and the access token answers `{"refresh_token": ...}`, which Docker uses as the password
of the user `00000000-0000-0000-0000-000000000000`. It lives 3 h (its JWT `exp` is read, unverified).
The exchange goes only to the host the anchored ACR route matched: never to a host named in a
`WWW-Authenticate` header or a redirect (redirects are refused), so a lookalike registry gets nothing.

Plain HTTP (urllib, http.client), not azure-identity or MSAL: they pull in `requests`, `msal`, `cryptography`
and `azure-core`, hundreds of milliseconds of imports and megabytes in every PyInstaller build, for what
is two or three form POSTs and a GET. urllib honours `https_proxy`/`no_proxy` and `SSL_CERT_FILE` (so a
corporate proxy and CA work); managed-identity endpoints are link-local or localhost and are called
without a proxy, as azure-identity does. Nothing network-related is imported until a token must be fetched:
a cache hit imports no `urllib`, `http.client` or `ssl`. Every call is bounded (2 s to reach a
managed-identity endpoint, 10 s per connect or read) and never retried: the person waiting on the pull
pays for every retry, and a failed refresh keeps serving a still-valid cached token.

Errors say which step failed and why (HTTP status, Entra's `error` and AADSTS description), with any
secret or token that was sent scrubbed from the text.
"""

from __future__ import annotations

import binascii
import os
import sys

from .. import NAME, __version__, fastjson
from ..errors import HelperError
from ..hosts import RegistryKey, split_hostport
from ..tokens import Token, now
from .base import Rows
from .token_base import TokenBackend

TYPE_CHECKING = False
if TYPE_CHECKING:
    import urllib.request
    from http.client import HTTPMessage
    from typing import IO

USERNAME = "00000000-0000-0000-0000-000000000000"  # az acr login's EMPTY_GUID: the password is a refresh token
TIMEOUT_S = 10.0  # per connect and per read
MI_CONNECT_TIMEOUT_S = 2.0  # reaching a managed-identity endpoint: off Azure, 169.254.169.254 often just hangs
DEFAULT_LIFETIME_S = 3 * 3600.0  # ACR refresh tokens live 3 h (when the JWT carries no readable `exp`)
MAX_BODY = 1 << 20

CLIENT_SECRET, FEDERATED, MANAGED_IDENTITY = "client-secret", "federated-token", "managed-identity"
IMDS, APP_SERVICE, ARC = "imds", "app-service", "arc"

# registry suffix -> (default authority, default scope)
CLOUDS: dict[str, tuple[str, str]] = {
    "azurecr.io": ("https://login.microsoftonline.com", "https://management.azure.com/.default"),
    "azurecr.cn": ("https://login.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default"),
    "azurecr.us": ("https://login.microsoftonline.us", "https://management.usgovcloudapi.net/.default"),
}
IMDS_AUTHORITY = "http://169.254.169.254"
IMDS_PATH = "/metadata/identity/oauth2/token"
# Azure Arc names a key file in its challenge; only files in the agent's folder are read (as azure-identity).
ARC_KEY_DIR_LINUX = "/var/opt/azcmagent/tokens"
ARC_KEY_MAX_BYTES = 4096
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_TENANT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")


class AcrError(HelperError):
    """A token request that failed or cannot be made. The message never carries a secret or token.

    A HelperError, so that a failed refresh inside the advisory window serves the still-valid token.
    """


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    flat = " ".join(text.split())
    return flat if len(flat) <= 300 else flat[:300] + "..."


def _b64url(part: str) -> bytes:
    text = part.replace("-", "+").replace("_", "/")
    return binascii.a2b_base64((text + "=" * (-len(text) % 4)).encode("ascii"))


def jwt_claims(token: str) -> dict[str, object]:
    """The payload of a JWT, unverified (only to read `exp` and `tid`); {} when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = fastjson.loads(_b64url(parts[1]))
    except (ValueError, UnicodeError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def expiry(refresh_token: str, obtained_at: float) -> float:
    """The refresh token's `exp`, else 3 h from `obtained_at`."""
    exp = jwt_claims(refresh_token).get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp > 0:
        return float(exp)
    return obtained_at + DEFAULT_LIFETIME_S


def cloud_of(host: str) -> str:
    """The registry suffix naming the host's cloud; the public cloud for any other host a route sends here."""
    for suffix in CLOUDS:
        if host.endswith("." + suffix):
            return suffix
    return "azurecr.io"


def _split_url(url: str, what: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path?query) of an http(s) URL without userinfo, or AcrError.

    By hand rather than urllib.parse: this runs on the cache-hit path (the cache key names the authority).
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise AcrError(f"{what} {url!r} must be an http(s) URL")
    rest = rest.split("#", 1)[0]
    cut = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0] or [len(rest)])
    netloc, target = rest[:cut], rest[cut:]
    split = split_hostport(netloc) if netloc and "@" not in netloc else None
    if split is None or split[0] in ("", "[]"):
        raise AcrError(f"{what} {url!r} must be an http(s) URL with a host and no user info")
    host, port = split
    host = host[1:-1] if host.startswith("[") else host
    return scheme, host.lower(), port, target if target.startswith("/") else "/" + target


def authority_for(host: str) -> str:
    """`AZURE_AUTHORITY_HOST` (https://, or http:// on loopback only), else the registry cloud's login host."""
    raw = os.environ.get("AZURE_AUTHORITY_HOST", "").strip()
    if not raw:
        return CLOUDS[cloud_of(host)][0]
    if "://" not in raw:
        raw = "https://" + raw
    raw = raw.rstrip("/")
    scheme, name, _, target = _split_url(raw, "AZURE_AUTHORITY_HOST")
    if "?" in target or "#" in raw:
        raise AcrError(f"AZURE_AUTHORITY_HOST {raw!r} must not have a query")
    if scheme == "http" and name not in _LOOPBACK:
        raise AcrError(f"AZURE_AUTHORITY_HOST {raw!r}: a client secret is only sent over https (http on loopback only)")
    return raw


class Plan:
    """Which credential would be used for a registry, and everything about it that is not a secret."""

    __slots__ = ("authority", "client_id", "kind", "mi_endpoint", "mi_kind", "scope", "tenant")

    def __init__(self, kind: str, tenant: str, client_id: str, authority: str, scope: str,
                 mi_kind: str = "", mi_endpoint: str = "") -> None:
        self.kind = kind
        self.tenant = tenant
        self.client_id = client_id
        self.authority = authority
        self.scope = scope
        self.mi_kind = mi_kind
        self.mi_endpoint = mi_endpoint

    def cache_identity(self) -> str:
        """The identity part of the cache key: credential kind, tenant, client id, scope; never a secret."""
        kind = self.kind if self.kind != MANAGED_IDENTITY else f"{self.kind}/{self.mi_kind}"
        where = f"authority={self.authority}|" if self.kind != MANAGED_IDENTITY else ""
        return f"{kind}|{where}tenant={self.tenant}|client_id={self.client_id}|scope={self.scope}"

    def rows(self) -> Rows:
        """For `resolve`."""
        if self.kind == CLIENT_SECRET:
            credential = "client secret (AZURE_CLIENT_SECRET)"
        elif self.kind == FEDERATED:
            credential = f"federated token file {os.environ.get('AZURE_FEDERATED_TOKEN_FILE', '')}"
        else:
            label = {IMDS: "instance metadata service", APP_SERVICE: "App Service / Container Apps endpoint",
                     ARC: "Azure Arc endpoint"}[self.mi_kind]
            credential = f"managed identity, {label} {self.mi_endpoint}"
        rows = [("azure credential", credential),
                ("tenant", self.tenant or "(not set; the token's own tenant)"),
                ("client id", self.client_id or ("(system-assigned identity)" if self.kind == MANAGED_IDENTITY
                                                 else "(not set)"))]
        if self.kind != MANAGED_IDENTITY:
            rows.append(("authority", self.authority))
        rows.append(("scope", self.scope))
        return rows


def _tenant(value: str, origin: str) -> str:
    if value and not set(value) <= _TENANT_CHARS:
        raise AcrError(f"{origin} {value!r} is not a tenant id (letters, digits, '-' and '.')")
    return value


def make_plan(params: dict[str, object], host: str) -> Plan:
    """The credential for `host` from the route's parameters and the environment; AcrError when incomplete."""
    env = os.environ
    tenant = _tenant(str(params["tenant"]), "route tenant") if params.get("tenant") else \
        _tenant(env.get("AZURE_TENANT_ID", "").strip(), "AZURE_TENANT_ID")
    client_id = str(params.get("client_id") or env.get("AZURE_CLIENT_ID", "").strip())
    scope = str(params.get("scope") or CLOUDS[cloud_of(host)][1])
    if env.get("AZURE_CLIENT_SECRET") or env.get("AZURE_FEDERATED_TOKEN_FILE"):
        kind = CLIENT_SECRET if env.get("AZURE_CLIENT_SECRET") else FEDERATED
        variable = "AZURE_CLIENT_SECRET" if kind == CLIENT_SECRET else "AZURE_FEDERATED_TOKEN_FILE"
        if not tenant:
            raise AcrError(f"{variable} is set but no tenant: set AZURE_TENANT_ID or the route's tenant")
        if not client_id:
            raise AcrError(f"{variable} is set but no client id: set AZURE_CLIENT_ID or the route's client_id")
        return Plan(kind, tenant, client_id, authority_for(host), scope)
    endpoint = env.get("IDENTITY_ENDPOINT", "").strip()
    if endpoint and env.get("IDENTITY_HEADER"):
        mi_kind = APP_SERVICE
    elif endpoint and env.get("IMDS_ENDPOINT"):
        mi_kind = ARC
        if client_id:
            raise AcrError("Azure Arc supports only the system-assigned identity: unset AZURE_CLIENT_ID "
                           "and the route's client_id")
    else:
        mi_kind = IMDS
        base = (env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "").strip() or IMDS_AUTHORITY).rstrip("/")
        endpoint = base + IMDS_PATH
    _split_url(endpoint, "the managed-identity endpoint")
    return Plan(MANAGED_IDENTITY, tenant, client_id, "", scope, mi_kind, endpoint)


# ---- HTTP: imported only when a token is fetched ------------------------------------------------------------


def _user_agent() -> str:
    return f"{NAME}/{__version__} python/{sys.version_info[0]}.{sys.version_info[1]}"


def _problem(body: bytes, secrets: tuple[str, ...]) -> str:
    """What an error body says: OAuth's error and description, or ACR's error list; never the raw body."""
    try:
        doc = fastjson.loads(body)
    except (ValueError, UnicodeError):
        return ""
    said: list[str] = []
    if isinstance(doc, dict):
        for name in ("error", "error_description", "message"):
            if isinstance(doc.get(name), str):
                said.append(doc[name])
        errors = doc.get("errors")
        for item in errors if isinstance(errors, list) else []:
            if isinstance(item, dict):
                said.append(": ".join(str(item[k]) for k in ("code", "message") if k in item))
    return f": {_scrub(' '.join(said), secrets)}" if said else ""


def _json_field(body: bytes, field: str, what: str) -> str:
    try:
        doc = fastjson.loads(body)
    except (ValueError, UnicodeError):
        raise AcrError(f"{what}: the answer is not JSON") from None
    value = doc.get(field) if isinstance(doc, dict) else None
    if not isinstance(value, str) or not value:
        raise AcrError(f"{what}: the answer has no {field}")
    return value


def _opener() -> urllib.request.OpenerDirector:
    """urllib with the environment's proxies and CA, and redirects refused (a token never follows one)."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                             headers: HTTPMessage, newurl: str) -> urllib.request.Request | None:
            return None  # the 3xx is then raised as an HTTPError

    return urllib.request.build_opener(NoRedirect)


def post_form(url: str, form: dict[str, str], what: str, secrets: tuple[str, ...]) -> bytes:
    """POST `form` to `url` (proxies honoured, no redirects, bounded); the 2xx body, else AcrError."""
    import http.client
    import urllib.error
    import urllib.parse
    import urllib.request

    shown = url.split("?", 1)[0]
    if not url.startswith(("https://", "http://")):
        raise AcrError(f"{what}: {shown} is not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked just above
        url, data=urllib.parse.urlencode(form).encode("ascii"), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
                 "User-Agent": _user_agent()})
    try:
        with _opener().open(request, timeout=TIMEOUT_S) as response:
            body: bytes = response.read(MAX_BODY)
            return body
    except urllib.error.HTTPError as exc:
        try:
            detail = _problem(exc.read(MAX_BODY), secrets)
        except (OSError, http.client.HTTPException):
            detail = ""
        finally:
            exc.close()
        raise AcrError(f"{what}: {shown} answered HTTP {exc.code}{detail}") from None
    except urllib.error.URLError as exc:
        raise AcrError(f"{what}: cannot reach {shown}: {_scrub(str(exc.reason), secrets)}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise AcrError(f"{what}: {shown}: {type(exc).__name__}: {_scrub(str(exc), secrets)}") from None


def get_local(url: str, headers: dict[str, str], what: str,
              secrets: tuple[str, ...]) -> tuple[int, str | None, bytes]:
    """GET a managed-identity endpoint directly (never through a proxy): (status, WWW-Authenticate, body)."""
    import http.client

    scheme, host, port, target = _split_url(url, what)
    kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    connection = kind(host, port, timeout=MI_CONNECT_TIMEOUT_S)
    try:
        connection.connect()
        if connection.sock is not None:
            connection.sock.settimeout(TIMEOUT_S)
        connection.request("GET", target, headers={**headers, "User-Agent": _user_agent()})
        response = connection.getresponse()
        return response.status, response.getheader("WWW-Authenticate"), response.read(MAX_BODY)
    except (OSError, http.client.HTTPException) as exc:
        raise AcrError(f"{what}: cannot reach {url.split('?', 1)[0]}: {type(exc).__name__}: "
                       f"{_scrub(str(exc), secrets)}") from None
    finally:
        connection.close()


def _arc_key_file(challenge: str | None) -> str:
    """The key file Azure Arc's 401 names, if it is where the agent keeps them (it is read as a password)."""
    _, _, path = (challenge or "").partition("Basic realm=")
    if not path:
        raise AcrError("Azure Arc: the endpoint's 401 names no key file")
    if sys.platform.startswith("linux"):
        folder = ARC_KEY_DIR_LINUX
    elif sys.platform == "win32":
        folder = os.path.join(os.environ.get("PROGRAMDATA", r"C:\ProgramData"), "AzureConnectedMachineAgent", "Tokens")
    else:
        raise AcrError(f"Azure Arc managed identity is not supported on {sys.platform}")
    if os.path.dirname(os.path.abspath(path)) != os.path.abspath(folder) or not path.endswith(".key"):
        raise AcrError(f"Azure Arc: refusing key file {path!r} (only *.key files in {folder})")
    try:
        if os.path.getsize(path) > ARC_KEY_MAX_BYTES:
            raise AcrError(f"Azure Arc: key file {path} is larger than {ARC_KEY_MAX_BYTES} bytes")
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except (OSError, UnicodeError) as exc:
        raise AcrError(f"Azure Arc: cannot read key file {path} ({type(exc).__name__})") from None


def _managed_identity_token(plan: Plan) -> str:
    from urllib.parse import urlencode

    resource = plan.scope[: -len("/.default")] if plan.scope.endswith("/.default") else plan.scope
    what = f"managed identity ({plan.mi_kind})"
    query: dict[str, str] = {"resource": resource}
    headers: dict[str, str] = {}
    secrets: tuple[str, ...] = ()
    if plan.mi_kind == APP_SERVICE:
        query["api-version"] = "2019-08-01"
        secret_header = os.environ.get("IDENTITY_HEADER", "")
        headers["X-IDENTITY-HEADER"] = secret_header
        secrets = (secret_header,)
    else:
        query["api-version"] = "2020-06-01" if plan.mi_kind == ARC else "2018-02-01"
        headers["Metadata"] = "true"
    if plan.client_id:
        query["client_id"] = plan.client_id
    url = plan.mi_endpoint + ("&" if "?" in plan.mi_endpoint else "?") + urlencode(query)
    status, challenge, body = get_local(url, headers, what, secrets)
    if plan.mi_kind == ARC and status == 401:
        key = _arc_key_file(challenge)
        secrets = (key,)
        status, _, body = get_local(url, {**headers, "Authorization": f"Basic {key}"}, what, secrets)
    if status != 200:
        raise AcrError(f"{what}: {plan.mi_endpoint} answered HTTP {status}{_problem(body, secrets)}")
    return _json_field(body, "access_token", what)


def _entra_token(plan: Plan) -> str:
    """An Entra ID access token for `plan.scope`."""
    if plan.kind == MANAGED_IDENTITY:
        return _managed_identity_token(plan)
    form = {"grant_type": "client_credentials", "client_id": plan.client_id, "scope": plan.scope}
    if plan.kind == CLIENT_SECRET:
        form["client_secret"] = os.environ.get("AZURE_CLIENT_SECRET", "")
        secret = form["client_secret"]
    else:
        path = os.environ.get("AZURE_FEDERATED_TOKEN_FILE", "")
        try:
            with open(path, encoding="utf-8") as handle:  # fresh every time: the kubelet rotates it
                secret = handle.read().strip()
        except (OSError, UnicodeError) as exc:
            raise AcrError(f"cannot read AZURE_FEDERATED_TOKEN_FILE {path} ({type(exc).__name__})") from None
        if not secret:
            raise AcrError(f"AZURE_FEDERATED_TOKEN_FILE {path} is empty")
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        form["client_assertion"] = secret
    url = f"{plan.authority}/{plan.tenant}/oauth2/v2.0/token"
    body = post_form(url, form, f"Entra ID token ({plan.kind})", (secret,))
    return _json_field(body, "access_token", "Entra ID token")


def exchange(hostport: str, service: str, tenant: str, access_token: str) -> str:
    """The ACR refresh token for an Entra access token: POST https://<hostport>/oauth2/exchange."""
    form = {"grant_type": "access_token", "service": service, "access_token": access_token}
    if tenant:
        form["tenant"] = tenant
    body = post_form(f"https://{hostport}/oauth2/exchange", form, "ACR token exchange", (access_token,))
    return _json_field(body, "refresh_token", "ACR token exchange")


class AcrBackend(TokenBackend):
    """Azure Container Registry (every cloud), through the Entra ID -> ACR refresh-token exchange."""

    kind = "acr"

    def _target(self, key: RegistryKey) -> tuple[str, str]:
        """(host, host[:port]) the route matched: the only place the exchange is sent."""
        if key.host is None or key.hostport is None:
            raise AcrError(f"{key.raw!r} does not name a registry host")
        return key.host, key.hostport

    def _plan(self, key: RegistryKey) -> Plan:
        return make_plan(self.spec.params, self._target(key)[0])

    def cache_key(self, key: RegistryKey) -> str:
        return f"acr|{self.spec.source}|{self._target(key)[1]}|{self._plan(key).cache_identity()}"

    def fetch(self, key: RegistryKey) -> Token:
        host, hostport = self._target(key)
        plan = self._plan(key)
        started = now()
        access_token = _entra_token(plan)
        tenant = plan.tenant
        if not tenant:  # a managed identity's tenant, as the token says
            tid = jwt_claims(access_token).get("tid")
            tenant = tid if isinstance(tid, str) and tid and set(tid) <= _TENANT_CHARS else ""
        refresh_token = exchange(hostport, host, tenant, access_token)
        return Token(USERNAME, refresh_token, expiry(refresh_token, started), started)

    def identity(self, key: RegistryKey) -> Rows:
        try:
            host, hostport = self._target(key)
            rows = self._plan(key).rows()
        except HelperError as exc:
            return [("azure credential", f"incomplete: {exc}")]
        return [*rows, ("exchange", f"https://{hostport}/oauth2/exchange (service {host})")]
