"""`kubelet` with a pod's service account (KEP-4412) on the cloud routes that ask as the pod: Google (the STS token
exchange, then IAM impersonation) and ACR (the pod's token as Entra's federated client assertion, then the
registry's exchange). The real executable answers a request on stdin, against loopback stand-ins; every success
goes through the mirror of the kubelet's strict decoder and keyring (tests/kubelet_decoder.py).

The fixtures of tests/test_acr.py and tests/test_gcp.py are imported (`noqa: F811` marks the tests that take them)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from helper.backends import acr
from tests.kubelet_decoder import Response, decode_response, lookup
from tests.loopback import Loopback, QuietHandler
from tests.test_acr import (  # noqa: F401 - module-scoped stand-ins and their fixtures
    AZURE,
    CLIENT_ID,
    CLIENT_SECRET,
    REGISTRY,
    TENANT,
    ZERO_GUID,
    Servers,
    azure,
    client_secret,
    no_real_identity_endpoint,
    servers,
)
from tests.test_gcp import FakeGoogle, fake, key_file, with_key  # noqa: F401
from tests.test_kubelet import V1, VERSIONS, cache_files, kubelet, request, sa_token

GCP_HOST = "us-docker.pkg.dev"
GCP_IMAGE = f"{GCP_HOST}/proj/repo/app"
PROVIDER = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/k8s"
POD_SA = "puller@team-project.iam.gserviceaccount.com"
ROUTE_SA = "route-puller@team-project.iam.gserviceaccount.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
GKE_ANNOTATION = "iam.gke.io/gcp-service-account"
ADVISORY_S = 15 * 60

ACR_IMAGE = f"{REGISTRY}/team/app"
POD_CLIENT_ID = "99999999-8888-7777-6666-555555555555"
POD_TENANT = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
ACR_CLIENT = "kubernetes.azure.com/acr-client-id"
ACR_TENANT = "kubernetes.azure.com/acr-tenant-id"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# -- a loopback Google: STS (/v1/token) and IAM Credentials (/v1/projects/-/serviceAccounts/...) ---------------------

class Seen:
    """One request the fake received."""

    def __init__(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.path = path
        self.headers = headers
        self.body = body

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))

    @property
    def json(self) -> object:
        return json.loads(self.body)


class FakeGoogleSts(Loopback):
    """Google's STS and IAM Credentials API. `sts_mode`: ok | echo (a 400 whose description quotes the subject
    token, as a careless server might); `iam_lifetime`: the impersonated token's life, said in `expireTime`."""

    def __init__(self) -> None:
        self.sts: list[Seen] = []
        self.iam: list[Seen] = []
        self.other: list[Seen] = []
        self.sts_mode = "ok"
        self.sts_lifetime = 3600
        self.iam_lifetime = 2400  # not an hour: the answer must follow Google's expireTime
        self.expire_times: list[float] = []
        self.issued = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                seen = Seen(urlsplit(self.path).path, {k.lower(): v for k, v in self.headers.items()}, self.body())
                if seen.path == "/v1/token":
                    stub.sts.append(seen)
                    self._sts(seen)
                elif seen.path.startswith("/v1/projects/-/serviceAccounts/") and \
                        seen.path.endswith(":generateAccessToken"):
                    stub.iam.append(seen)
                    self._iam(seen)
                else:
                    stub.other.append(seen)
                    self.send(404, b'{"error": "not found"}')

            def _sts(self, seen: Seen) -> None:
                form = seen.form
                if stub.sts_mode == "echo":
                    self.send(400, json.dumps({"error": "invalid_grant", "error_description":
                                               f"The subject token {form.get('subject_token')} is not valid "
                                               f"for the audience"}).encode())
                    return
                self.send(200, json.dumps({"access_token": f"federated-{stub.serial()}",
                                           "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                                           "token_type": "Bearer", "expires_in": stub.sts_lifetime}).encode())

            def _iam(self, seen: Seen) -> None:
                if not seen.headers.get("authorization", "").startswith("Bearer federated-"):
                    self.send(401, b'{"error": {"code": 401, "message": "unauthenticated"}}')
                    return
                account = unquote(seen.path.rsplit("/", 1)[1].split(":", 1)[0])
                expires = int(time.time()) + stub.iam_lifetime
                stub.expire_times.append(float(expires))
                self.send(200, json.dumps({"accessToken": f"sa-token-{account}-{stub.serial()}", "expireTime":
                                           time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))}).encode())

        super().__init__(Handler)

    def serial(self) -> int:
        with self.lock:
            self.issued += 1
            return self.issued

    def total(self) -> int:
        return len(self.sts) + len(self.iam) + len(self.other)


@pytest.fixture
def google() -> Iterator[FakeGoogleSts]:
    server = FakeGoogleSts()
    yield server
    server.close()


def gcp_route(routes: Path, google: FakeGoogleSts, extra: str = "") -> None:
    routes.write_text(f'[[route]]\nmatch = "{GCP_HOST}"\nbackend = "gcp"\nworkload_identity_provider = "{PROVIDER}"\n'
                      f'sts_endpoint = "{google.url}/v1/token"\niam_endpoint = "{google.url}"\n{extra}')


def pod_request(token: str, annotations: dict[str, str] | None = None, image: str = GCP_IMAGE,
                version: str = V1) -> bytes:
    return request(image, version, serviceAccountToken=token, serviceAccountAnnotations=annotations or {})


def decoded(data: bytes, version: str = V1) -> Response:
    """The successful answer to `data` (real executable, this test's environment), as the kubelet decodes it."""
    result = kubelet(data, dict(os.environ))
    assert (result.code, result.err) == (0, ""), result.err
    return decode_response(result.out.encode(), version)


def failed(data: bytes) -> str:
    """The one line on stderr of a request that must fail (exit 1, nothing on stdout)."""
    result = kubelet(data, dict(os.environ))
    assert (result.code, result.out) == (1, ""), result.out
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


# -- Google ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_a_pod_with_the_gke_annotation_gets_its_service_accounts_token_through_sts_and_iam(
        google: FakeGoogleSts, routes: Path, version: str) -> None:
    gcp_route(routes, google)
    token = sa_token()
    before = time.time()
    got = decoded(pod_request(token, {GKE_ANNOTATION: POD_SA}, version=version), version)

    (sts,) = google.sts
    assert sts.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sts.form == {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "audience": PROVIDER,
                        "subject_token": token, "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
                        "scope": CLOUD_PLATFORM}
    (iam,) = google.iam
    assert iam.path == f"/v1/projects/-/serviceAccounts/{POD_SA}:generateAccessToken"
    assert iam.headers["authorization"] == "Bearer federated-1"  # the STS answer, nothing of the node's
    assert iam.json == {"scope": [CLOUD_PLATFORM], "lifetime": "3600s"}

    assert got.cache_key_type == "Registry"
    assert lookup(got.auth, GCP_IMAGE) == [("oauth2accesstoken", f"sa-token-{POD_SA}-2")]
    assert lookup(got.auth, f"{GCP_HOST}/other-project/repo/image") == [("oauth2accesstoken",
                                                                          f"sa-token-{POD_SA}-2")]
    # Google said 40 minutes: the kubelet keeps it until the advisory refresh of that, not of an assumed hour
    (expires,) = google.expire_times
    assert got.cache_duration_s is not None and 0 < got.cache_duration_s <= expires - ADVISORY_S - before
    assert got.cache_duration_s >= expires - ADVISORY_S - time.time() - 2
    assert google.other == []


def test_without_an_annotation_or_impersonate_the_pod_gets_the_federated_token_itself(
        google: FakeGoogleSts, routes: Path) -> None:
    gcp_route(routes, google)
    google.sts_lifetime = 1800
    before = time.time()
    got = decoded(pod_request(sa_token()))
    assert lookup(got.auth, GCP_IMAGE) == [("oauth2accesstoken", "federated-1")]
    assert got.cache_key_type == "Registry"
    assert len(google.sts) == 1 and google.iam == []
    # 30 min from expires_in, advisory window half of it capped at 15 min
    assert got.cache_duration_s is not None and 0 < got.cache_duration_s <= 1800 - ADVISORY_S
    assert got.cache_duration_s >= 1800 - ADVISORY_S - (time.time() - before) - 2


def test_the_routes_impersonate_is_used_when_the_service_account_has_no_annotation(
        google: FakeGoogleSts, routes: Path) -> None:
    gcp_route(routes, google, f'impersonate = "{ROUTE_SA}"\n')
    got = decoded(pod_request(sa_token()))
    assert lookup(got.auth, GCP_IMAGE) == [("oauth2accesstoken", f"sa-token-{ROUTE_SA}-2")]
    (iam,) = google.iam
    assert iam.path == f"/v1/projects/-/serviceAccounts/{ROUTE_SA}:generateAccessToken"
    # and the annotation wins over the route's
    got = decoded(pod_request(sa_token(uid="another"), {GKE_ANNOTATION: POD_SA}))
    assert lookup(got.auth, GCP_IMAGE) == [("oauth2accesstoken", f"sa-token-{POD_SA}-4")]
    assert [s.path.rsplit("/", 1)[1] for s in google.iam] == [f"{ROUTE_SA}:generateAccessToken",
                                                              f"{POD_SA}:generateAccessToken"]


def test_service_accounts_never_share_a_google_token_and_one_account_reuses_its_own(
        google: FakeGoogleSts, routes: Path) -> None:
    gcp_route(routes, google)
    annotations = {GKE_ANNOTATION: POD_SA}
    token_a, token_b = sa_token("team-a", "builder", "uid-a"), sa_token("team-b", "builder", "uid-b")
    a1 = decoded(pod_request(token_a, annotations))
    b = decoded(pod_request(token_b, annotations))
    assert [s.form["subject_token"] for s in google.sts] == [token_a, token_b]
    assert a1.auth != b.auth
    # another pod of team-a's builder (a newer token, same account): the cached token, no exchange
    time.sleep(1.1)  # the token's exp claim changes, so it is another token string
    token_a2 = sa_token("team-a", "builder", "uid-a")
    assert token_a2 != token_a
    a2 = decoded(pod_request(token_a2, annotations))
    assert a2.auth == a1.auth
    assert (len(google.sts), len(google.iam)) == (2, 2)
    # the same name recreated (a new uid) is another account
    a3 = decoded(pod_request(sa_token("team-a", "builder", "uid-a-recreated"), annotations))
    assert a3.auth not in (a1.auth, b.auth) and len(google.sts) == 3


def test_an_sts_refusal_that_echoes_the_pod_token_is_one_scrubbed_line_and_nothing_is_cached(
        google: FakeGoogleSts, routes: Path) -> None:
    gcp_route(routes, google)
    google.sts_mode = "echo"
    token = sa_token()
    line = failed(pod_request(token, {GKE_ANNOTATION: POD_SA}))
    assert len(google.sts) == 1 and google.iam == []
    assert "STS" in line and "HTTP 400" in line and "invalid_grant" in line
    assert token not in line
    for part in token.split("."):  # not even a piece of it
        assert part not in line
    assert cache_files() == []


@pytest.mark.parametrize("routed", [False, True])
def test_a_route_without_a_provider_answers_with_the_node_identity_even_for_a_pod(
        fake: FakeGoogle, with_key: Path, routes: Path, google: FakeGoogleSts, routed: bool) -> None:  # noqa: F811
    if routed:  # a route that names Google's endpoints but no provider; else the built-in GCP route
        routes.write_text(f'[[route]]\nmatch = "{GCP_HOST}"\nbackend = "gcp"\nsts_endpoint = "{google.url}/v1/token"\n'
                          f'iam_endpoint = "{google.url}"\n')
    got = decoded(pod_request(sa_token(), {GKE_ANNOTATION: POD_SA}))
    assert lookup(got.auth, GCP_IMAGE) == [("oauth2accesstoken", "sa-token-1")]  # the key file's service account
    assert got.cache_key_type == "Registry"
    assert fake.count("/token") == 1 and fake.count("/v1/projects/") == 0
    assert google.total() == 0


def test_a_route_without_a_provider_and_no_node_credentials_fails_naming_google_credentials(
        google: FakeGoogleSts, routes: Path) -> None:
    routes.write_text(f'[[route]]\nmatch = "{GCP_HOST}"\nbackend = "gcp"\nsts_endpoint = "{google.url}/v1/token"\n')
    token = sa_token()
    line = failed(pod_request(token, {GKE_ANNOTATION: POD_SA}))
    assert "no Google credentials" in line and GCP_HOST in line
    assert token not in line and google.total() == 0 and cache_files() == []


@pytest.mark.parametrize("setting", ['sts_endpoint = "http://sts.example.com/v1/token"',
                                     'iam_endpoint = "http://iam.example.com"'])
def test_a_plain_http_google_endpoint_off_loopback_is_refused_before_any_request(
        google: FakeGoogleSts, routes: Path, setting: str) -> None:
    name = setting.split(" ", 1)[0]
    routes.write_text(f'[[route]]\nmatch = "{GCP_HOST}"\nbackend = "gcp"\nworkload_identity_provider = "{PROVIDER}"\n'
                      + "".join(f'{line}\n' for line in (f'sts_endpoint = "{google.url}/v1/token"',
                                                          f'iam_endpoint = "{google.url}"')
                                if not line.startswith(name)) + setting + "\n")
    token = sa_token()
    line = failed(pod_request(token, {GKE_ANNOTATION: POD_SA}))
    assert "https" in line and name in line and token not in line
    assert google.total() == 0  # both endpoints are checked before the pod's token is sent anywhere
    assert cache_files() == []


def test_a_request_without_a_pod_token_on_a_provider_route_pulls_as_the_node(
        fake: FakeGoogle, with_key: Path, routes: Path, google: FakeGoogleSts) -> None:  # noqa: F811
    gcp_route(routes, google)
    got = decoded(request(GCP_IMAGE))
    assert lookup(got.auth, GCP_IMAGE) == [("oauth2accesstoken", "sa-token-1")]
    assert fake.count("/token") == 1 and google.total() == 0
    # and a pod on the same route never gets the node's cached token
    pod = decoded(pod_request(sa_token()))
    assert lookup(pod.auth, GCP_IMAGE) == [("oauth2accesstoken", "federated-1")] and len(google.sts) == 1


def test_an_annotation_that_is_not_a_service_account_email_never_reaches_iam(
        google: FakeGoogleSts, routes: Path) -> None:
    gcp_route(routes, google)
    evil = "projects/other/serviceAccounts/admin@other.iam.gserviceaccount.com"
    line = failed(pod_request(sa_token(), {GKE_ANNOTATION: evil}))
    assert "not a Google service account" in line
    assert google.sts == [] and google.iam == [] and google.other == [] and cache_files() == []


# -- ACR ---------------------------------------------------------------------------------------------------------

def acr_request(token: str, annotations: dict[str, str] | None = None, version: str = V1) -> bytes:
    return pod_request(token, annotations, ACR_IMAGE, version)


def test_a_pod_with_acr_annotations_presents_its_own_token_to_entra_and_never_the_nodes_secret(
        client_secret: Servers) -> None:  # noqa: F811
    token = sa_token()
    got = decoded(acr_request(token, {ACR_CLIENT: POD_CLIENT_ID, ACR_TENANT: POD_TENANT}))

    (entra,) = AZURE.entra
    assert entra.path == f"/{POD_TENANT}/oauth2/v2.0/token"  # the annotation's tenant, not AZURE_TENANT_ID
    assert entra.form == {"grant_type": "client_credentials", "client_id": POD_CLIENT_ID,
                          "scope": "https://management.azure.com/.default",
                          "client_assertion_type": JWT_BEARER, "client_assertion": token}
    assert "client_secret" not in entra.form and CLIENT_SECRET not in entra.form.values()
    (exchange,) = AZURE.acr
    assert exchange.path == "/oauth2/exchange" and exchange.form["service"] == REGISTRY
    assert exchange.form["tenant"] == POD_TENANT
    assert acr.jwt_claims(exchange.form["access_token"])["tid"] == POD_TENANT  # what Entra issued the pod
    assert AZURE.mi == []

    assert got.cache_key_type == "Registry"
    ((user, password),) = lookup(got.auth, ACR_IMAGE)
    assert user == ZERO_GUID and acr.jwt_claims(password)["aud"] == REGISTRY
    assert got.cache_duration_s is not None and 0 < got.cache_duration_s <= 3 * 3600 - ADVISORY_S


def test_the_client_id_annotation_takes_its_tenant_from_the_route_else_azure_tenant_id(
        azure: Servers, routes: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    decoded(acr_request(sa_token(uid="u1"), {ACR_CLIENT: POD_CLIENT_ID}))
    routes.write_text(f'[[route]]\nmatch = "{REGISTRY}"\nbackend = "acr"\ntenant = "{POD_TENANT}"\n')
    decoded(acr_request(sa_token(uid="u2"), {ACR_CLIENT: POD_CLIENT_ID}))
    assert [s.path.split("/")[1] for s in AZURE.entra] == [TENANT, POD_TENANT]
    assert all(s.form["client_id"] == POD_CLIENT_ID and "client_secret" not in s.form for s in AZURE.entra)


def test_a_client_id_annotation_without_any_tenant_fails_naming_the_tenant_annotation(
        azure: Servers) -> None:  # noqa: F811
    token = sa_token()
    line = failed(acr_request(token, {ACR_CLIENT: POD_CLIENT_ID}))
    assert ACR_TENANT in line and token not in line
    assert AZURE.total() == 0 and cache_files() == []


def test_two_service_accounts_never_share_an_acr_token(client_secret: Servers) -> None:  # noqa: F811
    annotations = {ACR_CLIENT: POD_CLIENT_ID, ACR_TENANT: POD_TENANT}
    token_a, token_b = sa_token("team-a", "builder", "uid-a"), sa_token("team-b", "builder", "uid-b")
    a1 = decoded(acr_request(token_a, annotations))
    b = decoded(acr_request(token_b, annotations))
    assert a1.auth != b.auth
    assert [s.form["client_assertion"] for s in AZURE.entra] == [token_a, token_b]
    assert len(AZURE.acr) == 2
    a2 = decoded(acr_request(sa_token("team-a", "builder", "uid-a"), annotations))
    assert a2.auth == a1.auth and len(AZURE.entra) == 2  # the same account: its own cached token
    node = decoded(request(ACR_IMAGE))
    assert node.auth not in (a1.auth, b.auth) and "client_secret" in AZURE.entra[-1].form


def test_a_pod_without_acr_annotations_pulls_with_the_nodes_client_secret(client_secret: Servers) -> None:  # noqa: F811
    token = sa_token()
    got = decoded(acr_request(token, {"unrelated.example/annotation": "x"}))
    (entra,) = AZURE.entra
    assert entra.path == f"/{TENANT}/oauth2/v2.0/token"
    assert entra.form == {"grant_type": "client_credentials", "client_id": CLIENT_ID,
                          "client_secret": CLIENT_SECRET, "scope": "https://management.azure.com/.default"}
    assert token not in json.dumps([s.form for s in AZURE.entra + AZURE.acr])  # the pod's token went nowhere
    ((user, password),) = lookup(got.auth, ACR_IMAGE)
    assert user == ZERO_GUID and acr.jwt_claims(password)["aud"] == REGISTRY
    assert got.cache_key_type == "Registry"
    # the node's entry is the one a plain `get` uses too
    plain = decoded(request(ACR_IMAGE))
    assert plain.auth == got.auth and len(AZURE.entra) == 1


def test_an_entra_refusal_that_echoes_the_pod_token_is_scrubbed(client_secret: Servers) -> None:  # noqa: F811
    AZURE.entra_status = 401
    token = sa_token()
    line = failed(acr_request(token, {ACR_CLIENT: POD_CLIENT_ID, ACR_TENANT: POD_TENANT}))
    assert "Entra ID token" in line and "invalid_client" in line and "***" in line
    assert token not in line and CLIENT_SECRET not in line
    assert len(AZURE.entra) == 1 and AZURE.acr == [] and cache_files() == []
