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
Header names and values with CR or LF are refused (ValueError) before anything is sent, as http.client does.
"""

from __future__ import annotations

import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

MAX_LINE = 65536  # http.client's _MAXLINE
MAX_HEADERS = 100  # http.client's _MAXHEADERS
RECV = 65536


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


def _wire_host(host: str) -> str | bytes:
    """`host` for getaddrinfo and SNI: ASCII bytes, so that neither imports the idna codec for it."""
    return host.encode("ascii") if host.isascii() else host


def authority(host: str, port: int, default_port: int) -> str:
    """The Host header's value: `host` (IPv6 in brackets) with `:port` unless it is the scheme's default."""
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
    if reader.pending:
        raise TunnelError("the proxy sent data before the tunnel opened")
    if status != 200:
        raise TunnelError(f"Tunnel connection failed: {status} {reason}".rstrip())


def exchange(sock: socket.socket, method: str, target: str, headers: dict[str, str], body: bytes | None, *,
             max_body: int) -> Answer:
    """Send one request (`headers` must hold Host; Content-Length is added for a body, `Connection: close`
    always) and read its answer. The socket's timeout bounds each read."""
    lines = [f"{method} {target} HTTP/1.1"]
    sent = {**headers, "Connection": "close"}
    if body is not None:
        sent["Content-Length"] = str(len(body))
    for name, value in sent.items():
        if any(c in name or c in value for c in "\r\n\0") or not name or ":" in name:
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    sock.sendall("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + (body or b""))
    reader = _Reader(sock)
    while True:
        status, reason = _status_line(reader.line())
        fields = _header_lines(reader)
        if not 100 <= status < 200:
            break
    if method == "HEAD" or status in (204, 304):
        return Answer(status, reason, fields, b"")
    coding = fields.get("transfer-encoding", "").lower()
    if coding:
        if coding.rsplit(",", 1)[-1].strip() != "chunked":
            return Answer(status, reason, fields, reader.rest(max_body))
        return Answer(status, reason, fields, _chunked(reader, max_body))
    length = fields.get("content-length")
    if length is None:
        return Answer(status, reason, fields, reader.rest(max_body))
    values = {v.strip() for v in length.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise AnswerError(f"bad Content-Length {length!r}")
    size = int(values.pop())
    return Answer(status, reason, fields, reader.exactly(min(size, max_body)))


def _status_line(line: bytes) -> tuple[int, str]:
    text = line.decode("latin-1").rstrip("\r\n")
    version, _, rest = text.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit() or int(code) < 100:
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


def _chunked(reader: _Reader, max_body: int) -> bytes:
    parts: list[bytes] = []
    kept = 0
    while True:
        size_text = reader.line().split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise AnswerError(f"bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            _header_lines(reader)  # the trailer, up to its blank line
            return b"".join(parts)
        parts.append(reader.exactly(size))
        if reader.line() not in (b"\r\n", b"\n"):
            raise AnswerError("a chunk does not end where its size says")
        kept += size
        if kept >= max_body:
            return b"".join(parts)[:max_body]


class _Reader:
    """Buffered reads from the socket: lines, exact sizes, or all until the connection ends."""

    __slots__ = ("pending", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = b""

    def _more(self) -> bool:
        data = self.sock.recv(RECV)
        self.pending += data
        return bool(data)

    def line(self) -> bytes:
        while True:
            end = self.pending.find(b"\n")
            if end >= 0:
                if end + 1 > MAX_LINE:
                    break
                line, self.pending = self.pending[:end + 1], self.pending[end + 1:]
                return line
            if len(self.pending) > MAX_LINE:
                break
            if not self._more():
                if self.pending:
                    raise AnswerError("the answer ended inside a line")
                return b""  # closed: no status line, or the end of the headers (http.client reads it so too)
        raise AnswerError(f"a line longer than {MAX_LINE} bytes")

    def exactly(self, size: int) -> bytes:
        while len(self.pending) < size:
            if not self._more():
                raise AnswerError(f"the answer ended {size - len(self.pending)} bytes early")
        data, self.pending = self.pending[:size], self.pending[size:]
        return data

    def rest(self, limit: int) -> bytes:
        while len(self.pending) < limit and self._more():
            pass
        data, self.pending = self.pending[:limit], b""
        return data
