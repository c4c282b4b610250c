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
from .cabundle import requests_cafile
from .oauth_http import TIMEOUT_S, TokenHttpError, json_field, post, post_form, secret_endpoint

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


def sts_exchange(url: str, audience: str, subject_token: str, subject_token_type: str, scopes: list[str], *,
                 lifetime_required: bool = False, timeout: float = TIMEOUT_S) -> tuple[str, float]:
    """(federated access token, lifetime in seconds) from an RFC 8693 exchange at Google's STS `url`.

    The form google-auth's `sts.Client.exchange_token` posts, field for field (google_fast answers for
    external_account files with it). An `expires_in` Google left out is ASSUMED_LIFETIME_S, or with
    `lifetime_required` an error, as google-auth's external_account credentials have it; a string is read as
    an integer, as google-auth does.
    """
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "audience": audience,
            "scope": " ".join(scopes), "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "subject_token": subject_token, "subject_token_type": subject_token_type}
    what = "Google STS token exchange"
    body = post_form(url, form, what, (subject_token,), timeout=timeout, cafile=requests_cafile())
    token = json_field(body, "access_token", what)
    doc = fastjson.loads(body)
    lifetime = expires_in(doc.get("expires_in") if isinstance(doc, dict) else None, what)
    if lifetime is None:
        if lifetime_required:
            raise TokenHttpError(f"{what}: the answer has no expires_in")
        return token, ASSUMED_LIFETIME_S
    return token, lifetime


def expires_in(value: object, what: str) -> float | None:
    """An OAuth answer's `expires_in` in seconds (None if absent); a JSON string is read as an integer, as
    google-auth does ("Some services do not respect the OAUTH2.0 RFC"); anything else is TokenHttpError."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return float(int(value))
        except ValueError:
            raise TokenHttpError(f"{what}: the answer's expires_in is not a number") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TokenHttpError(f"{what}: the answer's expires_in is not a number")


def _sts(params: dict[str, object], pod: PodIdentity, scopes: list[str]) -> tuple[str, float]:
    url = secret_endpoint(str(params.get("sts_endpoint") or STS_ENDPOINT), "the route's sts_endpoint")
    token, lifetime = sts_exchange(url, str(params["workload_identity_provider"]), pod.token,
                                   "urn:ietf:params:oauth:token-type:jwt", scopes)
    return token, lifetime if lifetime > 0 else ASSUMED_LIFETIME_S


def _rfc3339(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def iam_url(base: str, account: str) -> str:
    """The IAM Credentials `generateAccessToken` URL of `account` under `base` (IAM_ENDPOINT or a route's)."""
    from .http1 import percent_encode

    if "/" in account or not account.strip():
        raise TokenHttpError(f"{account!r} is not a Google service account e-mail")
    return f"{base}/v1/projects/-/serviceAccounts/{percent_encode(account, safe='@')}:generateAccessToken"


def _iam_url(params: dict[str, object], account: str) -> str:
    base = secret_endpoint(str(params.get("iam_endpoint") or IAM_ENDPOINT), "the route's iam_endpoint")
    return iam_url(base, account)


def impersonate(url: str, bearer: str, account: str, scopes: list[str], *,
                lifetime_s: int = IMPERSONATION_LIFETIME_S, timeout: float = TIMEOUT_S) -> tuple[str, float]:
    """(access token, expiry in epoch seconds) of `account` from IAM's generateAccessToken at `url`, asked with
    the `bearer` token: the scopes and lifetime google-auth's impersonated_credentials ask for."""
    import json

    data = json.dumps({"scope": scopes, "lifetime": f"{lifetime_s}s"}).encode("utf-8")
    what = f"impersonation of {account}"
    body = post(url, data, {"Content-Type": "application/json", "Authorization": f"Bearer {bearer}"},
                what, (bearer,), timeout=timeout, cafile=requests_cafile())
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
    token, expires = impersonate(iam, federated, account, scopes)
    return Token(USERNAME, token, expires, started)
