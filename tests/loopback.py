"""Loopback HTTP(S) servers for the fake clouds the tests drive: the socket plumbing, written once.

A fake subclasses `QuietHandler` for its answers and `Loopback` (or uses it) for the server: 127.0.0.1,
a free port, a daemon thread per request, optional TLS with a test CA's certificate.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and has the two chores every fake repeats."""

    def log_message(self, *args: object) -> None:
        return None

    def body(self) -> bytes:
        """The request body (by Content-Length)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, code: int, data: bytes, content_type: str = "application/json",
             headers: Mapping[str, str] | None = None) -> None:
        """One complete response; a client that already gave up (the timeout tests) is not an error."""
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


class Loopback:
    """A threaded HTTP server on 127.0.0.1 (HTTPS with `tls=(cert, key)`), serving until `close()`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: tuple[Path, Path] | None = None) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if tls else 'http'}://{self.address}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()



class ConnectProxy:
    """An HTTP proxy on 127.0.0.1 that answers CONNECT only, tunnelling to `upstream` (a port on loopback) or,
    without one, to the port the CONNECT names; `targets` records every "METHOD target" it was asked, and
    `on_target` (if given) hears each too. Serving until `close()`."""

    def __init__(self, upstream: int | None = None, on_target: Callable[[str], None] | None = None) -> None:
        import socketserver

        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._one(self.request)

        self.upstream = upstream
        self.on_target = on_target
        self.targets: list[str] = []
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _one(self, client: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(4096)
            if not chunk:
                return
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        method, target = head.split(b"\r\n")[0].decode("latin-1").split(" ")[:2]
        self.targets.append(f"{method} {target}")
        if self.on_target is not None:
            self.on_target(f"{method} {target}")
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        port = self.upstream if self.upstream is not None else int(target.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            tunnel(client, upstream)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def tunnel(client: socket.socket, upstream: socket.socket, idle_s: float = 10.0) -> None:
    """Copy bytes both ways between two connected sockets (an HTTP proxy's CONNECT tunnel) until either side
    closes, errs (a refused certificate hangs up mid-stream) or both stay idle for `idle_s`."""
    import select

    ends = [client, upstream]
    try:
        while True:
            ready, _, _ = select.select(ends, [], [], idle_s)
            if not ready:
                return
            for end in ready:
                chunk = end.recv(65536)
                if not chunk:
                    return
                (upstream if end is client else client).sendall(chunk)
    except OSError:
        return
