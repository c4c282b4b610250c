"""A GCP token without google-auth, for the two credential files a CI job usually holds.

google-auth costs a cold `get` about 200 ms before its first request (../shared/FLEET.md §8.1): ~160 ms of
imports (`google.oauth2.service_account` pulls in `requests`, `urllib3`, `pyasn1`, `rsa`, all of
`cryptography.hazmat.primitives.serialization`) and ~50 ms for OpenSSL 3's RSA key check on every load
(`RSA_check_key`; google-auth's `_cryptography_rsa` cannot skip it). What a token request needs is one JWT
signed with RS256 and one or two form POSTs, so for these files the helper does it by hand:

* `service_account` key files: the JWT assertion google-auth's `service_account.Credentials` makes for a token
  request, byte for byte (header `{"typ": "JWT", "alg": "RS256", "kid": private_key_id}`; claims iat, exp =
  iat + 3600, iss, aud, scope, where aud is google-auth's constant https://oauth2.googleapis.com/token, not the
  token_uri; `json.dumps` spacing and key order; PKCS#1 v1.5 signatures are deterministic, so the whole
  assertion is equal: tests/test_google_fast.py), posted as the jwt-bearer grant to the file's `token_uri`.
  The key is loaded with `unsafe_skip_rsa_key_validation=True` only from a file the user owns (st_uid ==
  euid) that neither group nor others can write, the case pyca/cryptography documents the flag for (a key the
  user made or downloaded herself): a key someone else could have planted or edited is validated as
  google-auth would. A route's `impersonate` is then IAM's generateAccessToken, asked with an `iam`-scoped
  token, as google-auth's impersonated_credentials does.
* `external_account` (workload identity federation) files whose subject token comes from a file (text, or
  JSON with `subject_token_field_name`) or a URL (with `headers`): google-auth's identity_pool read of the
  subject token, then the STS exchange (the file's `audience`, `subject_token_type`, `token_url`) and the
  file's optional `service_account_impersonation_url` (+ `token_lifetime_seconds`), in google_pod's code.

Everything else returns None and stays on google-auth, which then also gives its own error: authorized_user
and impersonated_service_account files, executable-, AWS- and certificate-sourced external accounts, client
authentication (`client_id`), workforce pools, another universe domain, an external account with a route's
`impersonate`, the metadata server, and any file that does not look exactly like what is handled here (a
missing field, a token URL that is neither https nor loopback http). So a file takes this path only where the
answer is the one google-auth would give: the same requests, the same token and expiry.

The service account's token request is retried as google-auth's `_client.jwt_grant` retries it: three
attempts in all, after an answer `_client._can_retry` calls retryable (HTTP 500, 503, 504, 408, 429, or the
OAuth error internal_failure, server_error or temporarily_unavailable), waiting 1 s then 2 s (±10 %), within
the fetch's time budget; a connection error is not retried (google-auth lets the transport's raise).
Differences kept on purpose: the STS exchange and IAM calls are not retried (google-auth's are not either,
apart from its transport), redirects are refused, and a URL-sourced subject token is fetched without a
proxy (oauth_http.get_local: the source is a local metadata endpoint). Imports: `cryptography`'s Rust
binding, `padding` and `hashes` (not `serialization`: see pem_loader), `ssl` and oauth_http's `http1` (no
proxy) or urllib (a proxy); never json, google, requests or urllib3.
"""

from __future__ import annotations

import os
import time

from .. import fastjson, log
from ..fsutil import read_signed, read_with_stat
from ..tokens import Token, now
from . import google_pod
from .cabundle import requests_cafile
from .google_identity import credential_source
from .google_pod import expires_in, iam_url, impersonate, sts_exchange
from .oauth_http import RefusedAnswer, TokenHttpError, get_local, json_field, post_form, printable_url, secret_endpoint

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

USERNAME = "oauth2accesstoken"
ASSUMED_LIFETIME_S = 1800.0  # gcp's: an answer whose expiry Google did not say
JWT_LIFETIME_S = 3600  # google-auth's _DEFAULT_TOKEN_LIFETIME_SECS for the assertion
IMPERSONATION_LIFETIME_S = 3600  # google-auth's impersonated_credentials default
DEFAULT_UNIVERSE = "googleapis.com"
IAM_SCOPE = "https://www.googleapis.com/auth/iam"  # what google-auth gives the source of an impersonation
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# the assertion's aud: google-auth (2.x service_account._GOOGLE_OAUTH2_TOKEN_ENDPOINT) names Google's token endpoint
# whatever the file's token_uri, which is only where the assertion is posted
JWT_AUDIENCE = "https://oauth2.googleapis.com/token"
# google-auth's retry of a token request (oauth2/_client.py _can_retry, auth/_exponential_backoff.py defaults)
RETRY_STATUS = frozenset({500, 503, 504, 408, 429})  # google.auth.transport.DEFAULT_RETRYABLE_STATUS_CODES
RETRY_ERRORS = frozenset({"internal_failure", "server_error", "temporarily_unavailable"})
ATTEMPTS = 3
FIRST_WAIT_S, WAIT_MULTIPLIER, JITTER = 1.0, 2.0, 0.1


class FastTokenError(TokenHttpError):
    """The fast path could not mint a token; the message says which step and why, never a token."""


class Deadline:
    """The per-request timeout: `per_request_s`, and never past the fetch's budget."""

    def __init__(self, per_request_s: float, budget_s: float) -> None:
        self.per_request_s = per_request_s
        self.ends = time.monotonic() + budget_s

    def timeout(self) -> float:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise FastTokenError("the time budget for one token is spent")
        return min(self.per_request_s, left)


def _str(doc: dict[str, object], name: str) -> str | None:
    value = doc.get(name)
    return value if isinstance(value, str) and value else None


def _sendable(url: str | None) -> bool:
    """Whether a secret may go to `url` (https, or http to loopback): anything else stays with google-auth."""
    if not url:
        return False
    try:
        secret_endpoint(url, "URL")
    except TokenHttpError:
        return False
    return True


def _b64(data: bytes) -> str:
    import binascii

    return binascii.b2a_base64(data, newline=False).decode("ascii").translate(
        str.maketrans("+/", "-_")).rstrip("=")


# ---- which path ---------------------------------------------------------------------------------------------


def plan(doc: object, impersonate_target: str | None) -> str | None:
    """"service_account" or "external_account" if this parsed credentials file takes the fast path, else None."""
    if not isinstance(doc, dict):
        return None
    if doc.get("universe_domain", DEFAULT_UNIVERSE) != DEFAULT_UNIVERSE:
        return None  # google-auth signs its own JWT (no token request) in other universes
    kind = doc.get("type")
    if kind == "service_account":
        ok = (_str(doc, "client_email") and _str(doc, "private_key") and _sendable(_str(doc, "token_uri"))
              and isinstance(doc.get("private_key_id", ""), (str, type(None))))
        return "service_account" if ok else None
    if kind == "external_account" and not impersonate_target and _external_ok(doc):
        return "external_account"
    return None


def _external_ok(doc: dict[str, object]) -> bool:
    if not (_str(doc, "audience") and _str(doc, "subject_token_type")):
        return False
    if any(doc.get(name) for name in ("client_id", "client_secret", "workforce_pool_user_project")):
        return False
    if not _sendable(_str(doc, "token_url")):  # google-auth has no default here: it fails without one
        return False
    source = doc.get("credential_source")
    if not isinstance(source, dict) or set(source) - {"file", "url", "headers", "format"}:
        return False  # executable, environment_id (AWS), certificate, or anything unknown
    if bool(_str(source, "file")) == bool(_str(source, "url")):
        return False
    if _str(source, "url") and not printable_url(str(source["url"])):
        return False  # requests would percent-encode it; http1 sends URLs as they are
    headers = source.get("headers")
    if headers is not None and not (isinstance(headers, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
        return False
    fmt = source.get("format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type", "text") not in ("text", "json"):
            return False
        if fmt.get("type") == "json" and not _str(fmt, "subject_token_field_name"):
            return False
    url = doc.get("service_account_impersonation_url")
    if url is not None and not (isinstance(url, str) and _sendable(url) and _target(url)):
        return False
    options = doc.get("service_account_impersonation")
    if options is not None:
        if not isinstance(options, dict):
            return False
        lifetime = options.get("token_lifetime_seconds")
        if lifetime is not None and (not isinstance(lifetime, int) or isinstance(lifetime, bool)):
            return False
    return True


def _target(url: str) -> str | None:
    """The service account an impersonation URL names, as google-auth's `service_account_email` parses it."""
    start, end = url.rfind("/"), url.find(":generateAccessToken")
    if start == -1 or end == -1 or start >= end:
        return None
    return url[start + 1:end] or None


# ---- the fetch ----------------------------------------------------------------------------------------------


def fetch(scopes: list[str], impersonate_target: str | None, per_request_s: float,
          budget_s: float) -> Token | None:
    """The token for the current credentials file if it takes the fast path (see the module docstring), else
    None (google-auth's turn). FastTokenError or TokenHttpError when it does and fails."""
    kind, where = credential_source()
    if kind == "metadata":
        return None
    data, info = read_with_stat(where)
    if data is None or info is None:
        return None  # missing or unreadable: google-auth says so in its words
    try:
        doc = fastjson.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    path = plan(doc, impersonate_target)
    if path is None or not isinstance(doc, dict):
        kind_name = doc.get("type") if isinstance(doc, dict) else None
        log.log(f"gcp: google-auth path for {kind} {where} (type {kind_name or 'unknown'})")
        return None
    deadline = Deadline(per_request_s, budget_s)
    started = now()
    if path == "service_account":
        owned = _owned(info)
        log.log(f"gcp: fast path for {kind} {where} (service_account, key "
                f"{'loaded without validation: a file you own' if owned else 'validated: not only yours'})")
        token, expires = _service_account(doc, scopes, impersonate_target, owned, deadline)
    else:
        source = doc.get("credential_source")
        log.log(f"gcp: fast path for {kind} {where} (external_account, subject token from "
                f"{'a file' if isinstance(source, dict) and _str(source, 'file') else 'a URL'})")
        token, expires = _external_account(doc, scopes, deadline)
    return Token(USERNAME, token, expires if expires is not None else started + ASSUMED_LIFETIME_S, started)


def _owned(info: os.stat_result) -> bool:
    """Whether the key file is the user's alone: hers (euid), writable by nobody else."""
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and info.st_uid == geteuid() and not info.st_mode & 0o022


# ---- service_account ----------------------------------------------------------------------------------------


def pem_loader() -> Callable[..., object]:
    """cryptography's `load_pem_private_key`, without importing `serialization`.

    The public name is an alias of the Rust binding's function (cryptography 39 to 50, serialization/base.py);
    importing it through the `serialization` package also imports its SSH module, ~10 ms of a ~75 ms `get`.
    A cryptography whose binding moved gets the public import.
    """
    try:
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl

        loader: Callable[..., object] = rust_openssl.keys.load_pem_private_key
    except (ImportError, AttributeError):  # pragma: no cover - another cryptography
        from cryptography.hazmat.primitives import serialization

        loader = serialization.load_pem_private_key
    return loader


def assertion(doc: dict[str, object], scopes: list[str], issued_at: int, trusted: bool) -> str:
    """The signed JWT google-auth's service_account.Credentials posts for a token (see the module docstring)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    pem = str(doc["private_key"]).encode("utf-8")
    load = pem_loader()
    try:  # the flag only for a file that is the user's alone (fetch: _owned)
        key = load(pem, None, unsafe_skip_rsa_key_validation=True) if trusted else load(pem, None)
    except Exception as exc:  # ValueError, TypeError, UnsupportedAlgorithm: the name only, never the key
        raise FastTokenError(f"the private_key does not load: {type(exc).__name__}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise FastTokenError("the private_key is not an RSA key")
    header: dict[str, object] = {"typ": "JWT", "alg": "RS256"}
    if doc.get("private_key_id") is not None:
        header["kid"] = doc["private_key_id"]
    claims = {"iat": issued_at, "exp": issued_at + JWT_LIFETIME_S, "iss": doc["client_email"],
              "aud": JWT_AUDIENCE, "scope": " ".join(scopes)}
    # fastjson.dumps_flat is json.dumps's text for these flat objects, without importing json
    signing_input = (f"{_b64(fastjson.dumps_flat(header).encode('utf-8'))}."
                     f"{_b64(fastjson.dumps_flat(claims).encode('utf-8'))}")
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _with_retries(send: Callable[[], bytes], deadline: Deadline) -> bytes:
    """`send()`, again after a retryable refusal as google-auth retries a token request (module docstring)."""
    wait = FIRST_WAIT_S
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return send()
        except RefusedAnswer as exc:
            import random  # only here: a retry is rare, and random costs an import

            retryable = exc.status in RETRY_STATUS or any(code in RETRY_ERRORS for code in exc.codes)
            pause = random.uniform(wait * (1 - JITTER), wait * (1 + JITTER))  # noqa: S311 - a back-off, not a secret
            if attempt == ATTEMPTS or not retryable or deadline.ends - time.monotonic() < pause:
                raise
            log.log(f"gcp: {exc}; retrying in {pause:.1f} s")
            time.sleep(pause)
            wait *= WAIT_MULTIPLIER
    raise AssertionError("unreachable")


def _issued_at() -> int:
    """The assertion's iat: whole seconds, as google-auth's `datetime_to_secs(utcnow())` (tests fix it)."""
    return int(time.time())


def _service_account(doc: dict[str, object], scopes: list[str], target: str | None, trusted: bool,
                     deadline: Deadline) -> tuple[str, float | None]:
    signed = assertion(doc, [IAM_SCOPE] if target else scopes, _issued_at(), trusted)
    what = "service account token request"
    body = _with_retries(lambda: post_form(str(doc["token_uri"]), {"assertion": signed, "grant_type": JWT_GRANT},
                                           what, (signed,), timeout=deadline.timeout(), cafile=requests_cafile()),
                         deadline)
    token = json_field(body, "access_token", what)
    doc_answer = fastjson.loads(body)
    lifetime = expires_in(doc_answer.get("expires_in") if isinstance(doc_answer, dict) else None, what)
    if target:
        return impersonate(iam_url(google_pod.IAM_ENDPOINT, target), token, target, scopes,
                           lifetime_s=IMPERSONATION_LIFETIME_S, timeout=deadline.timeout())
    return token, time.time() + lifetime if lifetime is not None else None


# ---- external_account ---------------------------------------------------------------------------------------


def subject_token(source: dict[str, object], deadline: Deadline) -> str:
    """The subject token as google-auth's identity_pool reads it: the file's text (universal newlines, not
    stripped) or the URL's body, or the JSON field the `format` names."""
    fmt = source.get("format")
    field = fmt.get("subject_token_field_name") if isinstance(fmt, dict) and fmt.get("type") == "json" else None
    path = _str(source, "file")
    if path:
        data, sig = read_signed(path)
        if data is None:
            raise FastTokenError(f"the subject token file {path!r} "
                                 f"{'was not found' if sig == '-' else 'is unreadable or not a regular file'}")
        location = path
        try:
            text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            raise FastTokenError(f"the subject token file {path!r} is not UTF-8") from None
    else:
        url = str(source["url"])
        location = url.split("?", 1)[0]
        headers = source.get("headers")
        status, _, body = get_local(url, dict(headers) if isinstance(headers, dict) else {},
                                    "the subject token URL", (), timeout=deadline.timeout(),
                                    cafile=requests_cafile())
        if status != 200:
            raise FastTokenError(f"Unable to retrieve Identity Pool subject token: {location} answered HTTP {status}")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise FastTokenError(f"the subject token from {location} is not UTF-8") from None
    token: object = text
    if field:
        try:
            parsed = fastjson.loads(text)
        except ValueError:
            parsed = None
        token = parsed.get(field) if isinstance(parsed, dict) else None
        if token is None:
            raise FastTokenError(f"Unable to parse subject_token from JSON file '{location}' using key '{field}'")
    if not token:
        raise FastTokenError("Missing subject_token in the credential_source file")
    if not isinstance(token, str):
        raise FastTokenError(f"the subject_token in '{location}' is not a string")
    return token


def _external_account(doc: dict[str, object], scopes: list[str], deadline: Deadline) -> tuple[str, float]:
    source = doc["credential_source"]
    if not isinstance(source, dict):  # plan() checked it
        raise FastTokenError("the credential_source is not an object")
    subject = subject_token(source, deadline)
    url = doc.get("service_account_impersonation_url")
    target = _target(url) if isinstance(url, str) else None
    federated, lifetime = sts_exchange(
        str(doc["token_url"]), str(doc["audience"]), subject, str(doc["subject_token_type"]),
        [IAM_SCOPE] if target else scopes, lifetime_required=True, timeout=deadline.timeout())
    if not (isinstance(url, str) and target):
        return federated, time.time() + lifetime
    options = doc.get("service_account_impersonation")
    asked = options.get("token_lifetime_seconds") if isinstance(options, dict) else None
    return impersonate(url, federated, target, scopes, lifetime_s=int(asked or IMPERSONATION_LIFETIME_S),
                       timeout=deadline.timeout())
