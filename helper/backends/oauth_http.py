"""The OAuth HTTP of the token backends that speak it by hand: ACR and Entra ID, a pod's Google token
exchange (`google_pod`) and the GCP fast path (`google_fast`). Bounded, redirect-refusing calls whose errors
carry no secret.

Plain HTTP, not azure-identity or MSAL: they pull in `requests`, `msal`, `cryptography` and `azure-core`,
hundreds of milliseconds of imports and megabytes in every PyInstaller build, for what is two or three form
POSTs and a GET. Where no proxy can apply the request goes out through `http1` (one exchange on a socket,
without http.client's and urllib's ~16 ms of imports); where one may, urllib makes it, and so honours
`https_proxy`/`no_proxy` (and on macOS and Windows the system's settings) as requests would. Both verify
with the ssl module's default (`SSL_CERT_FILE`, the system's), or the bundle the caller names. Managed-identity
endpoints are link-local or localhost and are called without a proxy, as azure-identity does. A POST over
plain http (allowed to a loopback authority only) or to a loopback host never goes through a proxy, whatever
`http_proxy` and `no_proxy` say: the proxy would read the client secret in clear. Nothing network-related is
imported until a token must be fetched: a cache hit imports no `urllib`, `http.client` or `ssl`. Every call is
bounded (2 s to reach a managed-identity endpoint, 10 s per connect or read) and never retried here: the
person waiting on the pull pays for every retry, and a failed refresh keeps serving a still-valid cached token.
A caller that stands in for an SDK retrying a refusal retries as that SDK does, from `RefusedAnswer`
(google_fast: google-auth's token request retries).

Errors say which step failed and why (HTTP status, Entra's `error` and AADSTS description), with any
secret or token that was sent scrubbed from the text.
"""

from __future__ import annotations

import sys

from .. import NAME, __version__, fastjson
from ..errors import HelperError
from ..hosts import split_hostport

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    import urllib.request
    from http.client import HTTPMessage
    from typing import IO

TIMEOUT_S = 10.0  # per connect and per read
MI_CONNECT_TIMEOUT_S = 2.0  # reaching a managed-identity endpoint: off Azure, 169.254.169.254 often just hangs
MAX_BODY = 1 << 20


class TokenHttpError(HelperError):
    """A token request that failed or cannot be made. The message never carries a secret or token.

    A HelperError, so that a failed refresh inside the advisory window serves the still-valid token.
    """


class RefusedAnswer(TokenHttpError):
    """The endpoint answered, with a status other than 2xx: `status`, and the OAuth `error` and
    `error_description` strings of its body ("" when absent), for a caller that retries as its SDK would."""

    def __init__(self, message: str, status: int, body: bytes) -> None:
        super().__init__(message)
        self.status = status
        self.codes = ("", "")
        try:
            doc = fastjson.loads(body)
        except (ValueError, UnicodeError):
            return
        if isinstance(doc, dict):
            error, description = doc.get("error"), doc.get("error_description")
            self.codes = (error if isinstance(error, str) else "", description if isinstance(description, str) else "")


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    flat = " ".join(text.split())
    return flat if len(flat) <= 300 else flat[:300] + "..."


def split_url(url: str, what: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path?query) of an http(s) URL without userinfo, or TokenHttpError.

    By hand rather than urllib.parse: this runs on the cache-hit path (the cache key names the authority).
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise TokenHttpError(f"{what} {url!r} must be an http(s) URL")
    if not printable_url(url):  # http.client refuses these too (a CR LF in a path would write headers)
        raise TokenHttpError(f"{what} {url!r} must be printable ASCII, without spaces")
    rest = rest.split("#", 1)[0]
    cut = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0] or [len(rest)])
    netloc, target = rest[:cut], rest[cut:]
    split = split_hostport(netloc) if netloc and "@" not in netloc else None
    if split is None or split[0] in ("", "[]"):
        raise TokenHttpError(f"{what} {url!r} must be an http(s) URL with a host and no user info")
    host, port = split
    host = host[1:-1] if host.startswith("[") else host
    return scheme, host.lower(), port, target if target.startswith("/") else "/" + target


def printable_url(url: str) -> bool:
    """Whether `url` is printable ASCII without spaces, as a request line needs it (no percent-encoding here)."""
    return all("!" <= c <= "~" for c in url)


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def secret_endpoint(url: str, what: str) -> str:
    """`url` without a trailing slash if a secret may be sent to it: https, or http to a loopback name only
    (a test server, a local proxy); else TokenHttpError naming `what`."""
    url = url.strip().rstrip("/")
    scheme, name, _, target = split_url(url, what)
    if "?" in target or "#" in url:
        raise TokenHttpError(f"{what} {url!r} must not have a query")
    if scheme == "http" and name not in LOOPBACK_NAMES:
        raise TokenHttpError(f"{what} {url!r}: a secret is only sent over https (http on loopback only)")
    return url


# ---- HTTP: imported only when a token is fetched ------------------------------------------------------------


def _user_agent() -> str:
    return f"{NAME}/{__version__} python/{sys.version_info[0]}.{sys.version_info[1]}"


def problem(body: bytes, secrets: tuple[str, ...]) -> str:
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


def json_field(body: bytes, field: str, what: str) -> str:
    """The non-empty string `field` of a JSON answer, else TokenHttpError."""
    try:
        doc = fastjson.loads(body)
    except (ValueError, UnicodeError):
        raise TokenHttpError(f"{what}: the answer is not JSON") from None
    value = doc.get(field) if isinstance(doc, dict) else None
    if not isinstance(value, str) or not value:
        raise TokenHttpError(f"{what}: the answer has no {field}")
    return value


def direct(url: str) -> bool:
    """Whether `url` is called without a proxy: plain http (a proxy would read the form, client secret and
    all, in clear) and loopback (a proxy's loopback is not ours; `AZURE_AUTHORITY_HOST=http://127.0.0.1:...`)."""
    import ipaddress

    scheme, host, _, _ = split_url(url, "URL")
    if scheme == "http" or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _opener(url: str, cafile: str | None = None) -> urllib.request.OpenerDirector:
    """urllib with the environment's CA (or `cafile`: the bundle the SDK this request stands in for would
    trust), its proxies unless `direct(url)`, and redirects refused (a token never follows one)."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                             headers: HTTPMessage, newurl: str) -> urllib.request.Request | None:
            return None  # the 3xx is then raised as an HTTPError

    handlers: list[urllib.request.BaseHandler] = [NoRedirect()]
    if cafile is not None and url.startswith("https://"):
        import ssl

        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cafile)))
    if direct(url):  # an explicit ProxyHandler replaces urllib's default one, which reads http(s)_proxy
        handlers.append(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener(*handlers)


def form_body(form: dict[str, str]) -> bytes:
    """`urllib.parse.urlencode(form)`, byte for byte (quote_plus of each UTF-8 key and value)."""
    from .http1 import percent_encode

    return "&".join(f"{percent_encode(k, plus=True)}={percent_encode(v, plus=True)}"
                    for k, v in form.items()).encode("ascii")


def post_form(url: str, form: dict[str, str], what: str, secrets: tuple[str, ...], *,
              timeout: float = TIMEOUT_S, cafile: str | None = None) -> bytes:
    """POST `form` to `url` (proxies honoured, no redirects, bounded by `timeout` per connect and read); the
    2xx body, else TokenHttpError."""
    return post(url, form_body(form), {"Content-Type": "application/x-www-form-urlencoded"}, what, secrets,
                timeout=timeout, cafile=cafile)


def proxy_may_apply(url: str) -> bool:
    """Whether urllib could send `url` through a proxy, so that it must make the request (`_post_urllib`).

    Never for a `direct` URL. On Linux and the other Unixes urllib reads proxies from the environment only:
    any variable whose name ends in `_proxy`, in any case (`getproxies_environment`), so without one the
    request goes straight out through `http1`, which is what urllib would do, ~16 ms of imports sooner.
    macOS and Windows also read the system's proxy settings: there urllib always decides.
    """
    if sys.platform not in ("darwin", "win32"):
        import os

        if not any(value and name.lower().endswith("_proxy") for name, value in os.environ.items()):
            return False
    return not direct(url)


def post(url: str, data: bytes, headers: dict[str, str], what: str, secrets: tuple[str, ...], *,
         timeout: float = TIMEOUT_S, cafile: str | None = None) -> bytes:
    """POST `data` with `headers` to `url`, as `post_form` does; the 2xx body, else TokenHttpError. `cafile`:
    verify https against that bundle instead of the ssl module's default (SSL_CERT_FILE, the system's)."""
    shown = url.split("?", 1)[0]
    if not url.startswith(("https://", "http://")):
        raise TokenHttpError(f"{what}: {shown} is not an http(s) URL")
    sent = {**headers, "Accept": "application/json", "User-Agent": _user_agent()}
    if proxy_may_apply(url):
        return _post_urllib(url, data, sent, what, secrets, timeout, cafile)
    from . import http1

    scheme, host, port, target = split_url(url, what)
    default = 443 if scheme == "https" else 80
    tls = _tls(cafile) if scheme == "https" else None
    try:
        sock = http1.connect(host, port or default, timeout, tls=tls)
    except OSError as exc:  # worded as urllib's URLError: the reason alone
        raise TokenHttpError(f"{what}: cannot reach {shown}: {_scrub(str(exc), secrets)}") from None
    try:
        sock.settimeout(timeout)
        answer = http1.exchange(sock, "POST", target, {
            "Host": http1.authority(host, port or default, default), "Accept-Encoding": "identity", **sent},
            data, max_body=MAX_BODY)
    except (OSError, http1.InvalidRequest) as exc:
        raise TokenHttpError(f"{what}: {shown}: {type(exc).__name__}: {_scrub(str(exc), secrets)}") from None
    finally:
        sock.close()
    if not 200 <= answer.status < 300:  # urllib's HTTPErrorProcessor; a 3xx is not followed (NoRedirect)
        raise RefusedAnswer(f"{what}: {shown} answered HTTP {answer.status}{problem(answer.body, secrets)}",
                            answer.status, answer.body)
    return answer.body


def _tls(cafile: str | None) -> ssl.SSLContext:
    """The context urllib would verify with: the ssl module's default, or `cafile` as `_opener` loads it."""
    import ssl

    return ssl.create_default_context(cafile=cafile) if cafile is not None else ssl.create_default_context()


def _post_urllib(url: str, data: bytes, headers: dict[str, str], what: str, secrets: tuple[str, ...],
                 timeout: float, cafile: str | None) -> bytes:
    """`post` through urllib, which picks the proxy (and the platform's proxy settings) as requests would."""
    import http.client
    import urllib.error
    import urllib.request

    shown = url.split("?", 1)[0]
    request = urllib.request.Request(  # noqa: S310 - post checked the scheme
        url, data=data, method="POST", headers=headers)
    try:
        with _opener(url, cafile).open(request, timeout=timeout) as response:
            body: bytes = response.read(MAX_BODY)
            return body
    except urllib.error.HTTPError as exc:
        try:
            said = exc.read(MAX_BODY)
        except (OSError, http.client.HTTPException):
            said = b""
        finally:
            exc.close()
        raise RefusedAnswer(f"{what}: {shown} answered HTTP {exc.code}{problem(said, secrets)}", exc.code,
                            said) from None
    except urllib.error.URLError as exc:
        raise TokenHttpError(f"{what}: cannot reach {shown}: {_scrub(str(exc.reason), secrets)}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise TokenHttpError(f"{what}: {shown}: {type(exc).__name__}: {_scrub(str(exc), secrets)}") from None


def get_local(url: str, headers: dict[str, str], what: str, secrets: tuple[str, ...], *,
              timeout: float = TIMEOUT_S, cafile: str | None = None) -> tuple[int, str | None, bytes]:
    """GET a managed-identity endpoint directly (never through a proxy): (status, WWW-Authenticate, body); the
    connect is bounded by MI_CONNECT_TIMEOUT_S (or `timeout`, if shorter), each read by `timeout`."""
    from . import http1

    scheme, host, port, target = split_url(url, what)
    default = 443 if scheme == "https" else 80
    tls = _tls(cafile) if scheme == "https" else None
    try:
        sock = http1.connect(host, port or default, min(MI_CONNECT_TIMEOUT_S, timeout), tls=tls)
        try:
            sock.settimeout(timeout)
            answer = http1.exchange(sock, "GET", target, {
                "Host": http1.authority(host, port or default, default), "Accept-Encoding": "identity",
                **headers, "User-Agent": _user_agent()}, None, max_body=MAX_BODY)
        finally:
            sock.close()
    except (OSError, http1.InvalidRequest) as exc:
        raise TokenHttpError(f"{what}: cannot reach {url.split('?', 1)[0]}: {type(exc).__name__}: "
                             f"{_scrub(str(exc), secrets)}") from None
    return answer.status, answer.headers.get("www-authenticate"), answer.body
