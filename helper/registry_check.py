"""Does a registry accept these credentials? The check `login` makes before it stores (as `docker login` does).

`check(host, username, secret, insecure, timeout)` sends `GET /v2/` to the registry and answers its challenge:
`Basic` by repeating the request with the credentials, `Bearer` by fetching a token from the challenge's realm
(`GET realm?service=S&scope=S&account=USER` with Basic credentials, the distribution token spec) and repeating the
request with it. It never raises and never logs; no result, message or exception text carries the secret.

Transport rules:
* https, verified against the system CA bundle (OpenSSL reads `SSL_CERT_FILE` / `SSL_CERT_DIR`, which is how a
  private CA is trusted). Plain http only for a loopback host (after an https attempt that found no TLS server,
  as Docker does for its default-insecure 127.0.0.0/8) or with `insecure` (then TLS is not verified either, and
  plain http is tried when https fails, Docker's `insecure-registries` behaviour).
* Credentials go only to the registry itself and to the realm its challenge names, the realm over https (http
  only when it is a loopback host, or with `insecure`). Redirects are never followed (a 3xx is an error).
* Plain http and loopback requests never go through a proxy (a proxy would see the credentials in clear).

Only `login` (and later `doctor --registry`) imports this module; never a `get`.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from . import hosts

# Docker Hub's API lives on registry-1.docker.io, whatever spelling the key uses.
HUB_API = "registry-1.docker.io"
MAX_BODY = 1024 * 1024  # a token answer larger than this is not one

OK = "ok"  # the registry accepted the credentials
ANONYMOUS = "anonymous"  # /v2/ answered 200 without asking for credentials
REFUSED = "refused"  # 401 (or 403) with the credentials
UNREACHABLE = "unreachable"  # no answer: DNS, connection, timeout, TLS
ERROR = "error"  # an answer that is not a registry's (404 on /v2/, 500, a redirect, a bad challenge)


@dataclass(frozen=True)
class Result:
    """What the check found. `detail` is one short phrase, safe to print (never a secret)."""

    outcome: str
    detail: str
    status: int | None = None
    scheme: str | None = None  # the endpoint that answered: "https" or "http"
    auth: str | None = None  # "basic" or "bearer" when a challenge was answered

    @property
    def accepted(self) -> bool:
        return self.outcome in (OK, ANONYMOUS)


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def api_authority(raw: str) -> str | None:
    """The `host[:port]` whose /v2/ a key names (Docker Hub's spellings: registry-1.docker.io), or None."""
    key = hosts.parse(raw.strip())
    if key.host is None:
        return None
    name = key.host.lower()
    if name in hosts.HUB_ALIASES and key.port is None:
        return HUB_API
    if ":" in name:  # an IPv6 literal
        name = f"[{name.strip('[]')}]"
    return name if key.port is None else f"{name}:{key.port}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: object, code: int, msg: str, headers: object,
                         newurl: str) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


class _Answer:
    def __init__(self, status: int, headers: list[str], body: bytes) -> None:
        self.status = status
        self.challenges = headers
        self.body = body


class _Client:
    def __init__(self, insecure: bool, timeout: float, secrets: tuple[str, ...]) -> None:
        self.insecure = insecure
        self.timeout = timeout
        self.secrets = secrets
        context = ssl.create_default_context()  # system bundle; SSL_CERT_FILE / SSL_CERT_DIR via OpenSSL
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        https = urllib.request.HTTPSHandler(context=context)
        self.direct = urllib.request.build_opener(urllib.request.ProxyHandler({}), https, _NoRedirect())
        self.proxied = urllib.request.build_opener(https, _NoRedirect())  # proxies from the environment

    def get(self, url: str, authorization: str | None = None) -> _Answer:
        """One GET, no redirects; an HTTP error status is an answer, a transport failure raises OSError."""
        parts = urllib.parse.urlsplit(url)
        request = urllib.request.Request(url, method="GET")  # noqa: S310 - http(s) only, checked by the caller
        request.add_header("User-Agent", "docker-credential-switchboard")
        if authorization is not None:
            request.add_unredirected_header("Authorization", authorization)
        opener = self.direct if parts.scheme == "http" or is_loopback(parts.hostname or "") else self.proxied
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return _Answer(int(response.status), response.headers.get_all("WWW-Authenticate") or [],
                               response.read(MAX_BODY + 1))
        except urllib.error.HTTPError as exc:
            with exc:
                return _Answer(int(exc.code), exc.headers.get_all("WWW-Authenticate") or [], b"")

    def why(self, exc: BaseException) -> str:
        """A transport failure in a few words, scrubbed of the secrets (they are never in a URL, but be sure)."""
        reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, ssl.SSLCertVerificationError):
            text = f"TLS certificate not trusted ({reason.verify_message}); trust its CA with SSL_CERT_FILE"
        elif isinstance(reason, TimeoutError) or "timed out" in str(reason):
            text = f"no answer within {self.timeout:g} s"
        elif isinstance(reason, OSError) and reason.strerror:
            text = reason.strerror
        else:
            text = str(reason) or type(reason).__name__
        for secret in self.secrets:
            if secret and secret in text:
                text = text.replace(secret, "<secret>")
        return text.splitlines()[0][:200] if text else type(reason).__name__


_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="..."` -> ("bearer", {"realm": ..., "service": ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3) or "").replace('\\"', '"')
              for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


def _basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")


def check(host: str, username: str, secret: str, insecure: bool = False, timeout: float = 10.0) -> Result:
    """Whether the registry `host` (a key: `ghcr.io`, `127.0.0.1:5000`, `https://index.docker.io/v1/`) accepts
    `username`/`secret`. Never raises; never logs."""
    try:
        return _check(host, username, secret, insecure, timeout)
    except Exception as exc:  # the check reports, it never raises (and never with the secret)
        return Result(ERROR, f"the check failed ({type(exc).__name__})")


def _check(host: str, username: str, secret: str, insecure: bool, timeout: float) -> Result:
    authority = api_authority(host)
    if authority is None:
        return Result(ERROR, "not a registry host name")
    client = _Client(insecure, timeout, (secret, _basic(username, secret)[6:]))
    loopback = is_loopback(urllib.parse.urlsplit(f"//{authority}").hostname or "")
    schemes = ["https", "http"] if loopback or insecure else ["https"]
    answer: _Answer | None = None
    scheme = "https"
    failure = ""
    for scheme in schemes:
        try:
            answer = client.get(f"{scheme}://{authority}/v2/")
            break
        except (OSError, ValueError) as exc:
            failure = client.why(exc)
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            # fall back to http only when https found no TLS server (not on an untrusted certificate)
            no_tls_server = isinstance(reason, ssl.SSLError) and not isinstance(reason, ssl.SSLCertVerificationError)
            if not (no_tls_server or insecure):
                break
    if answer is None:
        return Result(UNREACHABLE, failure)
    base = f"{scheme}://{authority}/v2/"
    if answer.status == 200:
        return Result(ANONYMOUS, "GET /v2/ answered 200 without credentials", 200, scheme)
    if answer.status != 401:
        return _unexpected(answer.status, scheme)
    challenges = [parse_challenge(h) for h in answer.challenges]
    basic = next((p for s, p in challenges if s == "basic"), None)
    bearer = next((p for s, p in challenges if s == "bearer"), None)
    try:
        if bearer is not None:
            return _bearer(client, base, scheme, bearer, username, secret, insecure)
        if basic is not None:
            again = client.get(base, _basic(username, secret))
            return _final(again.status, scheme, "basic")
    except (OSError, ValueError) as exc:
        return Result(UNREACHABLE, client.why(exc), scheme=scheme)
    return Result(ERROR, "GET /v2/ answered 401 without a Basic or Bearer challenge", 401, scheme)


def _final(status: int, scheme: str, auth: str) -> Result:
    if status == 200:
        return Result(OK, f"accepted ({auth})", status, scheme, auth)
    if status in (401, 403):
        return Result(REFUSED, f"refused ({status})", status, scheme, auth)
    return _unexpected(status, scheme, auth)


def _unexpected(status: int, scheme: str, auth: str | None = None) -> Result:
    if 300 <= status < 400:
        return Result(ERROR, f"GET /v2/ answered a redirect ({status}), not followed", status, scheme, auth)
    return Result(ERROR, f"GET /v2/ answered {status}: is this a registry?", status, scheme, auth)


def _bearer(client: _Client, base: str, scheme: str, params: dict[str, str], username: str, secret: str,
            insecure: bool) -> Result:
    realm = params.get("realm", "")
    parts = urllib.parse.urlsplit(realm)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return Result(ERROR, "the Bearer challenge names no http(s) realm", 401, scheme, "bearer")
    if parts.scheme == "http" and not (insecure or is_loopback(parts.hostname)):
        return Result(ERROR, f"the token realm {parts.scheme}://{parts.netloc} is plain http: credentials are "
                             "sent to it over https only (--insecure allows it)", 401, scheme, "bearer")
    query = [(name, params[name]) for name in ("service", "scope") if params.get(name)]
    query.append(("account", username))
    joined = "&".join(filter(None, (parts.query, urllib.parse.urlencode(query))))
    url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, joined, ""))
    answer = client.get(url, _basic(username, secret))
    if answer.status in (401, 403):
        return Result(REFUSED, f"refused by the token service ({answer.status})", answer.status, scheme, "bearer")
    if answer.status != 200:
        return Result(ERROR, f"the token service answered {answer.status}", answer.status, scheme, "bearer")
    try:
        doc = json.loads(answer.body[:MAX_BODY])
    except ValueError:
        doc = None
    token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
        return Result(ERROR, "the token service answered 200 without a token", 200, scheme, "bearer")
    again = client.get(base, f"Bearer {token}")
    return _final(again.status, scheme, "bearer")
