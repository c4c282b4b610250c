"""An Entra ID (Azure AD) access token for Azure Resource Manager, for the ACR backend's exchange.

The token comes from the first credential the environment offers, in azure-identity's
`DefaultAzureCredential` order:

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

`make_plan` picks the credential without a network call (it names the cache entry); `entra_token` fetches,
through `oauth_http`.
"""

from __future__ import annotations

import os
import sys

from .base import Rows
from .oauth_http import TokenHttpError, get_local, json_field, post_form, problem, secret_endpoint, split_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..pod import PodIdentity

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
TENANT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")


def cloud_of(host: str) -> str:
    """The registry suffix naming the host's cloud; the public cloud for any other host a route sends here."""
    for suffix in CLOUDS:
        if host.endswith("." + suffix):
            return suffix
    return "azurecr.io"


def authority_for(host: str) -> str:
    """`AZURE_AUTHORITY_HOST` (https://, or http:// on loopback only), else the registry cloud's login host."""
    raw = os.environ.get("AZURE_AUTHORITY_HOST", "").strip()
    if not raw:
        return CLOUDS[cloud_of(host)][0]
    if "://" not in raw:
        raw = "https://" + raw
    return secret_endpoint(raw, "AZURE_AUTHORITY_HOST")


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
    if value and not set(value) <= TENANT_CHARS:
        raise TokenHttpError(f"{origin} {value!r} is not a tenant id (letters, digits, '-' and '.')")
    return value


def make_plan(params: dict[str, object], host: str) -> Plan:
    """The credential for `host` from the route's parameters and the environment; TokenHttpError when incomplete."""
    env = os.environ
    tenant = _tenant(str(params["tenant"]), "route tenant") if params.get("tenant") else \
        _tenant(env.get("AZURE_TENANT_ID", "").strip(), "AZURE_TENANT_ID")
    client_id = str(params.get("client_id") or env.get("AZURE_CLIENT_ID", "").strip())
    scope = str(params.get("scope") or CLOUDS[cloud_of(host)][1])
    if env.get("AZURE_CLIENT_SECRET") or env.get("AZURE_FEDERATED_TOKEN_FILE"):
        kind = CLIENT_SECRET if env.get("AZURE_CLIENT_SECRET") else FEDERATED
        variable = "AZURE_CLIENT_SECRET" if kind == CLIENT_SECRET else "AZURE_FEDERATED_TOKEN_FILE"
        if not tenant:
            raise TokenHttpError(f"{variable} is set but no tenant: set AZURE_TENANT_ID or the route's tenant")
        if not client_id:
            raise TokenHttpError(f"{variable} is set but no client id: set AZURE_CLIENT_ID or the route's client_id")
        return Plan(kind, tenant, client_id, authority_for(host), scope)
    endpoint = env.get("IDENTITY_ENDPOINT", "").strip()
    if endpoint and env.get("IDENTITY_HEADER"):
        mi_kind = APP_SERVICE
    elif endpoint and env.get("IMDS_ENDPOINT"):
        mi_kind = ARC
        if client_id:
            raise TokenHttpError("Azure Arc supports only the system-assigned identity: unset AZURE_CLIENT_ID "
                           "and the route's client_id")
    else:
        mi_kind = IMDS
        base = (env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "").strip() or IMDS_AUTHORITY).rstrip("/")
        endpoint = base + IMDS_PATH
    split_url(endpoint, "the managed-identity endpoint")
    return Plan(MANAGED_IDENTITY, tenant, client_id, "", scope, mi_kind, endpoint)


def _arc_key_file(challenge: str | None) -> str:
    """The key file Azure Arc's 401 names, if it is where the agent keeps them (it is read as a password)."""
    _, _, path = (challenge or "").partition("Basic realm=")
    if not path:
        raise TokenHttpError("Azure Arc: the endpoint's 401 names no key file")
    if sys.platform.startswith("linux"):
        folder = ARC_KEY_DIR_LINUX
    elif sys.platform == "win32":
        folder = os.path.join(os.environ.get("PROGRAMDATA", r"C:\ProgramData"), "AzureConnectedMachineAgent", "Tokens")
    else:
        raise TokenHttpError(f"Azure Arc managed identity is not supported on {sys.platform}")
    if os.path.dirname(os.path.abspath(path)) != os.path.abspath(folder) or not path.endswith(".key"):
        raise TokenHttpError(f"Azure Arc: refusing key file {path!r} (only *.key files in {folder})")
    try:
        if os.path.getsize(path) > ARC_KEY_MAX_BYTES:
            raise TokenHttpError(f"Azure Arc: key file {path} is larger than {ARC_KEY_MAX_BYTES} bytes")
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except (OSError, UnicodeError) as exc:
        raise TokenHttpError(f"Azure Arc: cannot read key file {path} ({type(exc).__name__})") from None


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
        raise TokenHttpError(f"{what}: {plan.mi_endpoint} answered HTTP {status}{problem(body, secrets)}")
    return json_field(body, "access_token", what)


def pod_plan(params: dict[str, object], host: str, pod: PodIdentity) -> Plan | None:
    """A federated credential for the pod's service account, as the Azure plugin reads it: the client id from the
    `kubernetes.azure.com/acr-client-id` annotation, the tenant from `.../acr-tenant-id`, else the route's
    `tenant` or AZURE_TENANT_ID. None when the annotation names no client: the node's credential answers."""
    from ..pod import AZURE_CLIENT_ID, AZURE_TENANT_ID

    client_id = pod.annotation(AZURE_CLIENT_ID)
    if not client_id:
        return None
    tenant = (_tenant(pod.annotation(AZURE_TENANT_ID), f"annotation {AZURE_TENANT_ID}")
              or _tenant(str(params.get("tenant") or ""), "route tenant")
              or _tenant(os.environ.get("AZURE_TENANT_ID", "").strip(), "AZURE_TENANT_ID"))
    if not tenant:
        raise TokenHttpError(f"the service account names a client ({AZURE_CLIENT_ID}) but no tenant: annotate it "
                             f"with {AZURE_TENANT_ID}, or set the route's tenant")
    scope = str(params.get("scope") or CLOUDS[cloud_of(host)][1])
    return Plan(FEDERATED, tenant, client_id, authority_for(host), scope)


def entra_token(plan: Plan, assertion: str | None = None) -> str:
    """An Entra ID access token for `plan.scope`; `assertion`: a pod's service-account token to present as the
    federated client assertion instead of AZURE_FEDERATED_TOKEN_FILE's."""
    if plan.kind == MANAGED_IDENTITY:
        return _managed_identity_token(plan)
    form = {"grant_type": "client_credentials", "client_id": plan.client_id, "scope": plan.scope}
    if plan.kind == CLIENT_SECRET:
        form["client_secret"] = os.environ.get("AZURE_CLIENT_SECRET", "")
        secret = form["client_secret"]
    elif assertion is not None:
        secret = assertion
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        form["client_assertion"] = secret
    else:
        path = os.environ.get("AZURE_FEDERATED_TOKEN_FILE", "")
        try:
            with open(path, encoding="utf-8") as handle:  # fresh every time: the kubelet rotates it
                secret = handle.read().strip()
        except (OSError, UnicodeError) as exc:
            raise TokenHttpError(f"cannot read AZURE_FEDERATED_TOKEN_FILE {path} ({type(exc).__name__})") from None
        if not secret:
            raise TokenHttpError(f"AZURE_FEDERATED_TOKEN_FILE {path} is empty")
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        form["client_assertion"] = secret
    url = f"{plan.authority}/{plan.tenant}/oauth2/v2.0/token"
    body = post_form(url, form, f"Entra ID token ({plan.kind})", (secret,))
    return json_field(body, "access_token", "Entra ID token")
