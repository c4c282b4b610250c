"""google_fast: a service-account key or a federation file answered without google-auth, with the requests
google-auth would send, against the same loopback Google (tests/test_gcp.py FakeGoogle).

Each comparison drives google-auth itself against the fake first, then the helper, and compares what the fake
received field by field; a fixed clock makes the two JWT assertions comparable.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from helper.backends import google_fast, google_pod
from tests.conftest import NOT_FOUND, call, get_in_fresh_process
from tests.loopback import Loopback, QuietHandler
from tests.test_gcp import CLOUD_PLATFORM, SA_EMAIL, TARGET, FakeGoogle, fake, key_file, with_key  # noqa: F401 - fixtures

FIXED = 1_780_000_000  # the assertion's iat on both sides
AUDIENCE = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/ci/providers/gh"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def segment(text: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return decoded


def form(body: bytes) -> dict[str, list[str]]:
    return parse_qs(body.decode())


def google_auth_token(path: Path, scopes: list[str], impersonate: str | None = None) -> Any:
    """What google-auth mints from `path`, the way gcp._mint drives it (requests transport, no bound)."""
    import warnings

    import google.auth
    import google.auth.credentials
    import google.auth.impersonated_credentials
    import google.auth.transport.requests

    auth: Any = google.auth  # untyped functions: one Any, as gcp.py does
    request = auth.transport.requests.Request()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "prefer the specific loaders", as gcp.py does
        credentials, _ = auth.load_credentials_from_file(str(path), request=request)
    credentials = auth.credentials.with_scopes_if_required(credentials, scopes)
    if impersonate:
        credentials = auth.impersonated_credentials.Credentials(
            source_credentials=credentials, target_principal=impersonate, target_scopes=scopes, lifetime=3600)
    credentials.refresh(request)
    return credentials


def epoch(expiry: datetime) -> float:
    return expiry.replace(tzinfo=timezone.utc).timestamp()


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth._helpers

    monkeypatch.setattr(google.auth._helpers, "utcnow", lambda: datetime.fromtimestamp(FIXED, timezone.utc)
                        .replace(tzinfo=None))
    monkeypatch.setattr(google_fast, "_issued_at", lambda: FIXED)


@pytest.fixture
def key_loads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """The keyword arguments of every private-key load (google_fast's loader, wrapped)."""
    seen: list[dict[str, object]] = []
    real = google_fast.pem_loader()

    def recording(data: bytes, password: bytes | None, **kwargs: object) -> object:
        seen.append(dict(kwargs))
        return real(data, password, **kwargs)

    monkeypatch.setattr(google_fast, "pem_loader", lambda: recording)
    return seen


def test_the_key_loader_is_cryptographys_public_one() -> None:
    from cryptography.hazmat.primitives import serialization

    assert google_fast.pem_loader() is serialization.load_pem_private_key


def test_the_token_request_is_the_one_google_auth_sends_byte_for_byte(
        fake: FakeGoogle, with_key: Path, fixed_clock: None, private_key_pem: str) -> None:  # noqa: F811
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    theirs = google_auth_token(with_key, [CLOUD_PLATFORM])
    answer = call("get", "gcr.io").json()
    assert answer == {"ServerURL": "gcr.io", "Username": "oauth2accesstoken", "Secret": "sa-token-2"}
    google, ours = (form(body) for body in fake.bodies("/token"))
    assert list(google) == list(ours) == ["assertion", "grant_type"]
    assert ours["grant_type"] == google["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    (g_header, g_claims, _), (o_header, o_claims, o_signature) = (
        value["assertion"][0].split(".") for value in (google, ours))
    assert segment(o_header) == segment(g_header) == {"typ": "JWT", "alg": "RS256", "kid": "0123456789abcdef"}
    assert segment(o_claims) == segment(g_claims) == {
        "iat": FIXED, "exp": FIXED + 3600, "iss": SA_EMAIL, "aud": "https://oauth2.googleapis.com/token",
        "scope": CLOUD_PLATFORM}  # aud: google-auth's constant, not the file's token_uri (the fake)
    assert ours["assertion"] == google["assertion"]  # PKCS#1 v1.5 is deterministic: the very same bytes
    key = serialization.load_pem_private_key(private_key_pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    key.public_key().verify(base64.urlsafe_b64decode(o_signature + "=" * (-len(o_signature) % 4)),
                            f"{o_header}.{o_claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    cached = json.loads(next((Path(os.environ["XDG_CACHE_HOME"]) / "docker-credential-switchboard")
                             .glob("gcp*.json")).read_text())
    # the same expiry on both: the clock at the answer + Google's expires_in (google-auth's clock is the fixed one)
    assert epoch(theirs.expiry) == FIXED + fake.lifetime
    assert abs(cached["expires_at"] - (time.time() + fake.lifetime)) < 5


def test_route_impersonation_asks_iam_what_google_auth_asks(fake: FakeGoogle, with_key: Path, routes: Path,  # noqa: F811
                                                            fixed_clock: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth.iam

    monkeypatch.setattr(google.auth.iam, "_IAM_ENDPOINT",
                        fake.url + "/v1/projects/-/serviceAccounts/{}:generateAccessToken")
    monkeypatch.setattr(google_pod, "IAM_ENDPOINT", fake.url)
    routes.write_text(f'[[route]]\nmatch = "gcr.io"\nbackend = "gcp"\nimpersonate = "{TARGET}"\n')
    theirs = google_auth_token(with_key, [CLOUD_PLATFORM], impersonate=TARGET)
    assert theirs.token == "imp-token-2"
    assert call("get", "gcr.io").json()["Secret"] == "imp-token-4"
    iam = f"/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken"
    assert fake.paths() == ["/token", iam, "/token", iam]
    google_token, ours_token = (form(body) for body in fake.bodies("/token"))
    assert ours_token == google_token  # the iam-scoped assertion, equal
    google_iam, ours_iam = (json.loads(body) for body in fake.bodies("/v1/"))
    assert ours_iam == {key: value for key, value in google_iam.items() if key != "delegates"}
    assert ours_iam == {"scope": [CLOUD_PLATFORM], "lifetime": "3600s"} and google_iam["delegates"] is None
    assert [h["authorization"] for _, p, h, _ in fake.requests if p == iam] == ["Bearer sa-token-1",
                                                                               "Bearer sa-token-3"]


def test_a_key_file_that_is_the_users_alone_is_loaded_without_validation(
        fake: FakeGoogle, with_key: Path, key_loads: list[dict[str, object]]) -> None:  # noqa: F811
    with_key.chmod(0o600)
    assert call("get", "gcr.io").json()["Secret"] == "sa-token-1"
    assert key_loads == [{"unsafe_skip_rsa_key_validation": True}]


@pytest.mark.parametrize("who", ["group-writable", "world-writable", "another user's"])
def test_a_key_file_someone_else_could_have_written_is_validated_and_still_works(
        fake: FakeGoogle, with_key: Path, key_loads: list[dict[str, object]], who: str,  # noqa: F811
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SWITCHBOARD_DEBUG", "1")
    if who == "another user's":
        os.chown(with_key, request.getfixturevalue("other_user"), -1)
        with_key.chmod(0o644)
    else:
        with_key.chmod(0o664 if who == "group-writable" else 0o646)
    assert call("get", "gcr.io").json()["Secret"] == "sa-token-1"
    assert key_loads == [{}]  # cryptography's default: the key is checked
    assert "key validated: not only yours" in capsys.readouterr().err


def test_a_fast_get_imports_neither_google_auth_nor_requests_nor_urllib3(
        fake: FakeGoogle, key_file: Path, tmp_path: Path) -> None:  # noqa: F811
    env = dict(os.environ, GOOGLE_APPLICATION_CREDENTIALS=str(key_file))
    code, out, modules = get_in_fresh_process("gcr.io", env)
    heavy = sorted(m for m in modules if m.split(".")[0] in ("google", "requests", "urllib3"))
    assert (code, heavy, "sa-token-1" in out) == (0, [], True), out
    assert "cryptography.hazmat.primitives.asymmetric.padding" in modules  # it did sign here
    assert "cryptography.hazmat.primitives.serialization" not in modules  # nor its SSH module (pem_loader)
    # one POST through oauth_http's http1: none of http.client's and urllib's imports, no json (fastjson)
    stdlib = sorted(m for m in modules if m.split(".")[0] in ("http", "urllib", "email", "json"))
    assert stdlib == [], stdlib  # a loopback URL: never through a proxy, so never urllib
    # control: an executable-sourced federation file stays with google-auth, which the same probe sees
    config = tmp_path / "exec.json"
    config.write_text(json.dumps({
        "type": "external_account", "audience": AUDIENCE, "subject_token_type": JWT_TYPE,
        "token_url": f"{fake.url}/sts", "credential_source": {"executable": {"command": "/bin/true"}}}))
    code, out, modules = get_in_fresh_process("gcr.io", dict(env, GOOGLE_APPLICATION_CREDENTIALS=str(config)))
    assert code == 1 and "google.auth" in modules


class SubjectServer(Loopback):
    """A URL subject-token source (an OIDC endpoint): answers `body`, records the request headers."""

    def __init__(self, body: bytes) -> None:
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send(200, body, "application/json")

        super().__init__(Handler)


@pytest.fixture
def subject_server() -> Iterator[SubjectServer]:
    server = SubjectServer(b'{"value": "oidc-subject-token"}')
    yield server
    server.close()


def federation(tmp_path: Path, fake: FakeGoogle, source: str, server: SubjectServer,  # noqa: F811
               impersonation: bool = False) -> Path:
    subject = tmp_path / "oidc-token"
    if source == "json file":
        subject.write_text('{"id_token": "oidc-subject-token"}')
        credential_source: dict[str, object] = {"file": str(subject), "format": {
            "type": "json", "subject_token_field_name": "id_token"}}
    elif source == "url":
        credential_source = {"url": f"{server.url}/token?audience=x", "headers": {"Authorization": "Bearer ci"},
                             "format": {"type": "json", "subject_token_field_name": "value"}}
    else:
        subject.write_text("oidc-subject-token")
        credential_source = {"file": str(subject)}
    doc: dict[str, object] = {"type": "external_account", "audience": AUDIENCE, "subject_token_type": JWT_TYPE,
                              "token_url": f"{fake.url}/sts", "credential_source": credential_source}
    if impersonation:
        doc["service_account_impersonation_url"] = \
            f"{fake.url}/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken"
        doc["service_account_impersonation"] = {"token_lifetime_seconds": 1800}
    config = tmp_path / "wif.json"
    config.write_text(json.dumps(doc))
    return config


@pytest.mark.parametrize("source", ["text file", "json file", "url"])
def test_a_federation_file_exchanges_at_sts_what_google_auth_exchanges(
        fake: FakeGoogle, tmp_path: Path, subject_server: SubjectServer, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str], source: str) -> None:
    config = federation(tmp_path, fake, source, subject_server)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(config))
    monkeypatch.setenv("SWITCHBOARD_DEBUG", "1")
    theirs = google_auth_token(config, [CLOUD_PLATFORM])
    assert theirs.token == "wif-token-1"
    assert call("get", "gcr.io").json() == {"ServerURL": "gcr.io", "Username": "oauth2accesstoken",
                                            "Secret": "wif-token-2"}
    assert "gcp: fast path for file" in capsys.readouterr().err
    assert fake.paths() == ["/sts", "/sts"]
    google, ours = (form(body) for body in fake.bodies("/sts"))
    assert ours == google and ours["scope"] == [CLOUD_PLATFORM] and ours["audience"] == [AUDIENCE]
    if source == "url":
        assert [h["authorization"] for h in subject_server.headers] == ["Bearer ci", "Bearer ci"]
    cached = json.loads(next((Path(os.environ["XDG_CACHE_HOME"]) / "docker-credential-switchboard")
                             .glob("gcp*.json")).read_text())
    assert abs(cached["expires_at"] - epoch(theirs.expiry)) < 5


def test_a_federation_file_that_impersonates_asks_sts_and_iam_what_google_auth_asks(
        fake: FakeGoogle, tmp_path: Path, subject_server: SubjectServer, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    config = federation(tmp_path, fake, "text file", subject_server, impersonation=True)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(config))
    theirs = google_auth_token(config, [CLOUD_PLATFORM])
    assert theirs.token == "imp-token-2"
    assert call("get", "gcr.io").json()["Secret"] == "imp-token-4"
    google_sts, ours_sts = (form(body) for body in fake.bodies("/sts"))
    assert ours_sts == google_sts and ours_sts["scope"] == ["https://www.googleapis.com/auth/iam"]
    google_iam, ours_iam = (json.loads(body) for body in fake.bodies("/v1/"))
    assert ours_iam == {key: value for key, value in google_iam.items() if key != "delegates"}
    assert ours_iam == {"scope": [CLOUD_PLATFORM], "lifetime": "1800s"}


def sa(**extra: object) -> dict[str, object]:
    return {"type": "service_account", "client_email": SA_EMAIL, "private_key": "pem", "private_key_id": "k",
            "token_uri": "https://oauth2.googleapis.com/token", **extra}


def ext(**extra: object) -> dict[str, object]:
    return {"type": "external_account", "audience": AUDIENCE, "subject_token_type": JWT_TYPE,
            "token_url": "https://sts.googleapis.com/v1/token", "credential_source": {"file": "/t"}, **extra}


@pytest.mark.parametrize(("doc", "impersonate", "path"), [
    (sa(), None, "service_account"),
    (sa(), TARGET, "service_account"),
    (sa(universe_domain="example.goog"), None, None),
    (sa(token_uri="http://oauth.example/token"), None, None),
    (sa(client_email=None), None, None),
    ({"type": "authorized_user", "refresh_token": "r", "client_id": "c", "client_secret": "s"}, None, None),
    ({"type": "impersonated_service_account", "source_credentials": {}}, None, None),
    ({"type": "gdch_service_account"}, None, None),
    (ext(), None, "external_account"),
    (ext(credential_source={"url": "http://127.0.0.1:1/t", "headers": {"a": "b"}}), None, "external_account"),
    (ext(service_account_impersonation_url="https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"
                                           f"{TARGET}:generateAccessToken"), None, "external_account"),
    (ext(), TARGET, None),
    (ext(credential_source={"executable": {"command": "x"}}), None, None),
    (ext(credential_source={"environment_id": "aws1", "region_url": "http://169.254.169.254"}), None, None),
    (ext(credential_source={"certificate": {"use_default_certificate_config": True}}), None, None),
    (ext(credential_source={"file": "/t", "url": "https://x"}), None, None),
    (ext(credential_source={"file": "/t", "format": {"type": "json"}}), None, None),
    (ext(client_id="id", client_secret="secret"), None, None),
    (ext(workforce_pool_user_project="123"), None, None),
    (ext(token_url=None), None, None),
    (ext(service_account_impersonation_url="https://iam.example/no-target"), None, None),
], ids=["sa", "sa+impersonate", "sa other universe", "sa http token_uri", "sa no email", "authorized_user",
        "impersonated_service_account", "gdch", "ext file", "ext url", "ext impersonation", "ext+route impersonate",
        "ext executable", "ext aws", "ext certificate", "ext file and url", "ext json without field",
        "ext client auth", "ext workforce", "ext no token_url", "ext unparsable impersonation"])
def test_each_credential_type_takes_its_path(doc: dict[str, object], impersonate: str | None,
                                             path: str | None) -> None:
    assert google_fast.plan(doc, impersonate) == path


@pytest.fixture(params=["fast", "google-auth"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "google-auth":
        monkeypatch.setattr(google_fast, "plan", lambda doc, impersonate: None)
    return str(request.param)


@pytest.mark.parametrize("mode", ["500", "denied", "garbage", "bad-expiry"])
def test_a_broken_token_endpoint_is_the_same_not_found_on_both_paths_and_the_log_holds_no_token(
        fake: FakeGoogle, with_key: Path, private_key_pem: str, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str], mode: str, path: str) -> None:
    monkeypatch.setenv("SWITCHBOARD_DEBUG", "1")
    fake.mode = mode
    assert call("get", "gcr.io").out == NOT_FOUND + "\n"
    err = capsys.readouterr().err
    failure = [line for line in err.splitlines() if "gcp token for gcr.io failed" in line]
    assert len(failure) == 1 and "GcpTokenError: " in failure[0] and f"(credentials: file {with_key})" in failure[0]
    assert ("gcp: fast path for file" in err) == (path == "fast")
    assert "leaky-token" not in err and "sa-token" not in err and private_key_pem.splitlines()[1] not in err
    if mode == "denied":
        assert "invalid_grant" in failure[0]
    assert not list((Path(os.environ["XDG_CACHE_HOME"]) / "docker-credential-switchboard").glob("gcp*.json"))


@pytest.mark.parametrize(("first", "mode", "requests", "answered"), [
    (["503", "500"], "ok", 3, True),  # two retryable statuses, then the token
    (["unavailable"], "ok", 2, True),  # a retryable OAuth error in a 400
    ([], "500", 3, False),  # three attempts, then the not-found
    ([], "denied", 1, False),  # invalid_grant: never retried
])
def test_a_refused_token_request_is_retried_as_google_auth_retries_it(
        fake: FakeGoogle, with_key: Path, monkeypatch: pytest.MonkeyPatch, first: list[str], mode: str,  # noqa: F811
        requests: int, answered: bool, path: str) -> None:
    import time

    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)  # both paths' back-off, recorded instead of slept
    fake.first, fake.mode = list(first), mode
    result = call("get", "gcr.io")
    assert (result.code == 0) == answered
    assert len([r for r in fake.requests if r[1] == "/token"]) == requests
    # 1 s then 2 s, each with google-auth's 10 % jitter
    backoff = [w for w in waits if w > 0]  # the endpoint's own sleep(delay) is 0 here
    assert [round(w) for w in backoff] == [1, 2][:requests - 1]
    assert all(abs(w - round(w)) <= 0.1 * round(w) + 1e-9 for w in backoff)


def test_a_refused_subject_token_is_the_same_not_found_on_both_paths_and_the_log_holds_no_token(
        fake: FakeGoogle, tmp_path: Path, subject_server: SubjectServer, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str], path: str) -> None:
    config = federation(tmp_path, fake, "text file", subject_server)
    (tmp_path / "oidc-token").write_text("stolen-subject-token")  # the fake's STS refuses it
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(config))
    monkeypatch.setenv("SWITCHBOARD_DEBUG", "1")
    assert call("get", "gcr.io").out == NOT_FOUND + "\n"
    err = capsys.readouterr().err
    assert "gcp token for gcr.io failed: GcpTokenError: " in err and "invalid_grant" in err
    assert "stolen-subject-token" not in err
    assert fake.count("/sts") == 1


def test_a_missing_subject_token_file_is_a_not_found_on_both_paths(
        fake: FakeGoogle, tmp_path: Path, subject_server: SubjectServer, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str], path: str) -> None:
    config = federation(tmp_path, fake, "text file", subject_server)
    (tmp_path / "oidc-token").unlink()
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(config))
    monkeypatch.setenv("SWITCHBOARD_DEBUG", "1")
    assert call("get", "gcr.io").out == NOT_FOUND + "\n"
    assert "not found" in capsys.readouterr().err and fake.count("/sts") == 0


def test_the_fast_path_trusts_exactly_the_ca_bundle_google_auth_would(tmp_path: Path, private_key_pem: str) -> None:
    """google-auth verifies through requests: REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, else certifi's bundle,
    never SSL_CERT_FILE. The fast path must agree both ways, or a runner's CA would work on one path only (the
    frozen build's pass found the fast path trusting the ssl module's default instead)."""
    from tests.conftest import run_helper
    from tests.registry import make_ca_and_leaf
    from tests.test_frozen import CloudHandler, no_ca_variables

    ca, cert, leaf_key = make_ca_and_leaf(tmp_path)
    server = Loopback(CloudHandler, tls=(cert, leaf_key))
    url = f"https://localhost:{server.port}"
    key = tmp_path / "sa.json"
    key.write_text(json.dumps({"type": "service_account", "project_id": "p", "private_key_id": "0123",
                               "private_key": private_key_pem, "client_email": SA_EMAIL, "client_id": "1",
                               "token_uri": f"{url}/token"}))
    key.chmod(0o600)
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        trusted = run_helper("get", "gcr.io", env=no_ca_variables(
            GOOGLE_APPLICATION_CREDENTIALS=str(key), SWITCHBOARD_DEBUG="1",
            SWITCHBOARD_CACHE_DIR=str(tmp_path / variable), **{variable: str(ca)}))
        assert trusted.code == 0, trusted.err
        assert json.loads(trusted.out)["Secret"] == "gcp-token" and "gcp: fast path" in trusted.err
    refused = run_helper("get", "gcr.io", env=no_ca_variables(GOOGLE_APPLICATION_CREDENTIALS=str(key),
                                                              SWITCHBOARD_DEBUG="1", SSL_CERT_FILE=str(ca)))
    server.close()
    assert refused.code == 1 and "CERTIFICATE_VERIFY_FAILED" in refused.err.upper().replace(" ", "_")
