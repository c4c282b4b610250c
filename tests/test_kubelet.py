"""`kubelet`: the image credential provider plugin, run as the kubelet runs it (a request on stdin of the real
executable), every answer put through the mirror of the kubelet's strict decoder and keyring
(tests/kubelet_decoder.py): what a real kubelet would accept, and which credentials it would use for the image."""

from __future__ import annotations

import base64
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import Result, run_helper
from tests.fake_aws import ECR_HOST, FakeEcr, aws_env
from tests.kubelet_decoder import Response, decode_response, lookup, urls_match

V1 = "credentialprovider.kubelet.k8s.io/v1"
VERSIONS = (V1, "credentialprovider.kubelet.k8s.io/v1beta1", "credentialprovider.kubelet.k8s.io/v1alpha1")
ROLE = "arn:aws:iam::123456789012:role/puller"


def request(image: str, version: str = V1, **extra: object) -> bytes:
    """A CredentialProviderRequest as the kubelet writes it (one object, newline-terminated)."""
    return (json.dumps({"kind": "CredentialProviderRequest", "apiVersion": version, "image": image, **extra})
            + "\n").encode()


def sa_token(namespace: str = "team-a", name: str = "builder", uid: str = "0f4c1b2e") -> str:
    """A bound service-account token's shape (the helper reads its claims unverified; the cloud verifies it)."""
    def part(doc: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    claims = {"aud": ["sts.amazonaws.com"], "sub": f"system:serviceaccount:{namespace}:{name}",
              "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid},
                                "pod": {"name": "p", "uid": "pod-uid"}}, "exp": int(time.time()) + 3600}
    return f"{part({'alg': 'RS256', 'kid': 'k'})}.{part(claims)}.c2lnbmF0dXJlLW9mLXRoZS1hcGktc2VydmVy"


def kubelet(data: bytes, env: dict[str, str] | None = None, *args: str) -> Result:
    return run_helper(["kubelet", *args], data, env=env)


def answer(data: bytes, env: dict[str, str] | None = None, version: str = V1, *args: str) -> Response:
    """A successful answer, decoded as the kubelet decodes it; stderr must be empty."""
    result = kubelet(data, env, *args)
    assert (result.code, result.err) == (0, ""), result.err
    return decode_response(result.out.encode(), version)


def store(key: str, user: str, secret: str) -> None:
    done = run_helper("store", json.dumps({"ServerURL": key, "Username": user, "Secret": secret}))
    assert done.code == 0, done.out


def cache_files() -> list[Path]:
    folder = Path(os.environ["XDG_CACHE_HOME"]) / "docker-credential-switchboard"
    return sorted(folder.glob("*.json")) if folder.exists() else []


# -- the wire -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_every_api_version_is_answered_in_its_own_version_and_passes_the_strict_decoder(version: str) -> None:
    store("registry.corp.example", "alice", "s3cret")
    got = answer(request("registry.corp.example/team/app", version), version=version)
    assert got.api_version == version and got.kind == "CredentialProviderResponse"
    assert lookup(got.auth, "registry.corp.example/team/app") == [("alice", "s3cret")]


def test_the_answer_is_one_line_of_exactly_the_kubelets_fields() -> None:
    store("registry.corp.example", "alice", "s3cret")
    out = kubelet(request("registry.corp.example/app")).out
    assert out.count("\n") == 1 and out.endswith("\n")
    assert set(json.loads(out)) == {"kind", "apiVersion", "cacheKeyType", "cacheDuration", "auth"}


def test_no_route_and_no_secret_is_an_empty_answer_the_kubelet_does_not_cache() -> None:
    got = answer(request("quay.io/org/app"))
    assert got.auth == {} and got.cache_duration_s == 0 and got.cache_key_type == "Registry"


def test_an_anonymous_route_answers_nothing_even_with_a_stored_secret(routes: Path) -> None:
    store("registry.corp.example", "alice", "s3cret")
    routes.write_text('[[route]]\nmatch = "registry.corp.example"\nbackend = "none"\n')
    assert answer(request("registry.corp.example/app")).auth == {}


@pytest.mark.parametrize("image", ["registry.corp.example/app:1.0", "registry.corp.example/app@sha256:" + "a" * 64,
                                   "registry.corp.example/app:1.0@sha256:" + "b" * 64])
def test_a_tag_or_digest_in_the_image_is_cut(image: str) -> None:
    store("registry.corp.example", "alice", "s3cret")
    got = answer(request(image))
    assert list(got.auth) == ["registry.corp.example"] and got.cache_key_type == "Image"
    assert lookup(got.auth, "registry.corp.example/app") == [("alice", "s3cret")]


def test_a_repository_under_v2_is_still_matched() -> None:
    """The kubelet's keyring strips a leading /v1/ or /v2/ from a key's path: a key with the repository would
    stop matching `host/v2/app`; the registry key with `cacheKeyType: Image` matches and stays per image."""
    store("registry.corp.example", "alice", "s3cret")
    got = answer(request("registry.corp.example/v2/app"))
    assert lookup(got.auth, "registry.corp.example/v2/app") == [("alice", "s3cret")]


def test_a_helper_route_is_asked_for_the_registry_as_docker_asks(routes: Path, tmp_path: Path) -> None:
    """`pass`, `secretservice` and `osxkeychain` look credentials up by server name: a kubelet request for a
    repository must reach them as the registry host, exactly what `docker pull` makes them answer."""
    asked = tmp_path / "asked"
    program = tmp_path / "docker-credential-hostonly"
    program.write_text(f'#!/bin/sh\nread key\necho "$key" >> {asked}\n'
                       'if [ "$key" = registry.corp.example ]; then\n'
                       '  echo \'{"ServerURL":"registry.corp.example","Username":"bob","Secret":"from-helper"}\'\n'
                       'else echo "credentials not found in native keychain"; exit 1; fi\n')
    program.chmod(0o755)
    routes.write_text(f'[[route]]\nmatch = "registry.corp.example"\nbackend = "helper"\nhelper = "{program}"\n')
    got = answer(request("registry.corp.example/team/app"))
    assert lookup(got.auth, "registry.corp.example/team/app") == [("bob", "from-helper")]
    assert asked.read_text().split() == ["registry.corp.example"]


def test_a_registry_port_is_kept_in_the_key_as_the_kubelet_matches_ports_exactly() -> None:
    store("registry.corp.example:5000", "alice", "s3cret")
    got = answer(request("registry.corp.example:5000/app"))
    assert lookup(got.auth, "registry.corp.example:5000/app") == [("alice", "s3cret")]
    (key,) = got.auth
    assert not urls_match(key, "registry.corp.example/app")  # control: the port is in the key
    assert answer(request("registry.corp.example/app")).auth == {}  # another registry: no secret stored


def test_a_secret_stored_for_a_namespace_serves_that_namespace_only() -> None:
    store("ghcr.io/org-a", "alice", "for-org-a")
    store("ghcr.io", "bob", "for-the-rest")
    mine = answer(request("ghcr.io/org-a/app"))
    other = answer(request("ghcr.io/org-b/app"))
    assert mine.cache_key_type == other.cache_key_type == "Image"  # per repository: never registry-wide
    assert lookup(mine.auth, "ghcr.io/org-a/app") == [("alice", "for-org-a")]
    assert lookup(other.auth, "ghcr.io/org-b/app") == [("bob", "for-the-rest")]
    # org-a's answer is keyed by the registry; only the Image cache key keeps the kubelet from using it for
    # another repository: the kubelet looks it up under "ghcr.io/org-a/app" alone


def test_a_docker_login_serves_docker_hub_images_as_the_kubelet_names_them() -> None:
    store("https://index.docker.io/v1/", "hubuser", "hub-token")
    for image in ("docker.io/library/nginx", "nginx", "library/nginx:1.27"):
        got = answer(request(image))
        assert lookup(got.auth, "docker.io/library/nginx") == [("hubuser", "hub-token")], image


def test_an_env_preset_answers_for_nvcr_io() -> None:
    got = answer(request("nvcr.io/nvidia/cuda"), dict(os.environ, NGC_API_KEY="nvapi-key"))
    assert lookup(got.auth, "nvcr.io/nvidia/cuda") == [("$oauthtoken", "nvapi-key")]


def test_a_static_answer_is_kept_for_the_static_cache_duration() -> None:
    store("registry.corp.example", "alice", "s3cret")
    assert answer(request("registry.corp.example/app")).cache_duration_s == 300
    assert answer(request("registry.corp.example/app"), None, V1, "--static-cache", "60").cache_duration_s == 60
    assert answer(request("registry.corp.example/app"), None, V1, "--static-cache", "0").cache_duration_s == 0
    bad = kubelet(request("registry.corp.example/app"), None, "--static-cache", "-5")
    assert bad.code == 1 and bad.out == "" and len(bad.err.splitlines()) == 1


BAD_REQUESTS = {
    "not JSON": b"image=registry.corp.example/app\n",
    "a JSON array": b"[]",
    "the wrong kind": request("x").replace(b"CredentialProviderRequest", b"CredentialProviderResponse"),
    "an unknown apiVersion": request("registry.corp.example/app", "credentialprovider.kubelet.k8s.io/v2"),
    "no image": json.dumps({"kind": "CredentialProviderRequest", "apiVersion": V1}).encode(),
    "an empty image": request(""),
    "an image that is a number": json.dumps({"kind": "CredentialProviderRequest", "apiVersion": V1,
                                             "image": 5}).encode(),
    "a 10 MB request": request("registry.corp.example/app", padding="x" * 10_000_000),
    "a token that is not a JWT": request(ECR_HOST + "/app", serviceAccountToken="not-a-jwt-secret-value"),
    "a token whose claims are not JSON": request(ECR_HOST + "/app", serviceAccountToken="YQ.YQ.YQ"),
    "a token naming no service account": request(ECR_HOST + "/app", serviceAccountToken=sa_token().split(".")[0]
                                                 + ".eyJzdWIiOiJ4In0.c2ln"),
    "annotations that are not strings": request(ECR_HOST + "/app", serviceAccountToken=sa_token(),
                                                serviceAccountAnnotations={"a": 1}),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_a_bad_request_is_one_line_on_stderr_exit_1_and_nothing_asked_or_cached(
        name: str, fake_ecr: FakeEcr) -> None:
    result = kubelet(BAD_REQUESTS[name], aws_env(fake_ecr.url))
    assert (result.code, result.out) == (1, ""), result.out
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert "not-a-jwt-secret-value" not in result.err and "testing-secret" not in result.err
    assert fake_ecr.count() == 0 and fake_ecr.web_identity_calls == [] and cache_files() == []


def test_a_bad_routes_file_is_one_line_on_stderr(routes: Path) -> None:
    routes.write_text("[[route]]\nmatch = 5\n")
    result = kubelet(request("registry.corp.example/app"))
    assert (result.code, result.out) == (1, "") and str(routes) in result.err and len(result.err.splitlines()) == 1


# -- token routes, node identity --------------------------------------------------------------------------------

def test_an_ecr_token_is_cached_by_registry_until_its_advisory_refresh(fake_ecr: FakeEcr) -> None:
    got = answer(request(f"{ECR_HOST}/app"), aws_env(fake_ecr.url))
    assert got.cache_key_type == "Registry"
    assert got.auth == {ECR_HOST: ("AWS", "token-1")}
    # 12 h token, refreshed 15 min early: the kubelet must not keep it past that
    assert got.cache_duration_s is not None and 11 * 3600 + 44 * 60 <= got.cache_duration_s <= 11 * 3600 + 45 * 60
    assert lookup(got.auth, f"{ECR_HOST}/other/repo") == [("AWS", "token-1")]


def test_a_short_lived_token_is_kept_only_to_its_refresh(fake_ecr: FakeEcr) -> None:
    fake_ecr.lifetime = 20 * 60  # the advisory window is then half the life: 10 min
    got = answer(request(f"{ECR_HOST}/app"), aws_env(fake_ecr.url))
    assert got.cache_duration_s is not None and 9 * 60 <= got.cache_duration_s <= 10 * 60


def test_the_kubelet_and_get_share_one_token_cache(fake_ecr: FakeEcr) -> None:
    env = aws_env(fake_ecr.url)
    assert run_helper("get", ECR_HOST, env=env).code == 0
    got = answer(request(f"{ECR_HOST}/app"), env)
    assert got.auth == {ECR_HOST: ("AWS", "token-1")} and fake_ecr.count() == 1


def test_fifty_pods_pulling_at_once_make_one_token_request(fake_ecr: FakeEcr) -> None:
    fake_ecr.delay = 0.5
    env = aws_env(fake_ecr.url)
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda n: kubelet(request(f"{ECR_HOST}/app-{n}"), env), range(50)))
    assert all(r.code == 0 for r in results), [r.err for r in results if r.code]
    assert {json.dumps(json.loads(r.out)["auth"]) for r in results} == {json.dumps({ECR_HOST: {
        "username": "AWS", "password": "token-1"}})}
    assert fake_ecr.count() == 1


def test_a_cloud_that_refuses_is_exit_1_with_the_reason_and_no_secret(fake_ecr: FakeEcr) -> None:
    fake_ecr.mode = "denied"
    result = kubelet(request(f"{ECR_HOST}/app"), aws_env(fake_ecr.url))
    assert (result.code, result.out) == (1, "")
    assert len(result.err.splitlines()) == 1
    assert ECR_HOST in result.err and "AccessDenied" in result.err
    assert "testing-secret" not in result.err


def test_a_cloud_that_is_down_still_answers_from_a_stored_secret(fake_ecr: FakeEcr) -> None:
    store(ECR_HOST, "AWS", "stored-by-an-operator")
    fake_ecr.mode = "500"
    got = answer(request(f"{ECR_HOST}/app"), aws_env(fake_ecr.url))
    assert lookup(got.auth, f"{ECR_HOST}/app") == [("AWS", "stored-by-an-operator")]
    assert got.cache_key_type == "Image"


# -- per-pod identity (KEP-4412) ----------------------------------------------------------------------------------

def pod_request(token: str, annotations: dict[str, str] | None = None, image: str = f"{ECR_HOST}/app") -> bytes:
    return request(image, serviceAccountToken=token, serviceAccountAnnotations=annotations or {})


def test_a_pods_role_annotation_is_assumed_with_its_token_and_signs_the_ecr_call(fake_ecr: FakeEcr) -> None:
    token = sa_token()
    got = answer(pod_request(token, {"eks.amazonaws.com/ecr-role-arn": ROLE}), aws_env(fake_ecr.url))
    assert got.auth == {ECR_HOST: ("AWS", "token-1")} and got.cache_key_type == "Registry"
    (call,) = fake_ecr.web_identity_calls
    assert call["RoleArn"] == ROLE and call["WebIdentityToken"] == token
    assert call["RoleSessionName"] == "k8s.team-a.builder"
    assert fake_ecr.key_ids == ["ASIAWEBPULLER"]  # the pod's role signed GetAuthorizationToken, not the node's keys


def test_without_an_annotation_the_routes_role_arn_is_assumed_as_the_pod(fake_ecr: FakeEcr, routes: Path) -> None:
    routes.write_text(f'[[route]]\nmatch = "{ECR_HOST}"\nbackend = "ecr"\nrole_arn = "{ROLE}-route"\n')
    answer(pod_request(sa_token()), aws_env(fake_ecr.url))
    assert [c["RoleArn"] for c in fake_ecr.web_identity_calls] == [f"{ROLE}-route"]
    assert fake_ecr.assume_role_calls == []  # never the node's AssumeRole


def test_a_pod_whose_route_names_no_role_pulls_as_the_node(fake_ecr: FakeEcr) -> None:
    got = answer(pod_request(sa_token()), aws_env(fake_ecr.url))
    assert got.auth == {ECR_HOST: ("AWS", "token-1")}
    assert fake_ecr.web_identity_calls == [] and fake_ecr.key_ids == ["testing"]


def test_service_accounts_never_share_a_token_and_one_account_reuses_its_own(fake_ecr: FakeEcr) -> None:
    env = aws_env(fake_ecr.url)
    annotations = {"eks.amazonaws.com/ecr-role-arn": ROLE}
    a1 = answer(pod_request(sa_token("team-a", "builder", "uid-a"), annotations), env)
    b = answer(pod_request(sa_token("team-b", "builder", "uid-b"), annotations), env)
    a2 = answer(pod_request(sa_token("team-a", "builder", "uid-a"), annotations), env)  # another pod, same account
    node = answer(request(f"{ECR_HOST}/app"), env)
    assert a1.auth == a2.auth != b.auth
    assert node.auth not in (a1.auth, b.auth)
    assert len(fake_ecr.web_identity_calls) == 2 and fake_ecr.count() == 3
    other_role = answer(pod_request(sa_token("team-a", "builder", "uid-a"),
                                    {"eks.amazonaws.com/ecr-role-arn": ROLE + "-2"}), env)
    assert other_role.auth != a1.auth  # a changed annotation is another identity


def test_the_service_account_token_is_never_cached_logged_or_shown(fake_ecr: FakeEcr, tmp_path: Path) -> None:
    token = sa_token()
    log = tmp_path / "switchboard.log"
    env = aws_env(fake_ecr.url, SWITCHBOARD_LOG=str(log))
    answer(pod_request(token, {"eks.amazonaws.com/ecr-role-arn": ROLE}), env)
    fake_ecr.mode = "denied"
    failed = kubelet(pod_request(sa_token(uid="another"), {"eks.amazonaws.com/ecr-role-arn": ROLE}), env)
    assert failed.code == 1 and "AccessDenied" in failed.err
    files = cache_files()
    assert files  # control: the token was cached, under the service account
    signature = token.rsplit(".", 1)[1]
    for path in [*files, log]:
        text = path.read_text()
        assert token not in text and signature not in text, path
    assert "team-a/builder" in files[0].name.replace("_", "/") or any("team-a" in f.name for f in files)


def test_a_pods_role_does_not_depend_on_the_nodes_aws_credentials(fake_ecr: FakeEcr, tmp_path: Path) -> None:
    """The STS call is unsigned: a node whose own credentials fail (here a credential_process that exits 1)
    still serves a pod its role. The node's profile still says where to ask (endpoints, CA bundle)."""
    env = aws_env(fake_ecr.url)
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    config = tmp_path / "aws-config"
    config.write_text("[default]\ncredential_process = /bin/false\n")
    env.update(AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    got = answer(pod_request(sa_token(), {"eks.amazonaws.com/ecr-role-arn": ROLE}), env)
    assert got.auth == {ECR_HOST: ("AWS", "token-1")}
    assert fake_ecr.key_ids == ["ASIAWEBPULLER"]
    node_asks = kubelet(request(f"{ECR_HOST}/app"), env)
    assert node_asks.code == 1  # control: the node itself has no usable credentials


@pytest.mark.parametrize(("data", "said"), [
    (b"", "the request is empty"),
    (b"  \n", "the request is empty"),
    (b'{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"x"}', "kind is missing"),
    (b'{"kind":"CredentialProviderRequest","image":"x"}', "apiVersion is missing"),
    (b'{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"x"',
     "the request is not JSON"),
])
def test_an_empty_truncated_or_incomplete_request_says_what_is_wrong(data: bytes, said: str) -> None:
    result = kubelet(data)
    assert (result.code, result.out) == (1, "")
    assert said in result.err and "internal error" not in result.err and len(result.err.splitlines()) == 1
