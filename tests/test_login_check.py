"""`login` checks the credentials against the registry before it stores them (issue 11.4), as `docker login` does.

Real `docker-registry` servers on loopback: htpasswd over plain http and over TLS (a throw-away CA, trusted
through SSL_CERT_FILE), and `auth: token` with a small token server (tests/registry.py TokenServer, RS256 JWTs
the registry verifies against its rootcertbundle). Small http.server fakes cover what a real registry never
answers (anonymous 200, a redirect, a plain-http realm).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import NOT_FOUND, Result, call, get_in_fresh_process, require_tool, run_helper
from tests.registry import Registry, TokenRegistry, TokenServer, free_port, make_ca_and_leaf, write_htpasswd

USER, PASSWORD, WRONG = "checkuser", "check-Pa55-Zq81", "not-the-password"


@dataclass
class Lab:
    plain: Registry
    tls: Registry
    token: TokenRegistry
    ca: Path


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    for tool in ("docker-registry", "htpasswd", "openssl"):
        require_tool(tool)
    root = tmp_path_factory.mktemp("login-check")
    htpasswd = write_htpasswd(root / "htpasswd", {USER: PASSWORD})
    tls = make_ca_and_leaf(root / "tls")
    server = TokenServer(root / "token", {USER: PASSWORD})
    registries = [Registry("plain", root / "plain", htpasswd), Registry("tls", root / "tls-registry", htpasswd, tls),
                  TokenRegistry("token", root / "token-registry", server)]
    try:
        for registry in registries:
            registry.start()
        plain, tls_registry, token = registries
        assert isinstance(token, TokenRegistry)
        yield Lab(plain, tls_registry, token, tls[0])
    finally:
        for registry in registries:
            registry.stop()
        server.close()


@pytest.fixture
def trusted(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """The lab, with its test CA trusted the way a user trusts a private CA: SSL_CERT_FILE."""
    monkeypatch.setenv("SSL_CERT_FILE", str(lab.ca))
    return lab


def login(host: str, password: str, *flags: str) -> Result:
    return call(["login", host, "-u", USER, "--password-stdin", *flags], password + "\n")


def stored(host: str) -> str | None:
    got = call("get", host)
    if got.code != 0:
        assert got.out == NOT_FOUND + "\n"
        return None
    secret = got.json()["Secret"]
    assert isinstance(secret, str)
    return secret


def one_line(result: Result) -> str:
    assert result.code == 1 and result.out.count("\n") == 1, result.out
    assert PASSWORD not in result.out and WRONG not in result.out
    return result.out.rstrip("\n")


@pytest.mark.parametrize("which", ["plain", "tls", "token"])
def test_right_password_is_checked_then_stored(trusted: Lab, which: str) -> None:
    registry = getattr(trusted, which)
    result = login(registry.host, PASSWORD)
    auth = "bearer" if which == "token" else "basic"
    assert (result.code, result.out) == (0, f"{registry.host} accepted the credentials ({auth}, {registry.scheme}).\n"
                                            f"Stored credentials for {registry.host} (user {USER}).\n")
    assert stored(registry.host) == PASSWORD


@pytest.mark.parametrize("which", ["plain", "tls", "token"])
def test_wrong_password_stores_nothing_and_keeps_what_was_there(trusted: Lab, which: str) -> None:
    registry = getattr(trusted, which)
    assert one_line(login(registry.host, WRONG)) == f"login: {registry.host} refused the credentials (401): " \
                                                    "nothing stored"
    assert stored(registry.host) is None
    assert login(registry.host, PASSWORD).code == 0
    assert one_line(login(registry.host, WRONG)).endswith("refused the credentials (401): nothing stored")
    assert stored(registry.host) == PASSWORD  # unchanged


def test_token_service_is_asked_for_the_challenge_service_with_the_account(trusted: Lab) -> None:
    server = trusted.token.server
    before = len(server.requests)
    assert login(trusted.token.host, PASSWORD).code == 0
    path, query, had_auth = server.requests[before]
    assert path == "/token" and had_auth
    assert query["service"] == [TokenServer.SERVICE] and query["account"] == [USER]


def test_tls_registry_with_an_untrusted_ca_stores_nothing_unless_insecure(lab: Lab) -> None:
    line = one_line(login(lab.tls.host, PASSWORD))
    assert line.startswith(f"login: {lab.tls.host} is unreachable (TLS certificate not trusted")
    assert "SSL_CERT_FILE" in line and line.endswith("nothing stored (--no-verify stores without checking)")
    assert stored(lab.tls.host) is None
    done = login(lab.tls.host, PASSWORD, "--insecure")
    assert done.code == 0 and done.out.startswith(f"{lab.tls.host} accepted the credentials (basic, https).")
    assert stored(lab.tls.host) == PASSWORD


def test_unreachable_registry_stores_nothing_unless_no_verify() -> None:
    host = f"127.0.0.1:{free_port()}"
    line = one_line(login(host, PASSWORD))
    assert line == f"login: {host} is unreachable (Connection refused): nothing stored " \
                   "(--no-verify stores without checking)"
    assert stored(host) is None
    assert login(host, PASSWORD, "--no-verify").out == f"Stored credentials for {host} (user {USER}).\n"
    assert stored(host) == PASSWORD


# -- what a real registry does not answer: small fakes ---------------------------------------------------------
class Fake:
    """A loopback http server answering GET with `answer(path, authorization) -> (status, headers, body)`."""

    def __init__(self, answer: Callable[[str, str | None], tuple[int, dict[str, str], bytes]]) -> None:
        self.seen: list[tuple[str, str | None]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                authorization = self.headers.get("Authorization")
                fake.seen.append((self.path, authorization))
                status, headers, body = answer(self.path, authorization)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[Callable[..., Fake]]:
    made: list[Fake] = []

    def make(answer: Callable[[str, str | None], tuple[int, dict[str, str], bytes]]) -> Fake:
        made.append(Fake(answer))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_anonymous_registry_stores_and_says_it_did_not_ask(fake: Callable[..., Fake]) -> None:
    server = fake(lambda path, auth: (200, {}, b"{}"))
    done = login(server.host, PASSWORD)
    assert done.code == 0 and done.out.splitlines() == [
        f"{server.host} did not ask for credentials (GET /v2/ answered 200 without them); storing them unchecked.",
        f"Stored credentials for {server.host} (user {USER})."]
    assert all(auth is None for _, auth in server.seen)  # the credentials were never sent
    assert stored(server.host) == PASSWORD


def test_a_redirect_is_not_followed_and_stores_nothing(fake: Callable[..., Fake]) -> None:
    elsewhere = fake(lambda path, auth: (200, {}, b"{}"))
    server = fake(lambda path, auth: (302, {"Location": f"http://{elsewhere.host}/v2/"}, b""))
    line = one_line(login(server.host, PASSWORD))
    assert line.startswith(f"login: {server.host}: GET /v2/ answered a redirect (302), not followed")
    assert elsewhere.seen == [] and stored(server.host) is None


def test_credentials_never_go_to_a_plain_http_realm_off_loopback(fake: Callable[..., Fake]) -> None:
    challenge = 'Bearer realm="http://token.example.invalid/token",service="s"'
    server = fake(lambda path, auth: (401, {"WWW-Authenticate": challenge}, b""))
    line = one_line(login(server.host, PASSWORD))
    assert "is plain http: credentials are sent to it over https only" in line and line.endswith(
        "nothing stored (--no-verify stores without checking)")
    assert all(auth is None for _, auth in server.seen) and stored(server.host) is None


def test_not_a_registry_stores_nothing(fake: Callable[..., Fake]) -> None:
    server = fake(lambda path, auth: (404, {}, b"no"))
    assert one_line(login(server.host, PASSWORD)) == f"login: {server.host}: GET /v2/ answered 404: is this a " \
                                                     "registry?: nothing stored (--no-verify stores without checking)"


def test_the_real_executable_checks_too(trusted: Lab) -> None:
    import os

    env = dict(os.environ)
    wrong = run_helper(["login", trusted.token.host, "-u", USER, "--password-stdin"], WRONG, env=env)
    refused = f"login: {trusted.token.host} refused the credentials (401): nothing stored\n"
    assert (wrong.code, wrong.out) == (1, refused)
    assert WRONG not in wrong.err
    right = run_helper(["login", trusted.tls.host, "-u", USER, "--password-stdin"], PASSWORD, env=env)
    assert right.code == 0, right.out
    got = run_helper("get", trusted.tls.host, env=env)
    assert json.loads(got.out)["Secret"] == PASSWORD


def test_a_get_never_imports_the_check() -> None:
    assert call(["login", "hot.example", "-u", USER, "--password-stdin", "--no-verify"], PASSWORD).code == 0
    import os

    code, _out, modules = get_in_fresh_process("hot.example", env=dict(os.environ))
    assert code == 0 and "helper.registry_check" not in modules and "urllib.request" not in modules
