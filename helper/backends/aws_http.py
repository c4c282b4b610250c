"""One AWS POST over `http1` (no http.client), failing and retrying as botocore does (aws_fast's transport).

The failures are botocore's exception classes by name and message (the reason a not-found logs names the class):
`EndpointConnectionError`, `ConnectTimeoutError`, `ReadTimeoutError`, `SSLError`, `ConnectionClosedError`,
`ProxyConnectionError`, and `ClientError` "An error occurred (Code) when calling the Op operation: message", with
" (reached max retries: N)" when retries ran out. A failed connection, a timeout, a 500/502/503/504, a transient
or throttling code are retried after botocore's jittered back-off (random * 2^(attempt-1) s).
The CA bundle is botocore's: AWS_CA_BUNDLE, else REQUESTS_CA_BUNDLE, else certifi's (botocore's own when certifi
is missing); TLS 1.2 at least, as urllib3. A proxy is found with the functions botocore calls
(`urllib.request.getproxies`, `proxy_bypass`) and tunnelled with CONNECT, as urllib3 does for https.
"""

from __future__ import annotations

import os

from .. import fastjson
from .cabundle import certifi_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable
    from typing import Any

THROTTLED = frozenset({  # botocore/retries/standard.py _THROTTLED_ERROR_CODES, with the transient codes
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException"})
STANDARD_STATUS = frozenset({500, 502, 503, 504})
# botocore's legacy mode (the web identity provider's STS client: no retry configuration of ours)
LEGACY_CODES = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
                          "ProvisionedThroughputExceededException", "IDPCommunicationError"})
LEGACY_STATUS = frozenset({429, 500, 502, 503, 504, 509})


class BotocoreLike(Exception):
    """An error worded as botocore's class of the same name words it."""

    fmt = "{endpoint_url}"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(self.fmt.format(**kwargs))


class EndpointConnectionError(BotocoreLike):
    fmt = 'Could not connect to the endpoint URL: "{endpoint_url}"'


class ConnectTimeoutError(BotocoreLike):
    fmt = 'Connect timeout on endpoint URL: "{endpoint_url}"'


class ReadTimeoutError(BotocoreLike):
    fmt = 'Read timeout on endpoint URL: "{endpoint_url}"'


class SSLError(BotocoreLike):
    fmt = "SSL validation failed for {endpoint_url} {error}"


class ConnectionClosedError(BotocoreLike):
    fmt = ('Connection was closed before we received a valid response from endpoint URL: '
           '"{endpoint_url}".')


class ProxyConnectionError(BotocoreLike):
    fmt = 'Failed to connect to proxy URL: "{proxy_url}"'


class ClientError(Exception):
    """botocore.exceptions.ClientError's message for a service's error answer."""

    def __init__(self, code: str, message: str, operation: str, retries: int) -> None:
        self.code = code
        info = f" (reached max retries: {retries})" if retries else ""
        super().__init__(f"An error occurred ({code}) when calling the {operation} operation{info}: {message}")


def client_error(service: str, code: str, message: str, operation: str, retries: int) -> ClientError:
    """A ClientError named as botocore names it: the modeled error's class (`ServerException`), else ClientError."""
    from .aws_errors import class_name

    name = class_name(service, code)
    kind: type[ClientError] = ClientError if name == "ClientError" else type(name, (ClientError,), {})
    return kind(code, message, operation, retries)


def cafile() -> str | None:
    """The CA bundle botocore verifies with; None: one this module does not load itself (botocore decides)."""
    path = os.environ.get("AWS_CA_BUNDLE") or os.environ.get("REQUESTS_CA_BUNDLE")
    if path is None or ("AWS_CA_BUNDLE" not in os.environ and path == ""):
        return certifi_path()
    return path if path.strip() and os.path.isfile(path) else None


def proxy_for(url: str) -> str | None:
    """The proxy botocore would send `url` through: "" none, None one this module does not speak (only a plain
    http:// proxy without user info is tunnelled here), else "host:port"."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return ""  # urllib.request (~10 ms of imports) only when some proxy variable is set
    import urllib.request
    from urllib.parse import urlsplit

    netloc = urlsplit(url).netloc
    try:
        if urllib.request.proxy_bypass(netloc):
            return ""
    except (TypeError, OSError):
        pass
    proxy = urllib.request.getproxies().get(url.split(":", 1)[0])
    if not proxy:
        return ""
    if url.startswith("http:") or not proxy.startswith("http://"):
        return None
    authority = proxy[len("http://"):].split("/", 1)[0]
    return None if "@" in authority or not authority else authority


def _context(path: str) -> ssl.SSLContext:
    import ssl

    context = ssl.create_default_context(cafile=path)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _split(authority: str, default: int) -> tuple[str, int]:
    """("host", port) of "host[:port]" or "[v6][:port]"."""
    host, sep, port = authority.rpartition(":")
    if not sep or "]" in port:
        host, port = authority, ""
    return host.strip("[]"), int(port) if port else default


def send(method: str, url: str, headers: dict[str, str], body: bytes | None, timeouts: tuple[float, float],
         ca: str | None, proxy: str, endpoint: str | None = None) -> tuple[int, bytes]:
    """One request (`headers` hold Host) and its (status, body), failing with botocore's class for what went
    wrong: connect (ConnectTimeoutError, SSLError, ProxyConnectionError, EndpointConnectionError) or after
    (ReadTimeoutError, ConnectionClosedError), named with `endpoint` (default: the URL's root)."""
    import ssl

    from . import http1

    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    endpoint = endpoint or f"{scheme}://{authority}/"
    host, port = _split(authority, 443 if scheme == "https" else 80)
    try:
        sock = http1.connect(host, port, timeouts[0], tls=_context(ca or "") if scheme == "https" else None,
                             via=_split(proxy, 80) if proxy else None)
    except TimeoutError:
        raise ConnectTimeoutError(endpoint_url=endpoint) from None
    except ssl.SSLError as exc:
        raise SSLError(endpoint_url=endpoint, error=exc) from None
    except OSError:
        if proxy:
            raise ProxyConnectionError(proxy_url=f"http://{proxy}") from None
        raise EndpointConnectionError(endpoint_url=endpoint) from None
    try:
        sock.settimeout(timeouts[1])
        answer = http1.exchange(sock, method, slash + path or "/", headers, body, max_body=1 << 24)
        return answer.status, answer.body
    except TimeoutError:
        raise ReadTimeoutError(endpoint_url=endpoint) from None
    except OSError:
        raise ConnectionClosedError(endpoint_url=endpoint) from None
    finally:
        sock.close()


def json_error(status: int, data: bytes) -> tuple[str, str]:
    """botocore's (code, message) for a JSON protocol error answer (parsers.py BaseJSONParser)."""
    if status >= 500 and (not data.strip() or data.strip().startswith(b"<html>")):
        from http import HTTPStatus

        try:
            phrase = HTTPStatus(status).phrase  # http.client.responses' text, without http.client's imports
        except ValueError:
            phrase = ""
        return str(status), phrase
    try:
        body: Any = fastjson.loads(data.decode("utf-8")) if data else {}
    except ValueError:
        body = {"message": data.decode("utf-8")}
    code = str(body.get("__type", str(status)))
    code = code.split(":", 1)[0].rsplit("#", 1)[-1]
    return code, str(body.get("message", body.get("Message", "")))


def post(url: str, headers: dict[str, str], body: bytes, *, service: str, operation: str, timeouts: tuple[float, float],
         attempts: int, legacy: bool, parse_error: Callable[[int, bytes], tuple[str, str]],
         ca: str | None, proxy: str, sign: Callable[[dict[str, str]], dict[str, str]] | None = None) -> bytes:
    """POST `body` to `url` (signed anew each attempt by `sign(headers) -> headers` when given) and return the
    body of a 2xx/3xx-free answer, retrying as botocore's standard (or `legacy`) mode does."""
    import time

    for attempt in range(1, attempts + 1):
        last = attempt == attempts
        try:
            sent = sign(headers) if sign is not None else headers
            status, data = send("POST", url, sent, body, timeouts, ca, proxy)
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, SSLError, ConnectionClosedError,
                ProxyConnectionError):
            if last:
                raise
        else:
            if status < 301:
                return data
            code, message = parse_error(status, data)
            retryable = (status in LEGACY_STATUS or (code in LEGACY_CODES and status == 400)) if legacy else \
                (status in STANDARD_STATUS or code in THROTTLED)
            if not retryable:
                raise client_error(service, code, message, operation, 0)
            if last:
                raise client_error(service, code, message, operation, attempt - 1)
        time.sleep(int.from_bytes(os.urandom(4), "big") / 2**32 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
