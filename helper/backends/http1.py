"""One HTTP/1.1 request and its answer, for the cold token fetches, without `http.client`.

`http.client` and urllib cost a cold `get` about 16 ms of imports on top of `ssl` (`email.parser`,
`email.utils`, `calendar`, `urllib.request`/`error`/`response`, `tempfile`, `shutil`, `bz2`, `lzma`): half of
what a GCP token fetch spends outside the TLS floor, for one small request and one small answer. This module
does that one exchange on a socket:

* `connect`: TCP (`socket.create_connection`, Nagle off), through an http proxy's CONNECT tunnel when asked
  (HTTP/1.0 CONNECT with a Host header, as http.client's `set_tunnel`), then TLS with the caller's context,
  offering ALPN `http/1.1` as http.client and urllib3 do. Host names go to getaddrinfo and SNI as ASCII bytes,
  so the `idna` codec is not imported for them (a non-ASCII name is passed as text and encoded as before).
* `exchange`: the request in one `sendall` (request line, headers, body: no Nagle/delayed-ACK stall), then one
  answer: status line, headers (obs-fold joined, repeated names joined with ", "), 1xx answers skipped, and a
  body framed by chunked transfer coding, else Content-Length, else the end of the connection (no body for
  HEAD, 204, 304), at most `max_body` bytes kept, as `response.read(max_body)` keeps. Limits are http.client's:
  65536 bytes a line, 100 headers.

It sends `Connection: close` and never reuses a connection: a token fetch makes one request per endpoint.
Errors are what the socket and ssl raise (TimeoutError, ssl.SSLError, ConnectionError...), TunnelError for a
proxy that refused the tunnel, and AnswerError (an OSError) for an answer that is not HTTP/1.x or ends early.
A method, target or header that http.client would refuse (CR, LF, NUL; a space or control character in the
target) is InvalidRequest, a ValueError, before anything is sent.
"""

from __future__ import annotations

import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

MAX_LINE = 65536  # http.client's _MAXLINE
MAX_HEADERS = 100  # http.client's _MAXHEADERS
RECV = 65536
MAX_INFORMATIONAL = 10  # 1xx answers skipped before the final one: a server cannot keep the read going forever


class InvalidRequest(ValueError):
    """A request this module will not send: a method, target, header name or value with a character that does
    not belong there (CR, LF, NUL, a space in the target...), as http.client refuses them. Raised before
    anything is sent."""


class AnswerError(OSError):
    """The answer is not HTTP/1.x, breaks its framing or ends before it is whole."""


class TunnelError(OSError):
    """The proxy did not open the CONNECT tunnel (http.client's wording: "Tunnel connection failed: 407 ...")."""


class Answer:
    """An answer: status, reason phrase, headers (lower-case names) and body."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body


UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")  # urllib's _ALWAYS_SAFE


def percent_encode(text: str, safe: str = "", plus: bool = False) -> str:
    """`urllib.parse.quote(text, safe)` (UTF-8; `quote_plus` with `plus`: a space as "+"), without importing
    urllib.parse (~1.5 ms of a cold `get`): the form bodies and URL parts the token requests send."""
    keep = UNRESERVED.union(safe.encode("ascii"))
    return "".join(chr(b) if b in keep else "+" if plus and b == 0x20 else f"%{b:02X}" for b in text.encode("utf-8"))


def _wire_host(host: str) -> str | bytes:
    """`host` for getaddrinfo and SNI: ASCII bytes, so that neither imports the idna codec for it."""
    return host.encode("ascii") if host.isascii() else host


def authority(host: str, port: int, default_port: int) -> str:
    """The Host header's value: `host` (IPv6 in brackets; a non-ASCII name IDNA-encoded, as http.client does)
    with `:port` unless it is the scheme's default."""
    host = host if host.isascii() else host.encode("idna").decode("ascii")
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default_port else f"{shown}:{port}"


def connect(host: str, port: int, timeout: float, *, tls: ssl.SSLContext | None = None,
            via: tuple[str, int] | None = None) -> socket.socket:
    """A socket connected to host:port, through the http proxy `via` (host, port) by CONNECT when given, wrapped
    in TLS with `tls` (server name `host`) when given. `timeout` bounds the connect, the tunnel and the handshake;
    the socket keeps it until the caller sets another."""
    target = via or (host, port)
    # getaddrinfo takes bytes as well (typeshed says str)
    sock = socket.create_connection((_wire_host(target[0]), target[1]), timeout)  # type: ignore[arg-type]
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if via is not None:
            _tunnel(sock, host, port)
        if tls is None:
            return sock
        tls.set_alpn_protocols(["http/1.1"])
        return tls.wrap_socket(sock, server_hostname=_wire_host(host))
    except BaseException:
        sock.close()
        raise


def _tunnel(sock: socket.socket, host: str, port: int) -> None:
    where = authority(host, port, -1)
    sock.sendall(f"CONNECT {where} HTTP/1.0\r\nHost: {where}\r\n\r\n".encode("ascii"))
    reader = _Reader(sock)
    status, reason = _status_line(reader.line())
    _header_lines(reader)
    if status != 200:  # a refusal may carry a body: the status is what to report
        raise TunnelError(f"Tunnel connection failed: {status} {reason}".rstrip())
    if reader.pending:
        raise TunnelError("the proxy sent data before the tunnel opened")


def exchange(sock: socket.socket, method: str, target: str, headers: dict[str, str], body: bytes | None, *,
             max_body: int) -> Answer:
    """Send one request (`headers` must hold Host; Content-Length is added for a body, `Connection: close`
    always) and read its answer. The socket's timeout bounds each read."""
    # http.client's checks: the method a token, the target printable ASCII without spaces (a URL path with
    # CR LF in it would otherwise write headers of its own), no CR, LF or NUL in a header
    if not (method.isascii() and method.isalpha()) or not target or not all("!" <= c <= "~" for c in target):
        raise InvalidRequest(f"invalid request target {target[:80]!r}")
    lines = [f"{method} {target} HTTP/1.1"]
    sent = {**headers, "Connection": "close"}
    if body is not None:
        sent["Content-Length"] = str(len(body))
    for name, value in sent.items():
        if any(c in name or c in value for c in "\r\n\0") or not name or ":" in name or " " in name:
            raise InvalidRequest(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    sock.sendall("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + (body or b""))
    reader = _Reader(sock)
    for _ in range(MAX_INFORMATIONAL + 1):
        status, reason = _status_line(reader.line())
        fields = _header_lines(reader)
        if not 100 <= status < 200:
            break
    else:
        raise AnswerError(f"more than {MAX_INFORMATIONAL} informational (1xx) answers")
    if method == "HEAD" or status in (204, 304):
        return Answer(status, reason, fields, b"")
    coding = fields.get("transfer-encoding", "").lower()
    if coding.rsplit(",", 1)[-1].strip() == "chunked":
        return Answer(status, reason, fields, _chunked(reader, max_body))
    length = fields.get("content-length")  # another transfer coding: framed as http.client frames it
    if length is None:
        return Answer(status, reason, fields, reader.rest(max_body))
    values = {v.strip() for v in length.split(",")}
    size_text = next(iter(values))
    if len(values) != 1 or not _decimal(size_text):
        raise AnswerError(f"bad Content-Length {length[:40]!r}")
    return Answer(status, reason, fields, reader.exactly(min(int(size_text), max_body)))


def _decimal(text: str) -> bool:
    """ASCII digits, at most 18 of them (str.isdigit alone takes "²" and a 5000-digit number)."""
    return 0 < len(text) <= 18 and text.isascii() and text.isdigit()


def _status_line(line: bytes) -> tuple[int, str]:
    text = line.decode("latin-1").rstrip("\r\n")
    version, _, rest = text.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not _decimal(code) or int(code) < 100:
        raise AnswerError(f"not an HTTP/1.x status line: {text[:80]!r}" if text else "no answer (connection closed)")
    return int(code), reason.strip()


def _header_lines(reader: _Reader) -> dict[str, str]:
    fields: dict[str, str] = {}
    last = ""
    for _ in range(MAX_HEADERS + 1):
        line = reader.line().decode("latin-1").rstrip("\r\n")
        if not line:
            return fields
        if line[0] in " \t" and last:  # obs-fold: the value goes on
            fields[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise AnswerError(f"bad header line {line[:80]!r}")
        last = name.lower()
        fields[last] = f"{fields[last]}, {value.strip()}" if last in fields else value.strip()
    raise AnswerError(f"more than {MAX_HEADERS} headers")


HEX = frozenset(b"0123456789abcdefABCDEF")


def _chunked(reader: _Reader, max_body: int) -> bytes:
    parts: list[bytes] = []
    kept = 0
    while True:
        size_text = reader.line().split(b";", 1)[0].strip()
        if not 0 < len(size_text) <= 15 or not HEX.issuperset(size_text):
            raise AnswerError(f"bad chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            _header_lines(reader)  # the trailer, up to its blank line
            return b"".join(parts)
        if kept + size >= max_body:  # enough: the rest is never read, as read(max_body) leaves it
            parts.append(reader.exactly(max_body - kept))
            return b"".join(parts)
        parts.append(reader.exactly(size))
        if reader.line() not in (b"\r\n", b"\n"):
            raise AnswerError("a chunk does not end where its size says")
        kept += size


class _Reader:
    """Buffered reads from the socket: lines, exact sizes, or all until the connection ends. The buffer is a
    bytearray, so a large body costs its size, not its size squared."""

    __slots__ = ("pending", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = bytearray()

    def _more(self, want: int = RECV) -> bool:
        data = self.sock.recv(max(1, min(want, RECV)))
        self.pending += data
        return bool(data)

    def _take(self, size: int) -> bytes:
        data = bytes(self.pending[:size])
        del self.pending[:size]
        return data

    def line(self) -> bytes:
        while True:
            end = self.pending.find(b"\n")
            if end >= 0:
                if end + 1 > MAX_LINE:
                    break
                return self._take(end + 1)
            if len(self.pending) > MAX_LINE:
                break
            if not self._more():
                if self.pending:
                    raise AnswerError("the answer ended inside a line")
                return b""  # closed: no status line, or the end of the headers (http.client reads it so too)
        raise AnswerError(f"a line longer than {MAX_LINE} bytes")

    def exactly(self, size: int) -> bytes:
        while len(self.pending) < size:
            if not self._more(size - len(self.pending)):
                raise AnswerError(f"the answer ended {size - len(self.pending)} bytes early")
        return self._take(size)

    def rest(self, limit: int) -> bytes:
        while len(self.pending) < limit and self._more(limit - len(self.pending)):
            pass
        return self._take(limit)
