"""helper/backends/http1.py: one HTTP/1.1 exchange without http.client, checked against http.client itself.

Every framing case is a scripted answer from a raw socket server, read once by http1 and once by http.client
(the stdlib client the token fetches used before): status, reason, headers and body must be equal, and where
http.client refuses an answer, http1 must refuse it too. Then TLS against a test CA (the system's checks, ALPN),
the CONNECT tunnel through tests.loopback.ConnectProxy, timeouts, what goes on the wire, and the imports a token
fetch no longer pays for.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from helper.backends import http1
from tests.loopback import ConnectProxy, Loopback, QuietHandler

ROOT = Path(__file__).resolve().parent.parent


class Scripted:
    """A raw TCP server on 127.0.0.1: reads each request whole (headers, then Content-Length bytes), records
    it, writes `answer` (in `pieces` writes, `pause` s apart) and closes; `answer=None` never answers."""

    def __init__(self, answer: bytes | None, pieces: int = 1, pause: float = 0.0) -> None:
        self.answer = answer
        self.pieces = pieces
        self.pause = pause
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    self.requests.append(data)
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + body)
            if self.answer is None:
                self.stop.wait(30)
                return
            step = max(1, -(-len(self.answer) // self.pieces))
            for start in range(0, len(self.answer), step):
                conn.sendall(self.answer[start:start + step])
                if self.pause:
                    time.sleep(self.pause)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def by_http1(port: int, method: str = "POST", body: bytes | None = b"x=1", max_body: int = 1 << 20,
             timeout: float = 5.0) -> http1.Answer:
    sock = http1.connect("127.0.0.1", port, timeout)
    try:
        return http1.exchange(sock, method, "/token", {"Host": f"127.0.0.1:{port}"}, body, max_body=max_body)
    finally:
        sock.close()


def by_http_client(port: int, method: str = "POST", body: bytes | None = b"x=1",
                   max_body: int | None = 1 << 20) -> tuple[int, str, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, "/token", body=body)
        response = conn.getresponse()
        headers: dict[str, str] = {}
        for name, value in response.getheaders():
            headers[name.lower()] = f"{headers[name.lower()]}, {value}" if name.lower() in headers else value
        return response.status, response.reason, headers, response.read(max_body)
    finally:
        conn.close()


OK = b"HTTP/1.1 200 OK\r\n"
FRAMINGS = {
    "content-length": OK + b"Content-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"access_token\":1}",
    "chunked": OK + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    "until close": OK + b"Content-Type: text/plain\r\n\r\nthe rest of the stream",
    "100 continue first": b"HTTP/1.1 100 Continue\r\n\r\n" + OK + b"Content-Length: 2\r\n\r\nok",
    "204": b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
    "repeated and folded headers": OK + b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Long: one\r\n  two\r\n"
                                         b"Content-Length: 0\r\n\r\n",
    "error with body": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 26\r\n\r\n{\"error\":\"invalid_grant\"}\n",
    "HTTP/1.0, no reason": b"HTTP/1.0 503\r\nContent-Length: 4\r\n\r\ndown",
    "LF only": b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc",
    "redirect": b"HTTP/1.1 302 Found\r\nLocation: https://elsewhere.example/\r\nContent-Length: 0\r\n\r\n",
    "equal duplicate Content-Length": OK + b"Content-Length: 3, 3\r\n\r\nabc",
    "body longer than the limit": OK + b"Content-Length: 10\r\n\r\n0123456789",
    "chunked longer than the limit": OK + b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n",
    "another transfer coding with a length": OK + b"Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc",
}


@pytest.mark.parametrize("name", list(FRAMINGS))
def test_an_answer_reads_as_http_client_reads_it(name: str) -> None:
    limit = 6 if "limit" in name else 1 << 20
    for pieces in (1, 7):  # all at once, and dribbled in pieces across reads
        server = Scripted(FRAMINGS[name], pieces=pieces, pause=0.002 if pieces > 1 else 0.0)
        try:
            ours = by_http1(server.port, max_body=limit)
            theirs = by_http_client(server.port, max_body=limit)
        finally:
            server.close()
        # http.client keeps an obs-fold as it came ("one\r\n  two"); RFC 9112 reads it as white space
        seen = {k: " ".join(v.split()) for k, v in theirs[2].items() if k != "x-trailer"}
        if name == "equal duplicate Content-Length":
            seen = ours.headers  # http.client never joins a Content-Length it parsed; the body is what counts
        assert (ours.status, ours.reason, ours.headers, ours.body) == (theirs[0], theirs[1], seen, theirs[3]), pieces


BROKEN = {
    "closed without an answer": b"",
    "not HTTP": b"SSH-2.0-OpenSSH_9.2\r\n",
    "ends before its Content-Length": OK + b"Content-Length: 100\r\n\r\nshort",
    "bad chunk size": OK + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "chunk cut short": OK + b"Transfer-Encoding: chunked\r\n\r\nff\r\nabc",
    "status code not three digits": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "too many headers": OK + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n",
    "a line longer than 64 KiB": OK + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n",
    "a status of superscript digits": "HTTP/1.1 ²²² OK\r\nContent-Length: 0\r\n\r\n".encode("latin-1"),
    "a negative chunk size": OK + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_an_answer_http_client_refuses_is_refused_with_an_os_error(name: str) -> None:
    server = Scripted(BROKEN[name])
    try:
        with pytest.raises(http1.AnswerError):
            by_http1(server.port)
        with pytest.raises((http.client.HTTPException, OSError, ValueError)):
            by_http_client(server.port, max_body=None)  # read() whole: read(n) hands back a short body silently
    finally:
        server.close()


def test_endless_informational_answers_are_refused() -> None:
    server = Scripted(b"HTTP/1.1 102 Processing\r\n\r\n" * 11 + OK + b"Content-Length: 0\r\n\r\n")
    try:
        with pytest.raises(http1.AnswerError, match="informational"):
            by_http1(server.port)
    finally:
        server.close()


def test_a_huge_chunk_is_never_waited_for_past_the_limit() -> None:
    # a chunk that says 1 GiB and sends 2000 bytes, then holds the connection: with max_body 100 the answer
    # is whole at 100 bytes, so the read returns at once rather than waiting for the rest (or the timeout)
    server = Scripted(OK + b"Transfer-Encoding: chunked\r\n\r\n40000000\r\n" + b"x" * 2000)
    server.pieces, server.pause = 1, 30.0  # keep the connection open after the bytes
    try:
        assert by_http1(server.port, max_body=100, timeout=5).body == b"x" * 100
    finally:
        server.close()


@pytest.mark.parametrize("length", [b"3, 4", "²".encode("latin-1")])
def test_a_content_length_that_is_no_length_is_refused_where_http_client_guesses(length: bytes) -> None:
    # RFC 9112 6.3: an invalid Content-Length is an unrecoverable framing error; http.client fails to parse
    # it and reads to the end of the connection instead, which would take "abcd" for the body
    server = Scripted(OK + b"Content-Length: " + length + b"\r\n\r\nabcd")
    try:
        with pytest.raises(http1.AnswerError, match="bad Content-Length"):
            by_http1(server.port)
        assert by_http_client(server.port)[3] == b"abcd"
    finally:
        server.close()


def test_the_request_goes_out_whole_in_one_write_with_its_length_host_and_connection_close(
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = Scripted(OK + b"Content-Length: 0\r\n\r\n")
    try:
        sock = http1.connect("127.0.0.1", server.port, 5)
        sends: list[bytes] = []
        real = socket.socket.sendall

        def counting(self: socket.socket, data: bytes) -> None:
            if self is sock:  # not the server's
                sends.append(bytes(data))
            real(self, data)

        monkeypatch.setattr(socket.socket, "sendall", counting)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        http1.exchange(sock, "POST", "/v1/token?x=1", {"Host": http1.authority("127.0.0.1", server.port, 443),
                                                       "Content-Type": "application/json"}, b'{"a":"b"}',
                       max_body=100)
        sock.close()
    finally:
        server.close()
    assert len(sends) == 1
    assert sends[0] == server.requests[0] == (
        f"POST /v1/token?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
        'Connection: close\r\nContent-Length: 9\r\n\r\n{"a":"b"}').encode()


@pytest.mark.parametrize("target", ["/x HTTP/1.1\r\nX-Injected: yes\r\nY: /z", "/a b", "/\u20ac", "", "/\x7f"])
def test_a_target_http_client_would_refuse_is_refused_before_anything_is_sent(target: str) -> None:
    server = Scripted(OK + b"Content-Length: 0\r\n\r\n")
    try:
        sock = http1.connect("127.0.0.1", server.port, 5)
        with pytest.raises(http1.InvalidRequest, match="invalid request target"):
            http1.exchange(sock, "GET", target, {"Host": "h"}, None, max_body=10)
        sock.close()
        time.sleep(0.2)
        assert server.requests == [b""]
    finally:
        server.close()
    with pytest.raises(http.client.InvalidURL):  # control: http.client refuses a CR LF or a space in one too
        http.client.HTTPConnection("127.0.0.1", server.port).putrequest("GET", "/a b")


def test_a_url_with_a_cr_lf_never_reaches_the_wire_through_oauth_http() -> None:
    from helper.backends.oauth_http import TokenHttpError, get_local

    server = Scripted(OK + b"Content-Length: 0\r\n\r\n")
    try:
        with pytest.raises(TokenHttpError, match="printable ASCII"):
            get_local(f"http://127.0.0.1:{server.port}/x HTTP/1.1\r\nX-Injected: yes\r\nY: /z", {}, "test", ())
        time.sleep(0.2)
        assert server.requests == []
    finally:
        server.close()


@pytest.mark.parametrize("header", [("X-Evil", "a\r\nInjected: 1"), ("X-Nul", "a\0b"), ("Bad:Name", "v"),
                                    ("X-Lf\n", "v")])
def test_a_header_with_cr_lf_or_nul_is_refused_before_anything_is_sent(header: tuple[str, str]) -> None:
    server = Scripted(OK + b"Content-Length: 0\r\n\r\n")
    try:
        sock = http1.connect("127.0.0.1", server.port, 5)
        with pytest.raises(ValueError, match="invalid header"):
            http1.exchange(sock, "GET", "/", {"Host": "h", header[0]: header[1]}, None, max_body=10)
        sock.close()
        time.sleep(0.2)
        assert server.requests == [b""]  # the connection closed with nothing sent
    finally:
        server.close()


def test_authority_is_the_host_header_http_client_sends() -> None:
    assert http1.authority("example.com", 443, 443) == "example.com"
    assert http1.authority("example.com", 8443, 443) == "example.com:8443"
    assert http1.authority("::1", 8443, 443) == "[::1]:8443"
    assert http1.authority("::1", 80, 80) == "[::1]"


def test_a_silent_server_times_out_on_the_read_and_a_dribbling_one_within_each_read() -> None:
    silent = Scripted(None)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            by_http1(silent.port, timeout=0.5)
        assert time.monotonic() - started < 3
    finally:
        silent.close()
    slow = Scripted(OK + b"Content-Length: 5\r\n\r\nabcde", pieces=5, pause=0.1)
    try:
        assert by_http1(slow.port, timeout=0.5).body == b"abcde"  # each read well inside its timeout
    finally:
        slow.close()


def test_nothing_listening_is_a_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        http1.connect("127.0.0.1", port, 2)


# ---- TLS and the tunnel -------------------------------------------------------------------------------------


class Echo(QuietHandler):
    """Answers every POST with what it saw: the path, the body, the negotiated ALPN protocol."""

    def do_POST(self) -> None:
        body = self.body()
        alpn = self.connection.selected_alpn_protocol() if isinstance(self.connection, ssl.SSLSocket) else None
        self.send(200, json.dumps({"path": self.path, "body": body.decode(), "alpn": alpn,
                                   "host": self.headers.get("Host")}).encode())


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Loopback, Path]]:
    from tests.test_acr import make_ca

    ca, cert, key = make_ca(tmp_path_factory.mktemp("http1-ca"), ["localhost", "token.example"])

    class AlpnEcho(Echo):
        pass

    server = Loopback(AlpnEcho, tls=(cert, key))
    # the server side offers http/1.1 too, so that the client's offer shows in selected_alpn_protocol
    server.server.socket.context.set_alpn_protocols(["http/1.1"])  # type: ignore[attr-defined]
    yield server, ca
    server.close()


def post_tls(port: int, ca: Path | None, host: str = "localhost", via: tuple[str, int] | None = None) -> dict[str, str]:
    context = ssl.create_default_context(cafile=str(ca)) if ca else ssl.create_default_context()
    sock = http1.connect(host, port, 5, tls=context, via=via)
    try:
        answer = http1.exchange(sock, "POST", "/t", {"Host": http1.authority(host, port, 443)}, b"form",
                                max_body=1000)
    finally:
        sock.close()
    assert answer.status == 200
    result: dict[str, str] = json.loads(answer.body)
    return result


def test_tls_is_verified_against_the_callers_context_and_offers_http_1_1(
        tls_server: tuple[Loopback, Path]) -> None:
    server, ca = tls_server
    assert post_tls(server.port, ca) == {"path": "/t", "body": "form", "alpn": "http/1.1",
                                         "host": f"localhost:{server.port}"}
    with pytest.raises(ssl.SSLCertVerificationError):  # control: the system's roots do not know the test CA
        post_tls(server.port, None)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"IP address mismatch|doesn't match"):
        post_tls(server.port, ca, host="127.0.0.1")  # the certificate names localhost only


def test_a_connect_tunnel_carries_the_tls_session_and_a_refusal_is_a_tunnel_error(
        tls_server: tuple[Loopback, Path]) -> None:
    server, ca = tls_server
    proxy = ConnectProxy(server.port)
    try:
        assert post_tls(server.port, ca, via=("127.0.0.1", proxy.port))["body"] == "form"
        assert proxy.targets == [f"CONNECT localhost:{server.port}"]
    finally:
        proxy.close()
    refusing = Scripted(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 12\r\n\r\nlog in first")
    try:
        with pytest.raises(http1.TunnelError, match="Tunnel connection failed: 407 Proxy Authentication Required"):
            post_tls(server.port, ca, via=("127.0.0.1", refusing.port))
        assert refusing.requests[0].startswith(f"CONNECT localhost:{server.port} HTTP/1.0\r\n".encode())
    finally:
        refusing.close()


def test_a_tls_token_post_imports_no_http_client_urllib_email_or_idna(tls_server: tuple[Loopback, Path]) -> None:
    """What the module is for: oauth_http.post over TLS without a proxy loads none of http.client's imports."""
    server, ca = tls_server
    probe = (
        "import sys\nfrom helper.backends import oauth_http\n"
        "body = oauth_http.post_form(sys.argv[1], {'a': 'b c'}, 'test', (),"
        f" cafile={str(ca)!r})\n"
        "mods = sorted(m for m in sys.modules if m.split('.')[0] in ('http', 'urllib', 'email', 'json')"
        " or m == 'encodings.idna')\n"
        "sys.stdout.write(body.decode() + '\\n' + ' '.join(mods))\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    proc = subprocess.run([sys.executable, "-c", probe, f"https://localhost:{server.port}/token"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    answer, modules = proc.stdout.split("\n")
    assert json.loads(answer)["body"] == "a=b+c"
    assert modules == ""
    # control: with a proxy variable set, urllib makes the request (and picks the proxy), as requests would;
    # the proxy tunnels any name to the server, so no name is looked up
    proxy = ConnectProxy(server.port)
    try:
        proc = subprocess.run([sys.executable, "-c", probe, "https://token.example/token"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=False,
                              env=dict(env, https_proxy=proxy.url))
        assert proc.returncode == 0, proc.stderr
        assert "http.client" in proc.stdout.split("\n")[1] and "urllib.request" in proc.stdout
        assert proxy.targets == ["CONNECT token.example:443"]
    finally:
        proxy.close()


# ---- oauth_http: the form and the choice of client -------------------------------------------------------------


@given(st.dictionaries(st.text(), st.text(), max_size=6))
@example({"assertion": "eyJ.a-b_c.d+e/f=", "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"})
@example({"scope": "a b\u00e9 ~*'()!", "x": "\x00&=+%"})
def test_the_form_is_urlencode_byte_for_byte(form: dict[str, str]) -> None:
    import urllib.parse

    from helper.backends.oauth_http import form_body

    try:
        expected = urllib.parse.urlencode(form).encode("ascii")
    except UnicodeEncodeError:  # a lone surrogate: urllib cannot encode it either
        with pytest.raises(UnicodeEncodeError):
            form_body(form)
        return
    assert form_body(form) == expected


@pytest.mark.parametrize(("env", "url", "urllib_decides"), [
    ({}, "https://oauth2.googleapis.com/token", False),
    ({"https_proxy": "http://proxy:3128"}, "https://oauth2.googleapis.com/token", True),
    ({"HTTPS_PROXY": "http://proxy:3128"}, "https://login.microsoftonline.com/t", True),
    ({"ALL_PROXY": "http://proxy:3128"}, "https://sts.googleapis.com/v1/token", True),
    ({"no_proxy": "example.com"}, "https://oauth2.googleapis.com/token", True),  # urllib reads it: urllib decides
    ({"Ftp_Proxy": "http://proxy:21"}, "https://oauth2.googleapis.com/token", True),  # any *_proxy, any case
    ({"https_proxy": ""}, "https://oauth2.googleapis.com/token", False),  # empty: urllib ignores it too
    ({"https_proxy": "http://proxy:3128"}, "http://127.0.0.1:8080/token", False),  # plain http: never proxied
    ({"https_proxy": "http://proxy:3128"}, "https://localhost:8443/token", False),  # loopback: never proxied
])
def test_urllib_makes_the_request_whenever_a_proxy_variable_could_apply(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, urllib_decides: bool) -> None:
    from helper.backends.oauth_http import proxy_may_apply

    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert proxy_may_apply(url) is urllib_decides
    monkeypatch.setattr(sys, "platform", "darwin")  # the system's proxy settings: urllib always decides there
    assert proxy_may_apply(url) is (not url.startswith("http://") and "localhost" not in url)


@given(st.text(), st.sampled_from(["", "/", "@", "-_.~"]), st.booleans())
@example("a b/c@d~e", "@", False)
@example("\u00e9 \x00+", "", True)
def test_percent_encode_is_urllib_quote_or_quote_plus(text: str, safe: str, plus: bool) -> None:
    import urllib.parse

    quote = urllib.parse.quote_plus if plus else urllib.parse.quote
    try:
        expected = quote(text, safe=safe)
    except UnicodeEncodeError:  # a lone surrogate: urllib cannot encode it either
        with pytest.raises(UnicodeEncodeError):
            http1.percent_encode(text, safe, plus)
        return
    assert http1.percent_encode(text, safe, plus) == expected
