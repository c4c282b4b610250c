"""The gcp backend against a loopback stand-in for Google: an OAuth token endpoint (a service-account key
file's `token_uri`), the IAM Credentials API (impersonation) and a GCE metadata server, counting requests.

Nothing here reaches Google or a real metadata address: conftest points GCE_METADATA_HOST/GCE_METADATA_IP at a
closed loopback port and CLOUDSDK_CONFIG at the test's HOME, and these tests point them at the fake.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from helper.backends import google_pod
from tests.conftest import NOT_FOUND, call, get_in_fresh_process, run_helper
from tests.loopback import Loopback, QuietHandler

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
SA_EMAIL = "builder@fake-project.iam.gserviceaccount.com"
TARGET = "pusher@fake-project.iam.gserviceaccount.com"
VM_EMAIL = "vm@fake-project.iam.gserviceaccount.com"
GCP_HOSTS = ("gcr.io", "eu.gcr.io", "us-central1-docker.pkg.dev", "docker.us-central1.rep.pkg.dev")


class FakeGoogle(Loopback):
    """Token endpoint (/token), IAM generateAccessToken and the metadata server, on one loopback port.

    Tunables: `lifetime` (expires_in), `mode` of the token endpoint (ok | 500 | 503 | unavailable | garbage |
    bad-expiry | denied) and `first`, modes it answers before that,
    `iam_mode` of the IAM endpoint (ok | bad-expiry), `delay` of the token endpoint and `ping_delay` of the
    metadata ping.
    """

    def __init__(self) -> None:
        self.lifetime = 3600
        self.mode = "ok"
        self.first: list[str] = []  # modes the token endpoint answers first, one per request, before `mode`
        self.iam_mode = "ok"
        self.delay = 0.0
        self.ping_delay = 0.0
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []  # method, path, headers, body
        self.issued = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def _handle(self, method: str) -> None:
                body = self.body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._lock:
                    fake.requests.append((method, self.path, headers, body))
                path = urlsplit(self.path).path
                if path == "/token":
                    self._token(body)
                elif path == "/sts":
                    self._sts(body)
                elif path.startswith("/v1/projects/-/serviceAccounts/"):
                    self._iam(path, headers)
                elif path == "/" or path.startswith("/computeMetadata/"):
                    self._metadata(path, headers)
                else:
                    self._send(404, b"not found", "text/plain")

            def _serial(self) -> int:
                with fake._lock:
                    fake.issued += 1
                    return fake.issued

            def _token(self, body: bytes) -> None:
                time.sleep(fake.delay)
                with fake._lock:
                    mode = fake.first.pop(0) if fake.first else fake.mode
                if mode == "500":
                    self._send(500, b'{"error": "server_error"}')
                elif mode == "503":
                    self._send(503, b"<html>Service Unavailable</html>", "text/html")
                elif mode == "unavailable":
                    self._send(400, b'{"error": "temporarily_unavailable"}')
                elif mode == "garbage":
                    self._send(200, b"<html>not json</html>", "text/html")
                elif mode == "denied":
                    self._send(400, b'{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}')
                elif mode == "bad-expiry":
                    self._send(200, b'{"access_token": "leaky-token", "expires_in": "soon", "token_type": "Bearer"}')
                else:
                    grant = parse_qs(body.decode())["grant_type"][0]
                    prefix = "user-token" if grant == "refresh_token" else "sa-token"
                    self._send(200, json.dumps({"access_token": f"{prefix}-{self._serial()}",
                                                "expires_in": fake.lifetime, "token_type": "Bearer"}).encode())

            def _sts(self, body: bytes) -> None:
                form = parse_qs(body.decode())
                if form.get("subject_token") != ["oidc-subject-token"]:
                    self._send(400, b'{"error": "invalid_grant"}')
                    return
                self._send(200, json.dumps({
                    "access_token": f"wif-token-{self._serial()}", "expires_in": fake.lifetime,
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer"}).encode())

            def _iam(self, path: str, headers: dict[str, str]) -> None:
                if not headers.get("authorization", "").startswith(("Bearer sa-token-", "Bearer wif-token-")):
                    self._send(401, b'{"error": {"code": 401, "message": "unauthenticated"}}')
                    return
                expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + fake.lifetime))
                if fake.iam_mode == "bad-expiry":
                    expires = "tomorrow"
                self._send(200, json.dumps({"accessToken": f"imp-token-{self._serial()}",
                                            "expireTime": expires}).encode())

            def _metadata(self, path: str, headers: dict[str, str]) -> None:
                if headers.get("metadata-flavor") != "Google":
                    self._send(403, b"Missing Metadata-Flavor: Google header", "text/plain")
                    return
                if path == "/":
                    time.sleep(fake.ping_delay)
                    self._send(200, b"computeMetadata/\n", "application/text")
                elif path == "/computeMetadata/v1/project/project-id":
                    self._send(200, b"fake-project", "application/text")
                elif path == "/computeMetadata/v1/instance/service-accounts/default/":
                    self._send(200, json.dumps({"aliases": ["default"], "email": VM_EMAIL,
                                                "scopes": [CLOUD_PLATFORM]}).encode())
                elif path == "/computeMetadata/v1/instance/service-accounts/default/token":
                    self._send(200, json.dumps({"access_token": f"mds-token-{self._serial()}",
                                                "expires_in": fake.lifetime, "token_type": "Bearer"}).encode())
                else:
                    self._send(404, b"not found", "text/html")

            def _send(self, code: int, data: bytes, content_type: str = "application/json") -> None:
                self.send(code, data, content_type, {"Metadata-Flavor": "Google"})

        super().__init__(Handler)

    def paths(self, prefix: str = "") -> list[str]:
        """Paths requested so far (optionally only those starting with `prefix`)."""
        with self._lock:
            return [urlsplit(p).path for _, p, _, _ in self.requests if urlsplit(p).path.startswith(prefix)]

    def count(self, prefix: str) -> int:
        return len(self.paths(prefix))

    def bodies(self, prefix: str) -> list[bytes]:
        with self._lock:
            return [b for _, p, _, b in self.requests if urlsplit(p).path.startswith(prefix)]


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    server = FakeGoogle()
    yield server
    server.close()


@pytest.fixture
def key_file(tmp_path: Path, fake: FakeGoogle, private_key_pem: str) -> Path:
    """A service-account key file whose token_uri is the fake."""
    path = tmp_path / "sa-key.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "fake-project", "private_key_id": "0123456789abcdef",
        "private_key": private_key_pem, "client_email": SA_EMAIL, "client_id": "1234567890",
        "token_uri": f"{fake.url}/token"}))
    return path


@pytest.fixture
def with_key(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    return key_file


def cache_entries() -> list[Path]:
    return sorted((Path(os.environ["XDG_CACHE_HOME"]) / "docker-credential-switchboard").glob("gcp*.json"))


def jwt_claims(body: bytes) -> dict[str, object]:
    """The claims of the JWT assertion a service account posts to the token endpoint."""
    form = parse_qs(body.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    payload = form["assertion"][0].split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def get(host: str) -> dict[str, str]:
    result = call("get", host)
    assert result.code == 0, result.out
    answer: dict[str, str] = result.json()
    return answer


def test_every_gcp_host_gets_the_service_account_token_from_one_request(fake: FakeGoogle, with_key: Path) -> None:
    assert get("gcr.io") == {"ServerURL": "gcr.io", "Username": "oauth2accesstoken", "Secret": "sa-token-1"}
    assert fake.count("/token") == 1
    claims = jwt_claims(fake.bodies("/token")[0])
    assert claims["iss"] == SA_EMAIL and claims["scope"] == CLOUD_PLATFORM
    for host in (*GCP_HOSTS, "gcr.io", "https://eu.gcr.io"):
        answer = get(host)
        assert (answer["Username"], answer["Secret"]) == ("oauth2accesstoken", "sa-token-1")
    assert fake.count("/token") == 1  # one token per route identity, not per host
    assert len(cache_entries()) == 1


def test_the_cached_expiry_is_googles(fake: FakeGoogle, with_key: Path) -> None:
    fake.lifetime = 1234
    before = time.time()
    get("gcr.io")
    doc = json.loads(cache_entries()[0].read_text())
    assert before + 1234 - 5 <= doc["expires_at"] <= time.time() + 1234 + 5
    assert doc["username"] == "oauth2accesstoken" and doc["key"].startswith("gcp|built-in|scopes=") \
        and f"|creds=file:{with_key}|service_account:{SA_EMAIL}|" in doc["key"]


def test_route_scopes_are_requested_and_are_a_separate_identity(fake: FakeGoogle, with_key: Path,
                                                                routes: Path) -> None:
    read_only = "https://www.googleapis.com/auth/devstorage.read_only"
    routes.write_text(f'[[route]]\nmatch = "*.gcr.io"\nbackend = "gcp"\nscopes = ["{read_only}"]\n')
    assert get("eu.gcr.io")["Secret"] == "sa-token-1"
    assert jwt_claims(fake.bodies("/token")[0])["scope"] == read_only
    assert get("us.gcr.io")["Secret"] == "sa-token-1"
    assert get("gcr.io")["Secret"] == "sa-token-2"  # the built-in route: cloud-platform, its own token
    assert jwt_claims(fake.bodies("/token")[1])["scope"] == CLOUD_PLATFORM
    assert fake.count("/token") == 2


@pytest.mark.parametrize(("left", "lifetime"), [(60, 3600), (-10, 3600)], ids=["expiring", "expired"])
def test_a_near_expiry_or_expired_token_is_refreshed(fake: FakeGoogle, with_key: Path, left: int,
                                                     lifetime: int) -> None:
    assert get("gcr.io")["Secret"] == "sa-token-1"
    entry = cache_entries()[0]
    doc = json.loads(entry.read_text())
    doc["expires_at"], doc["obtained_at"] = time.time() + left, time.time() + left - lifetime
    entry.write_text(json.dumps(doc))
    assert get("us-central1-docker.pkg.dev")["Secret"] == "sa-token-2"
    assert get("gcr.io")["Secret"] == "sa-token-2"
    assert fake.count("/token") == 2


def test_a_stale_token_survives_a_token_endpoint_outage(fake: FakeGoogle, with_key: Path) -> None:
    get("gcr.io")
    entry = cache_entries()[0]
    doc = json.loads(entry.read_text())
    # 10 minutes left of an hour: inside the advisory window, outside the mandatory one
    doc["expires_at"], doc["obtained_at"] = time.time() + 600, time.time() - 3000
    entry.write_text(json.dumps(doc))
    fake.mode = "denied"
    assert get("gcr.io")["Secret"] == "sa-token-1"
    assert fake.count("/token") == 2  # it did try
    fake.mode = "ok"
    assert get("gcr.io")["Secret"] == "sa-token-2"


def test_a_short_lived_token_is_fresh_then_refreshed(fake: FakeGoogle, with_key: Path) -> None:
    fake.lifetime = 2  # the token endpoint says 2 s: past its half-life the next get refreshes
    assert get("gcr.io")["Secret"] == "sa-token-1"
    time.sleep(2.2)
    assert get("gcr.io")["Secret"] == "sa-token-2"


def test_the_metadata_server_is_used_without_a_key_file(fake: FakeGoogle) -> None:
    env = dict(os.environ, GCE_METADATA_HOST=fake.address, GCE_METADATA_IP=fake.address)
    result = run_helper("get", "europe-west1-docker.pkg.dev", env=env)
    assert (result.code, result.err) == (0, ""), result.out + result.err
    assert json.loads(result.out) == {"ServerURL": "europe-west1-docker.pkg.dev", "Username": "oauth2accesstoken",
                                      "Secret": "mds-token-1"}
    assert fake.count("/token") == 0
    token_requests = [(p, h) for _, p, h, _ in fake.requests
                      if urlsplit(p).path.endswith("/service-accounts/default/token")]
    assert len(token_requests) == 1
    assert parse_qs(urlsplit(token_requests[0][0]).query)["scopes"] == [CLOUD_PLATFORM]
    assert all(h.get("metadata-flavor") == "Google" for _, _, h, _ in fake.requests)
    assert all(p == "/" or p.startswith("/computeMetadata/v1/") for p in fake.paths())  # only the metadata server
    before = len(fake.requests)
    again = run_helper("get", "gcr.io", env=env)
    assert json.loads(again.out)["Secret"] == "mds-token-1"
    assert len(fake.requests) == before  # served from the cache


def test_no_credentials_anywhere_is_a_quick_quiet_not_found() -> None:
    env = dict(os.environ)  # conftest: no key file, no gcloud ADC file, metadata on a closed port
    started = time.monotonic()
    result = run_helper("get", "gcr.io", env=env)
    assert (result.code, result.out, result.err) == (1, NOT_FOUND + "\n", "")
    assert time.monotonic() - started < 10
    debug = run_helper("get", "gcr.io", env=dict(env, SWITCHBOARD_DEBUG="1"))
    assert debug.out == NOT_FOUND + "\n"
    assert "gcp token for gcr.io failed" in debug.err and "no metadata server answers at 127.0.0.1:9" in debug.err


def test_a_metadata_server_that_does_not_answer_the_ping_is_given_up_quickly(fake: FakeGoogle) -> None:
    fake.ping_delay = 8  # google-auth would wait 3 x 3 s plus back-off
    env = dict(os.environ, GCE_METADATA_HOST=fake.address, GCE_METADATA_IP=fake.address)
    started = time.monotonic()
    result = run_helper("get", "gcr.io", env=env)
    assert (result.code, result.out, result.err) == (1, NOT_FOUND + "\n", "")
    assert time.monotonic() - started < 6
    assert fake.count("/") == 1


@pytest.mark.parametrize("mode", ["500", "garbage", "bad-expiry", "denied"])
def test_a_broken_token_endpoint_is_a_quiet_not_found(fake: FakeGoogle, key_file: Path, private_key_pem: str,
                                                      mode: str) -> None:
    fake.mode = mode
    env = dict(os.environ, GOOGLE_APPLICATION_CREDENTIALS=str(key_file))
    result = run_helper("get", "gcr.io", env=env)
    assert (result.code, result.out, result.err) == (1, NOT_FOUND + "\n", "")
    debug = run_helper("get", "gcr.io", env=dict(env, SWITCHBOARD_DEBUG="1"))
    assert debug.out == NOT_FOUND + "\n"
    assert "gcp token for gcr.io failed" in debug.err
    assert "leaky-token" not in debug.err
    assert private_key_pem.splitlines()[1] not in debug.err
    assert cache_entries() == []


def test_a_slow_token_endpoint_is_cut_off(fake: FakeGoogle, with_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helper.backends import gcp

    monkeypatch.setattr(gcp, "REQUEST_TIMEOUT_S", 0.5)
    fake.delay = 3
    started = time.monotonic()
    assert call("get", "gcr.io").out == NOT_FOUND + "\n"
    assert time.monotonic() - started < 2.5


def test_impersonation_mints_the_target_accounts_token(fake: FakeGoogle, with_key: Path, routes: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth.iam

    monkeypatch.setattr(google.auth.iam, "_IAM_ENDPOINT",
                        fake.url + "/v1/projects/-/serviceAccounts/{}:generateAccessToken")
    monkeypatch.setattr(google_pod, "IAM_ENDPOINT", fake.url)  # the same, for google_fast's service-account path
    routes.write_text(f'[[route]]\nmatch = "*-docker.pkg.dev"\nbackend = "gcp"\nimpersonate = "{TARGET}"\n')
    assert get("us-docker.pkg.dev") == {"ServerURL": "us-docker.pkg.dev", "Username": "oauth2accesstoken",
                                        "Secret": "imp-token-2"}
    # the key file's account got an IAM-scoped token, then asked IAM for the target's cloud-platform token
    assert fake.paths() == ["/token", f"/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken"]
    assert jwt_claims(fake.bodies("/token")[0])["scope"] == "https://www.googleapis.com/auth/iam"
    _, _, headers, body = fake.requests[1]
    assert headers["authorization"] == "Bearer sa-token-1"
    assert json.loads(body)["scope"] == [CLOUD_PLATFORM]
    assert get("europe-docker.pkg.dev")["Secret"] == "imp-token-2"
    assert get("gcr.io")["Secret"] == "sa-token-3"  # not impersonated: the built-in route
    assert len(fake.requests) == 3
    out = call(["resolve", "us-docker.pkg.dev"]).out
    assert TARGET in out and str(with_key) in out and "imp-token" not in out


def test_an_unusable_answer_that_holds_a_token_never_reaches_the_log(
        fake: FakeGoogle, with_key: Path, routes: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import google.auth.iam

    monkeypatch.setattr(google.auth.iam, "_IAM_ENDPOINT",
                        fake.url + "/v1/projects/-/serviceAccounts/{}:generateAccessToken")
    monkeypatch.setattr(google_pod, "IAM_ENDPOINT", fake.url)  # the same, for google_fast's service-account path
    monkeypatch.setenv("SWITCHBOARD_DEBUG", "1")
    routes.write_text(f'[[route]]\nmatch = "gcr.io"\nbackend = "gcp"\nimpersonate = "{TARGET}"\n')
    fake.iam_mode = "bad-expiry"  # IAM answers 200 with a token whose expireTime does not parse
    assert call("get", "gcr.io").out == NOT_FOUND + "\n"
    err = capsys.readouterr().err
    assert "gcp token for gcr.io failed: GcpTokenError: RefreshError" in err and f"file {with_key}" in err
    assert "imp-token" not in err and "sa-token" not in err


def test_workload_identity_federation_exchanges_the_subject_token_and_nothing_more(
        fake: FakeGoogle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    subject = tmp_path / "oidc-token"
    subject.write_text("oidc-subject-token")
    config = tmp_path / "wif.json"
    config.write_text(json.dumps({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/ci/providers/gh",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": f"{fake.url}/sts",
        "credential_source": {"file": str(subject)}}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(config))
    # google.auth.default() would look the project up at cloudresourcemanager.googleapis.com: a proxy on a
    # closed port makes any request that is not to the fake fail instead of leaving the machine
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert get("gcr.io") == {"ServerURL": "gcr.io", "Username": "oauth2accesstoken", "Secret": "wif-token-1"}
    assert fake.paths() == ["/sts"]
    form = parse_qs(fake.bodies("/sts")[0].decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:token-exchange"]
    assert form["scope"] == [CLOUD_PLATFORM]
    assert get("eu.gcr.io")["Secret"] == "wif-token-1" and fake.paths() == ["/sts"]


def test_gcloud_user_credentials_from_the_adc_file(fake: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> None:
    import google.oauth2.credentials

    # authorized_user files always use Google's token endpoint; point it at the fake
    monkeypatch.setattr(google.oauth2.credentials, "_GOOGLE_OAUTH2_TOKEN_ENDPOINT", f"{fake.url}/token")
    adc = Path(os.environ["CLOUDSDK_CONFIG"]) / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    # gcloud's own client ID without a quota project: google-auth warns, which must not reach stderr
    adc.write_text(json.dumps({"type": "authorized_user", "refresh_token": "1//refresh-secret",
                               "client_id": "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com",
                               "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get("gcr.io")["Secret"] == "user-token-1"
    form = parse_qs(fake.bodies("/token")[0].decode())
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["1//refresh-secret"]
    out = call(["resolve", "gcr.io"]).out
    assert f"{adc} (gcloud application-default credentials, type authorized_user)" in out
    assert "refresh-secret" not in out and "user-token" not in out


def test_resolve_names_the_source_and_never_a_secret(fake: FakeGoogle, with_key: Path, private_key_pem: str) -> None:
    out = call(["resolve", "gcr.io"]).out
    assert f"{with_key} (GOOGLE_APPLICATION_CREDENTIALS, type service_account, {SA_EMAIL})" in out
    assert "none (the next get requests one)" in out
    get("gcr.io")
    out = call(["resolve", "eu.gcr.io"]).out
    assert "cached token" in out and "fresh" in out
    assert "sa-token" not in out and private_key_pem.splitlines()[1] not in out
    assert fake.count("/token") == 1  # resolve never fetches


def test_list_shows_the_cached_gcp_token(fake: FakeGoogle, with_key: Path) -> None:
    get("us-central1-docker.pkg.dev")
    assert call("list").json() == {"us-central1-docker.pkg.dev": "oauth2accesstoken"}


def test_a_cache_hit_makes_no_request_and_does_not_import_google_auth(fake: FakeGoogle, key_file: Path) -> None:
    env = dict(os.environ, GOOGLE_APPLICATION_CREDENTIALS=str(key_file))
    assert json.loads(run_helper("get", "gcr.io", env=env).out)["Secret"] == "sa-token-1"
    code, out, modules = get_in_fresh_process("eu.gcr.io", env)
    heavy = sorted(m for m in modules if m.split(".")[0] in ("google", "requests", "urllib3", "cryptography",
                                                              "keyring"))
    assert (code, heavy, "sa-token-1" in out) == (0, [], True), out
    assert fake.count("/token") == 1

