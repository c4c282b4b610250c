"""Google Container Registry and Artifact Registry: an OAuth access token from Application Default Credentials.

The credentials come from the first of, in `google.auth.default()`'s order:

1. the file named by GOOGLE_APPLICATION_CREDENTIALS: a service-account key, a workload identity federation
   (`external_account`) configuration, gcloud user credentials or an impersonation file;
2. gcloud's ADC file (`gcloud auth application-default login`): `$CLOUDSDK_CONFIG/application_default_credentials.json`,
   else `~/.config/gcloud/...` (`%APPDATA%\\gcloud\\...` on Windows);
3. the GCE / GKE / Cloud Run metadata server (GCE_METADATA_HOST, GCE_METADATA_IP), found with one short ping.

A route may name a service account to `impersonate` (the token is then that account's, minted through the IAM
Credentials API) and the OAuth `scopes` (default: cloud-platform). For the kubelet plugin's per-pod identity
(KEP-4412) a route names its `workload_identity_provider` (and `sts_endpoint`, `iam_endpoint`): see google_pod.
The username is `oauth2accesstoken`, as GCR and Artifact Registry expect; one token serves every GCP host of the
route, so the cache key names the route and the identity, never a host.

The chain is walked here with google-auth's own loaders rather than by `google.auth.default()`, because default()
also looks up a project ID, which a registry token does not need: for gcloud user credentials it runs
`gcloud config config-helper` (with no timeout) and for workload identity federation it calls the Resource
Manager API. Every HTTP request is bounded (10 s each, 30 s for the whole fetch, a 1 s metadata ping, where
google-auth's requests default to 120 s). google-auth is imported only here, only when a token must be fetched,
and not at all for a service-account key or a file- or URL-sourced federation file: google_fast mints those
by hand, the same requests without google-auth's ~200 ms of imports and RSA key validation.
"""

from __future__ import annotations

import os
import time

from .. import fastjson, log
from ..errors import HelperError
from ..fsutil import read_signed
from ..hosts import RegistryKey
from ..tokens import Token, now
from .base import Rows
from .google_identity import CREDENTIALS_ENV, adc_path, credential_source, google_identity
from .token_base import Identity, TokenBackend

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..pod import PodIdentity

USERNAME = "oauth2accesstoken"
DEFAULT_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
REQUEST_TIMEOUT_S = 10.0  # each HTTP request (google-auth's default is 120 s)
FETCH_BUDGET_S = 30.0  # all requests of one fetch; retries after it fail at once (below cache.LOCK_WAIT_S)
PING_TIMEOUT_S = 1.0  # the metadata-server probe off GCP, where the address may not answer at all
IMPERSONATION_LIFETIME_S = 3600
ASSUMED_LIFETIME_S = 1800.0  # a token whose expiry Google did not say is kept for half an hour, not forever

DEFAULT_METADATA_IP = "169.254.169.254"


class GcpTokenError(HelperError):
    """google-auth could not mint a token; the message says why and which credentials, never a token."""


def _scopes(params: dict[str, object]) -> list[str]:
    raw = params.get("scopes")
    if isinstance(raw, list) and raw:
        return [str(scope) for scope in raw]
    return list(DEFAULT_SCOPES)


def _ping_timeout() -> float:
    try:
        return float(os.environ["GCE_METADATA_TIMEOUT"])  # google-auth's own knob, if the user set it
    except (KeyError, ValueError):
        return PING_TIMEOUT_S


def _cap(timeout: object, cap: float) -> object:
    """google-auth's timeout (a number, a (connect, read) pair or None) bounded by `cap`."""
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
        return min(float(timeout), cap)
    if isinstance(timeout, tuple) and timeout and all(isinstance(t, (int, float)) and t > 0 for t in timeout):
        return tuple(min(float(t), cap) for t in timeout)
    return cap


def _bounded_request(deadline: float) -> Any:
    """A google-auth requests transport whose every request ends by REQUEST_TIMEOUT_S and by `deadline`."""
    import google.auth.exceptions
    import google.auth.transport.requests

    # google-auth's functions are untyped: one Any here rather than an ignore on every call
    base: Any = google.auth.transport.requests.Request
    transport_error: Any = google.auth.exceptions.TransportError

    class BoundedRequest(base):  # type: ignore[misc]
        def __call__(self, url: str, method: str = "GET", body: object = None, headers: object = None,
                     timeout: object = None, **kwargs: object) -> object:
            left = deadline - time.monotonic()
            if left <= 0:
                raise transport_error(f"{method} {url}: the {FETCH_BUDGET_S:.0f} s budget for one token is spent")
            return super().__call__(url, method=method, body=body, headers=headers,
                                    timeout=_cap(timeout, min(REQUEST_TIMEOUT_S, left)), **kwargs)

    return BoundedRequest()


def _epoch(expiry: object) -> float | None:
    """google-auth's expiry (a naive UTC datetime) in epoch seconds."""
    from datetime import datetime, timezone

    if not isinstance(expiry, datetime):
        return None
    return (expiry if expiry.tzinfo else expiry.replace(tzinfo=timezone.utc)).timestamp()


_TOKEN_FIELDS = ("access_token", "accessToken", "id_token", "refresh_token")


def _reason(exc: Exception) -> str:
    """The exception for the log. google-auth puts the server's answer in its errors' arguments: an answer
    that carries a token (a 200 whose expiry did not parse) is left out, so the log never holds one."""
    parts = [str(arg) for arg in exc.args] or [str(exc)]
    kept = [part for part in parts if not any(field in part for field in _TOKEN_FIELDS)]
    return f"{type(exc).__name__}: {'; '.join(kept) or 'the answer held a token; details withheld'}"


def _no_credentials_message() -> str:
    return (f"no Google credentials: {CREDENTIALS_ENV} is not set, {adc_path()} does not exist (run "
            f"`gcloud auth application-default login`) and no metadata server answers at "
            f"{os.environ.get('GCE_METADATA_IP') or DEFAULT_METADATA_IP}")


_forwarding: list[bool] = []  # once per process


def _forward_google_logs() -> None:
    """google-auth's warnings (metadata server retries, ...) go to the switchboard log, never to stderr."""
    import logging

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log.log(f"google-auth: {record.getMessage()}")

    if not _forwarding:
        logging.getLogger("google.auth").addHandler(Forward(logging.WARNING))
        _forwarding.append(True)


def _mint(scopes: list[str], impersonate: str | None) -> Any:
    """Refreshed google-auth credentials for the current credential source."""
    import google.auth
    import google.auth.credentials

    auth: Any = google.auth  # untyped functions, as above
    _forward_google_logs()
    request = _bounded_request(time.monotonic() + FETCH_BUDGET_S)
    try:
        kind, where = credential_source()
        if kind == "metadata":
            import google.auth.compute_engine
            from google.auth.compute_engine import _metadata

            metadata: Any = _metadata
            # one short probe instead of google-auth's three 3-second ones with back-off (is_on_gce)
            if not metadata.ping(request, timeout=_ping_timeout(), retry_count=1):
                raise GcpTokenError(_no_credentials_message())
            credentials = auth.compute_engine.Credentials()
        else:
            # no scopes here: with scopes, an external_account file's loader looks up its project ID online
            credentials, _ = auth.load_credentials_from_file(where, request=request)
        credentials = auth.credentials.with_scopes_if_required(credentials, scopes)
        if impersonate:
            import google.auth.impersonated_credentials

            credentials = auth.impersonated_credentials.Credentials(
                source_credentials=credentials, target_principal=impersonate, target_scopes=scopes,
                lifetime=IMPERSONATION_LIFETIME_S)
        credentials.refresh(request)
        return credentials
    finally:
        request.session.close()


class GcpBackend(TokenBackend):
    """GCR (`gcr.io`, `*.gcr.io`) and Artifact Registry (`*-docker.pkg.dev`, `docker.*.rep.pkg.dev`)."""

    kind = "gcp"

    def _impersonate(self) -> str | None:
        target = self.spec.params.get("impersonate")
        return str(target) if target else None

    def target(self, key: RegistryKey) -> str:
        return f"scopes={','.join(sorted(set(_scopes(self.spec.params))))}"  # one token serves every GCP host

    def who(self, key: RegistryKey) -> Identity:
        who = google_identity()
        return Identity(f"{who.name}|impersonate={self._impersonate() or ''}", who.files)

    def pod_plan(self, key: RegistryKey) -> str | None:
        from .google_pod import plan

        return plan(self.spec.params, self.pod) if self.pod is not None else None

    def fetch_for_pod(self, key: RegistryKey, pod: PodIdentity) -> Token:
        from .google_pod import pod_token

        return pod_token(self.spec.params, pod, _scopes(self.spec.params))

    def fetch(self, key: RegistryKey) -> Token:
        import warnings

        from . import google_fast
        from .oauth_http import TokenHttpError

        try:  # a service-account key or a federation file without google-auth's 200 ms (google_fast)
            fast = google_fast.fetch(_scopes(self.spec.params), self._impersonate(), REQUEST_TIMEOUT_S,
                                     FETCH_BUDGET_S)
        except TokenHttpError as exc:
            kind, where = credential_source()
            # named as google-auth names a refused or unusable answer, so the log reads the same on both paths
            raise GcpTokenError(f"RefreshError: {exc} (credentials: {kind} {where})") from None
        if fast is not None:
            return fast
        started = now()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                warnings.simplefilter("ignore", DeprecationWarning)  # "prefer the specific loaders": ours to know
                try:
                    credentials = _mint(_scopes(self.spec.params), self._impersonate())
                finally:
                    for warning in caught:
                        log.log(f"google-auth warning: {warning.message}")
        except HelperError:
            raise
        except Exception as exc:
            kind, where = credential_source()
            raise GcpTokenError(f"{_reason(exc)} (credentials: {kind} {where})") from exc
        token = credentials.token
        if not isinstance(token, str) or not token:
            raise GcpTokenError("google-auth returned no access token")
        expires = _epoch(credentials.expiry)
        return Token(USERNAME, token, expires if expires is not None else started + ASSUMED_LIFETIME_S, started)

    def identity(self, key: RegistryKey) -> Rows:
        kind, where = credential_source()
        if kind == "metadata":
            source = f"the metadata server at {where} (no {CREDENTIALS_ENV}, no {adc_path()})"
        else:
            how = CREDENTIALS_ENV if kind == "file" else "gcloud application-default credentials"
            source = f"{where} ({how}{_describe_file(where)})"
        return [("google credentials", source),
                ("impersonate", self._impersonate() or "no (the credentials' own identity)"),
                ("scopes", " ".join(_scopes(self.spec.params))),
                ("username", USERNAME)]


def _describe_file(path: str) -> str:
    """`, type service_account, sa@project.iam.gserviceaccount.com` for `resolve`: the type and account, no secret."""
    data, sig = read_signed(path)  # never a plain open: a FIFO would hang `resolve`, /dev/zero never end
    if data is None:
        return ", does not exist" if sig == "-" else ", unreadable or not a regular file"
    try:
        doc = fastjson.loads(data)
    except (ValueError, UnicodeDecodeError):
        return ", not a JSON file"
    if not isinstance(doc, dict):
        return ", not a credentials file"
    text = f", type {doc.get('type') or 'unknown'}"
    email = doc.get("client_email")
    return text + (f", {email}" if isinstance(email, str) and email else "")
