"""The ACR backend against local stand-ins: Entra ID, the managed-identity endpoints and the registry.

Nothing here reaches the internet or 169.254.169.254. Entra ID and the managed-identity endpoints are
plain-HTTP servers on 127.0.0.1 (`AZURE_AUTHORITY_HOST`, `AZURE_POD_IDENTITY_AUTHORITY_HOST`). The
registry must be reached at `https://myreg.azurecr.io/oauth2/exchange` with the helper unchanged: a TLS
server holds a certificate for that name from a throw-away CA (`SSL_CERT_FILE`), and a small CONNECT
proxy on loopback (`https_proxy`) tunnels every CONNECT to it, which also shows that corporate proxies work.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from helper.backends import acr, entra
from helper.cache import TokenCache
from helper.hosts import parse
from helper.router import builtin_routes
from helper.tokens import Token
from tests.conftest import NOT_FOUND, call, get_in_fresh_process, run_helper
from tests.loopback import ConnectProxy, Loopback, QuietHandler

REGISTRY = "myreg.azurecr.io"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "very-secret-client-secret-value"
MI_TENANT = "mi-tenant-from-the-token"
ZERO_GUID = "00000000-0000-0000-0000-000000000000"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt(claims: dict[str, object]) -> str:
    """An unsigned JWT-shaped string (the helper reads claims without verifying)."""
    return ".".join([_b64(b'{"alg":"RS256","typ":"JWT"}'), _b64(json.dumps(claims).encode()), _b64(b"sig")])


class Seen:
    """One request a stand-in server received."""

    def __init__(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                 form: dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.form = form


class Azure:
    """What the stand-ins answer, and every request and CONNECT they saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.entra: list[Seen] = []
        self.mi: list[Seen] = []
        self.acr: list[Seen] = []
        self.connects: list[str] = []
        self.entra_status = 200
        self.exchange_status = 200
        self.exchange_redirect: str | None = None
        self.refresh_exp: float | None = time.time() + 3 * 3600
        self.arc_key_file = ""
        self.issued = 0

    def total(self) -> int:
        return len(self.entra) + len(self.mi) + len(self.acr) + len(self.connects)

    def next_number(self) -> int:
        with self.lock:
            self.issued += 1
            return self.issued


AZURE = Azure()


class _Handler(QuietHandler):
    protocol_version = "HTTP/1.1"

    def _seen(self) -> Seen:
        parts = urlsplit(self.path)
        body = self.body().decode("utf-8")
        return Seen(self.command, parts.path, dict(parse_qsl(parts.query)), {k.lower(): v for k, v in
                                                                            self.headers.items()},
                    dict(parse_qsl(body)))

    def answer(self, status: int, doc: object, headers: dict[str, str] | None = None) -> None:
        self.send(status, json.dumps(doc).encode("utf-8"), headers=headers)


class EntraHandler(_Handler):
    def do_POST(self) -> None:
        seen = self._seen()
        AZURE.entra.append(seen)
        if AZURE.entra_status != 200:  # Entra's shape; it echoes the secret to show the helper scrubs it
            self.answer(AZURE.entra_status, {
                "error": "invalid_client",
                "error_description": f"AADSTS7000215: Invalid client secret provided: "
                                     f"{seen.form.get('client_secret', '')}{seen.form.get('client_assertion', '')}"})
            return
        tenant = seen.path.split("/")[1]
        self.answer(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": jwt(
            {"tid": tenant, "aud": seen.form.get("scope"), "n": AZURE.next_number()})})


class ManagedIdentityHandler(_Handler):
    def do_GET(self) -> None:
        seen = self._seen()
        AZURE.mi.append(seen)
        if AZURE.arc_key_file and "authorization" not in seen.headers:
            self.answer(401, {"error": "unauthorized"}, {"WWW-Authenticate": f"Basic realm={AZURE.arc_key_file}"})
            return
        self.answer(200, {"token_type": "Bearer", "resource": seen.query.get("resource"), "expires_on": "1900000000",
                          "access_token": jwt({"tid": MI_TENANT, "n": AZURE.next_number()})})


class RegistryHandler(_Handler):
    def do_POST(self) -> None:
        seen = self._seen()
        AZURE.acr.append(seen)
        if AZURE.exchange_redirect:
            self.answer(302, {}, {"Location": AZURE.exchange_redirect})
        elif AZURE.exchange_status != 200:
            self.answer(AZURE.exchange_status, {"errors": [{"code": "INTERNAL", "message": "failed for "
                                                            + seen.form.get("access_token", "")}]})
        elif seen.path != "/oauth2/exchange":
            self.answer(404, {"errors": [{"code": "NOT_FOUND", "message": seen.path}]})
        else:
            claims: dict[str, object] = {"n": AZURE.next_number(), "aud": seen.form.get("service")}
            if AZURE.refresh_exp is not None:
                claims["exp"] = int(AZURE.refresh_exp)
            self.answer(200, {"refresh_token": jwt(claims)})


def make_ca(folder: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for `names`: (ca.pem, server.pem, server.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    end = start + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "switchboard test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem, cert_pem, key_pem = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return ca_pem, cert_pem, key_pem


class Servers:
    """The running stand-ins."""

    def __init__(self, entra: int, mi: int, registry: int, proxy: int, ca: Path) -> None:
        self.entra = f"http://127.0.0.1:{entra}"
        self.mi = f"http://127.0.0.1:{mi}"
        self.registry_port = registry
        self.proxy = f"http://127.0.0.1:{proxy}"
        self.ca = ca


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    ca, cert, key = make_ca(tmp_path_factory.mktemp("ca"), [REGISTRY, "myreg.azurecr.cn"])
    entra, mi = Loopback(EntraHandler), Loopback(ManagedIdentityHandler)
    registry = Loopback(RegistryHandler, tls=(cert, key))
    # every CONNECT, whatever it names, goes to the stand-in registry
    proxy = ConnectProxy(registry.port, on_target=lambda target: AZURE.connects.append(target))
    yield Servers(entra.port, mi.port, registry.port, proxy.port, ca)
    for server in (entra, mi, registry, proxy):
        server.close()


@pytest.fixture(autouse=True)
def no_real_identity_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a test that means no request cannot reach 169.254.169.254 or a real App Service endpoint."""
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")  # discard: nothing listens


@pytest.fixture
def azure(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> Iterator[Servers]:
    """Point the helper at the stand-ins, with no credential chosen yet; fresh request records."""
    AZURE.reset()
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", servers.entra)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", servers.mi)  # never 169.254.169.254
    monkeypatch.setenv("https_proxy", servers.proxy)
    monkeypatch.setenv("HTTPS_PROXY", servers.proxy)
    monkeypatch.setenv("SSL_CERT_FILE", str(servers.ca))
    yield servers
    AZURE.reset()


@pytest.fixture
def client_secret(azure: Servers, monkeypatch: pytest.MonkeyPatch) -> Servers:
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CLIENT_SECRET)
    return azure


def rows(resolved: str) -> dict[str, str]:
    """`resolve` output as {label: value} (labels are padded to the widest one)."""
    return {line.split("  ", 1)[0].strip(): line.split("  ", 1)[1].strip() for line in resolved.splitlines()}


def cache_folder() -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "docker-credential-switchboard"


def cached_tokens() -> list[tuple[str, str, Token]]:
    return TokenCache().entries()


# ---- the flows ----------------------------------------------------------------------------------------------


def test_client_secret_flow_end_to_end_through_the_executable(client_secret: Servers) -> None:
    result = run_helper("get", REGISTRY, env=dict(os.environ))
    assert (result.code, result.err) == (0, "")
    answer = result.json()
    assert answer["ServerURL"] == REGISTRY and answer["Username"] == ZERO_GUID

    [entra] = AZURE.entra
    assert entra.method == "POST" and entra.path == f"/{TENANT}/oauth2/v2.0/token"
    assert entra.form == {"grant_type": "client_credentials", "client_id": CLIENT_ID,
                          "client_secret": CLIENT_SECRET, "scope": "https://management.azure.com/.default"}
    # the exchange went through the proxy to exactly the registry the route matched, over verified TLS
    assert AZURE.connects == [f"CONNECT {REGISTRY}:443"]
    [exchange] = AZURE.acr
    assert exchange.path == "/oauth2/exchange" and exchange.headers["host"] == REGISTRY
    assert set(exchange.form) == {"grant_type", "service", "tenant", "access_token"}
    assert exchange.form["grant_type"] == "access_token"
    assert exchange.form["service"] == REGISTRY
    assert exchange.form["tenant"] == TENANT
    assert acr.jwt_claims(exchange.form["access_token"])["tid"] == TENANT  # the token Entra issued
    assert AZURE.mi == []

    # the secret is the refresh token, cached until its JWT `exp`
    assert acr.jwt_claims(answer["Secret"])["aud"] == REGISTRY
    [(server, _, token)] = cached_tokens()
    assert server == REGISTRY and token.secret == answer["Secret"]
    assert AZURE.refresh_exp is not None and token.expires_at == int(AZURE.refresh_exp)
    assert run_helper("list", None, env=dict(os.environ)).json() == {REGISTRY: ZERO_GUID}


def test_a_cache_hit_makes_no_request_and_imports_no_network_code(client_secret: Servers) -> None:
    first = call("get", REGISTRY).json()
    assert (len(AZURE.entra), len(AZURE.acr)) == (1, 1)
    assert call("get", REGISTRY).json() == first
    assert call("get", f"https://{REGISTRY}/v2/").json()["Secret"] == first["Secret"]
    assert call("get", f"{REGISTRY}/team/image").json()["Secret"] == first["Secret"]  # one token per registry
    assert (len(AZURE.entra), len(AZURE.acr), len(AZURE.connects)) == (1, 1, 1)

    # In a fresh process: the acr module is imported (actions picks the backend before the cache answers),
    # but a cache hit never loads urllib (parse or request), http.client or ssl.
    code, out, modules = get_in_fresh_process(REGISTRY)
    network = [m for m in ("urllib.parse", "urllib.request", "http.client", "ssl") if m in modules]
    assert (code, "helper.backends.acr" in modules, network) == (0, True, []), out
    assert len(AZURE.acr) == 1


def test_federated_token_file_is_read_fresh_for_every_request(azure: Servers, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("federated-assertion-one\n")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    assert call("get", REGISTRY).json()["Username"] == ZERO_GUID
    token_file.write_text("federated-assertion-two")  # the kubelet rotated it
    shutil.rmtree(cache_folder())
    assert call("get", REGISTRY).code == 0
    assert [seen.form for seen in AZURE.entra] == [
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "scope": "https://management.azure.com/.default",
         "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
         "client_assertion": assertion} for assertion in ("federated-assertion-one", "federated-assertion-two")]
    assert all(seen.form["tenant"] == TENANT for seen in AZURE.acr)


def test_managed_identity_through_imds(azure: Servers, routes: Path) -> None:
    assert call("get", REGISTRY).json()["Username"] == ZERO_GUID
    [seen] = AZURE.mi
    assert seen.method == "GET" and seen.path == "/metadata/identity/oauth2/token"
    assert seen.headers["metadata"] == "true"
    assert seen.query == {"api-version": "2018-02-01", "resource": "https://management.azure.com"}
    assert AZURE.entra == []
    [exchange] = AZURE.acr
    assert exchange.form["tenant"] == MI_TENANT  # not configured: the token's own tenant
    assert acr.jwt_claims(exchange.form["access_token"])["tid"] == MI_TENANT

    # a user-assigned identity, chosen by the route (its own cache entry)
    routes.write_text(f'[[route]]\nmatch = "{REGISTRY}"\nbackend = "acr"\nclient_id = "mi-client"\n')
    assert call("get", REGISTRY).code == 0
    assert AZURE.mi[1].query["client_id"] == "mi-client"
    assert len(cached_tokens()) == 2


def test_managed_identity_app_service_form(azure: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{azure.mi}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "app-service-header-secret")
    monkeypatch.setenv("AZURE_CLIENT_ID", "user-assigned")
    assert call("get", REGISTRY).code == 0
    [seen] = AZURE.mi
    assert seen.path == "/msi/token" and seen.headers["x-identity-header"] == "app-service-header-secret"
    assert seen.query == {"api-version": "2019-08-01", "resource": "https://management.azure.com",
                          "client_id": "user-assigned"}
    assert "app-service-header-secret" not in call(["resolve", REGISTRY]).out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Arc key folder is checked on Linux")
def test_managed_identity_azure_arc_challenge(azure: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "azcmagent-tokens"
    folder.mkdir()
    key = folder / "0123.key"
    key.write_text("arc-challenge-key")
    monkeypatch.setattr(entra, "ARC_KEY_DIR_LINUX", str(folder))
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{azure.mi}/metadata/identity/oauth2/token")
    monkeypatch.setenv("IMDS_ENDPOINT", azure.mi)
    AZURE.arc_key_file = str(key)
    assert call("get", REGISTRY).code == 0
    assert [seen.headers.get("authorization") for seen in AZURE.mi] == [None, "Basic arc-challenge-key"]
    assert AZURE.mi[0].query["api-version"] == "2020-06-01"

    # a challenge naming a file outside the agent's folder is refused: that file is never sent anywhere
    outside = tmp_path / "elsewhere.key"
    outside.write_text("not-for-arc")
    AZURE.reset()
    AZURE.arc_key_file = str(outside)
    shutil.rmtree(cache_folder())
    assert call("get", REGISTRY).out == NOT_FOUND + "\n"
    assert len(AZURE.mi) == 1 and AZURE.acr == []


def test_azure_china_registry_gets_the_china_scope_and_its_own_exchange(client_secret: Servers) -> None:
    assert call("get", "myreg.azurecr.cn").json()["Username"] == ZERO_GUID
    assert AZURE.entra[0].form["scope"] == "https://management.chinacloudapi.cn/.default"
    assert AZURE.connects == ["CONNECT myreg.azurecr.cn:443"]
    assert AZURE.acr[0].form["service"] == "myreg.azurecr.cn" and AZURE.acr[0].headers["host"] == "myreg.azurecr.cn"


def test_route_parameters_choose_tenant_client_and_scope(client_secret: Servers, routes: Path) -> None:
    routes.write_text(f'[[route]]\nmatch = "{REGISTRY}"\nbackend = "acr"\ntenant = "route-tenant"\n'
                      'client_id = "route-client"\nscope = "https://containerregistry.azure.net/.default"\n')
    assert call("get", REGISTRY).code == 0
    [entra] = AZURE.entra
    assert entra.path == "/route-tenant/oauth2/v2.0/token"
    assert (entra.form["client_id"], entra.form["scope"]) == ("route-client",
                                                              "https://containerregistry.azure.net/.default")
    assert AZURE.acr[0].form["tenant"] == "route-tenant"


# ---- failures -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["entra-401", "exchange-500"])
def test_a_failure_is_the_exact_not_found_through_the_executable(client_secret: Servers, failure: str) -> None:
    if failure == "entra-401":
        AZURE.entra_status = 401
    else:
        AZURE.exchange_status = 500
    result = run_helper("get", REGISTRY, env=dict(os.environ))
    assert (result.code, result.out, result.err) == (1, NOT_FOUND + "\n", "")
    assert len(AZURE.entra) == 1 and len(AZURE.acr) == (0 if failure == "entra-401" else 1)
    assert cached_tokens() == []


@pytest.mark.parametrize("failure", ["entra-401", "exchange-500", "success"])
def test_debug_output_says_why_and_never_carries_a_secret(client_secret: Servers, tmp_path: Path,
                                                          failure: str) -> None:
    AZURE.entra_status = 401 if failure == "entra-401" else 200
    AZURE.exchange_status = 500 if failure == "exchange-500" else 200
    log_file = tmp_path / "switchboard.log"
    env = dict(os.environ, SWITCHBOARD_DEBUG="1", SWITCHBOARD_LOG=str(log_file))
    result = run_helper("get", REGISTRY, env=env)
    resolved = run_helper(["resolve", REGISTRY], None, env=env)
    sent = [seen.form.get("access_token", "") for seen in AZURE.acr]
    logged = log_file.read_text() if log_file.exists() else ""  # a success logs nothing
    for text in (result.err, logged, resolved.out, resolved.err):
        assert CLIENT_SECRET not in text
        for token in sent:
            assert token not in text
    if failure == "entra-401":
        assert "HTTP 401" in result.err and "invalid_client" in result.err and "AADSTS7000215" in result.err
    elif failure == "exchange-500":
        assert "ACR token exchange" in result.err and "HTTP 500" in result.err and "INTERNAL" in result.err
    else:
        assert result.code == 0 and result.json()["Secret"] not in result.err


def test_lookalike_hosts_never_reach_any_server(client_secret: Servers) -> None:
    for key in (f"{REGISTRY}.evil.example", f"https://{REGISTRY}@evil.example", f"{REGISTRY}@evil.example",
                "evil.example/myreg.azurecr.io", "MYREG.azurecr.io", f"{REGISTRY}."):
        assert call("get", key).out == NOT_FOUND + "\n", key
        assert rows(call(["resolve", key]).out)["backend"] == "store", key
    assert AZURE.total() == 0


def test_the_registry_certificate_is_verified(client_secret: Servers, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))  # the throw-away CA is unknown
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    assert call("get", REGISTRY).out == NOT_FOUND + "\n"
    assert AZURE.connects == [f"CONNECT {REGISTRY}:443"] and AZURE.acr == []


def test_a_redirect_from_the_exchange_is_not_followed(client_secret: Servers) -> None:
    AZURE.exchange_redirect = f"{client_secret.mi}/steal"
    assert call("get", REGISTRY).out == NOT_FOUND + "\n"
    assert len(AZURE.acr) == 1 and AZURE.mi == []


def test_incomplete_configuration_makes_no_request(azure: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    out = call(["resolve", REGISTRY]).out
    assert "AZURE_CLIENT_SECRET is set but no tenant" in out and CLIENT_SECRET not in out
    assert call("get", REGISTRY).out == NOT_FOUND + "\n"
    monkeypatch.setenv("AZURE_TENANT_ID", "../../evil")
    assert call("get", REGISTRY).out == NOT_FOUND + "\n"
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "http://login.example")  # a secret over plain http: refused
    assert call("get", REGISTRY).out == NOT_FOUND + "\n"
    assert AZURE.total() == 0


def test_a_failed_refresh_in_the_advisory_window_serves_the_still_valid_token(client_secret: Servers) -> None:
    backend = acr.AcrBackend(builtin_routes()[-1], TokenCache())
    assert backend.kind == "acr"
    key = parse(REGISTRY)
    now = time.time()
    TokenCache().write(backend.cache_key(key), Token(ZERO_GUID, "still-valid", now + 600, now - 3 * 3600), REGISTRY)
    AZURE.exchange_status = 500
    assert call("get", REGISTRY).json()["Secret"] == "still-valid"
    assert (len(AZURE.entra), len(AZURE.acr)) == (1, 1)  # a refresh was tried, and failed quietly
    AZURE.exchange_status = 200
    assert call("get", REGISTRY).json()["Secret"] != "still-valid"


# ---- resolve, clouds, expiry --------------------------------------------------------------------------------


@pytest.mark.parametrize("host, authority, scope", [
    ("myreg.azurecr.io", "https://login.microsoftonline.com", "https://management.azure.com/.default"),
    ("myreg.azurecr.cn", "https://login.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default"),
    ("myreg.azurecr.us", "https://login.microsoftonline.us", "https://management.usgovcloudapi.net/.default"),
])
def test_resolve_names_the_cloud_and_credential_without_a_secret(
        monkeypatch: pytest.MonkeyPatch, host: str, authority: str, scope: str) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CLIENT_SECRET)
    out = call(["resolve", host]).out
    assert CLIENT_SECRET not in out
    got = rows(out)
    assert got["backend"] == "acr"
    assert got["azure credential"] == "client secret (AZURE_CLIENT_SECRET)"
    assert (got["tenant"], got["client id"], got["authority"], got["scope"]) == (TENANT, CLIENT_ID, authority, scope)
    assert got["exchange"] == f"https://{host}/oauth2/exchange (service {host})"
    assert got["cached token"].startswith("none")


def test_resolve_names_a_managed_identity() -> None:
    out = call(["resolve", REGISTRY]).out
    assert "managed identity, instance metadata service http://127.0.0.1:9/metadata/identity/oauth2/token" in out
    assert "(system-assigned identity)" in out


def test_expiry_is_the_jwt_exp_else_three_hours() -> None:
    assert acr.expiry(jwt({"exp": 1_900_000_000}), 1000.0) == 1_900_000_000
    assert acr.expiry("opaque-refresh-token", 1000.0) == 1000.0 + 3 * 3600
    assert acr.expiry("a.!!!.c", 1000.0) == 1000.0 + 3 * 3600
    assert acr.expiry(jwt({"exp": "soon"}), 1000.0) == 1000.0 + 3 * 3600
    assert acr.jwt_claims(jwt({"tid": "t"})) == {"tid": "t"}


def test_a_refresh_token_without_exp_is_cached_for_three_hours(client_secret: Servers) -> None:
    AZURE.refresh_exp = None
    before = time.time()
    assert call("get", REGISTRY).code == 0
    [(_, _, token)] = cached_tokens()
    assert token.expires_at is not None
    assert before + 3 * 3600 - 5 <= token.expires_at <= time.time() + 3 * 3600


def test_authority_host_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "login.microsoftonline.de/")
    assert acr.authority_for(REGISTRY) == "https://login.microsoftonline.de"
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "http://[::1]:8080")
    assert acr.authority_for(REGISTRY) == "http://[::1]:8080"
    for bad in ("http://login.example", "https://user@login.example", "ftp://login.example",
                "https://login.example:port", "https://", "https://login.example?x=1"):
        monkeypatch.setenv("AZURE_AUTHORITY_HOST", bad)
        with pytest.raises(acr.TokenHttpError):
            acr.authority_for(REGISTRY)

