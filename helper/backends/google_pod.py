"""A pod's own Google access token: its Kubernetes service-account token exchanged at Google's STS.

What GKE's `auth-provider-gcp` does in its KEP-4412 mode, and what google-auth's `identity_pool`
credentials do with a token file (../shared/FLEET.md §1.5), by hand: two small requests do not need
google-auth's imports, and the token comes from the request, not a file.

1. `POST {sts_endpoint}` (default https://sts.googleapis.com/v1/token), RFC 8693 token exchange:
   the route's `workload_identity_provider` as the audience (a workload identity pool provider,
   `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`, or GKE's
   `identitynamespace:PROJECT.svc.id.goog:PROVIDER`), the pod's token as a JWT subject token. The answer is a
   federated access token for the pod's principal, usable directly where IAM grants that principal access.
2. With a Google service account to act as (the service account's `iam.gke.io/gcp-service-account`
   annotation, else the route's `impersonate`): `POST {iam_endpoint}/v1/projects/-/serviceAccounts/SA:
   generateAccessToken` with the federated token, for that account's token (1 hour).

The endpoints are route parameters for Private Service Connect (`sts-xyz.p.googleapis.com`) and for tests;
https only, or http to loopback. Errors carry Google's `error` and description, never a token.
"""

from __future__ import annotations

from .. import fastjson
from ..tokens import Token, now
from .oauth_http import TokenHttpError, json_field, post, post_form, secret_endpoint

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..pod import PodIdentity

STS_ENDPOINT = "https://sts.googleapis.com/v1/token"
IAM_ENDPOINT = "https://iamcredentials.googleapis.com"
USERNAME = "oauth2accesstoken"
IMPERSONATION_LIFETIME_S = 3600
ASSUMED_LIFETIME_S = 1800.0  # an answer whose lifetime Google did not say is kept for half an hour


def service_account(params: dict[str, object], pod: PodIdentity) -> str:
    """The Google service account the pod acts as: its annotation, else the route's `impersonate`; "" for none."""
    from ..pod import GCP_SERVICE_ACCOUNT

    return pod.annotation(GCP_SERVICE_ACCOUNT) or str(params.get("impersonate") or "")


def plan(params: dict[str, object], pod: PodIdentity) -> str | None:
    """What a pod asks as on this route (provider and service account), or None: no provider, no pod identity."""
    provider = params.get("workload_identity_provider")
    if not provider:
        return None
    # the endpoints too: a token another STS minted is another identity's, whatever it claims
    return (f"gcp-provider={provider}|service-account={service_account(params, pod)}"
            f"|sts={params.get('sts_endpoint') or ''}|iam={params.get('iam_endpoint') or ''}")


def _sts(params: dict[str, object], pod: PodIdentity, scopes: list[str]) -> tuple[str, float]:
    url = secret_endpoint(str(params.get("sts_endpoint") or STS_ENDPOINT), "the route's sts_endpoint")
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "audience": str(params["workload_identity_provider"]), "scope": " ".join(scopes),
            "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "subject_token": pod.token}
    body = post_form(url, form, "Google STS token exchange", (pod.token,))
    token = json_field(body, "access_token", "Google STS token exchange")
    doc = fastjson.loads(body)
    lifetime = doc.get("expires_in") if isinstance(doc, dict) else None
    ok = isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool) and lifetime > 0
    return token, float(lifetime) if ok else ASSUMED_LIFETIME_S  # type: ignore[arg-type]


def _rfc3339(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _iam_url(params: dict[str, object], account: str) -> str:
    from urllib.parse import quote

    if "/" in account or not account.strip():
        raise TokenHttpError(f"{account!r} is not a Google service account e-mail")
    base = secret_endpoint(str(params.get("iam_endpoint") or IAM_ENDPOINT), "the route's iam_endpoint")
    return f"{base}/v1/projects/-/serviceAccounts/{quote(account, safe='@')}:generateAccessToken"


def _impersonate(url: str, federated: str, account: str, scopes: list[str]) -> tuple[str, float]:
    import json

    data = json.dumps({"scope": scopes, "lifetime": f"{IMPERSONATION_LIFETIME_S}s"}).encode("utf-8")
    what = f"impersonation of {account}"
    body = post(url, data, {"Content-Type": "application/json", "Authorization": f"Bearer {federated}"},
                what, (federated,))
    token = json_field(body, "accessToken", what)
    try:
        expires = _rfc3339(json_field(body, "expireTime", what))
    except ValueError:
        raise TokenHttpError(f"{what}: the answer's expireTime is not a time") from None
    return token, expires


def pod_token(params: dict[str, object], pod: PodIdentity, scopes: list[str]) -> Token:
    """The pod's access token: the STS exchange, then the service account's token when it names one."""
    started = now()
    account = service_account(params, pod)
    iam = _iam_url(params, account) if account else ""  # checked before the pod's token is sent anywhere
    federated, lifetime = _sts(params, pod, scopes)
    if not account:
        return Token(USERNAME, federated, started + lifetime, started)
    token, expires = _impersonate(iam, federated, account, scopes)
    return Token(USERNAME, token, expires, started)
