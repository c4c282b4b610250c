"""The kubelet plugin end to end: a request on stdin of the real executable, the answer decoded and matched as the
kubelet would (tests/kubelet_decoder.py), then skopeo pulls the image from a `docker-registry` on loopback with
exactly the credentials the kubelet would hand the runtime. ECR through moto in server mode (node identity, and a
pod's identity through moto's STS AssumeRoleWithWebIdentity), GCP through a loopback STS for a pod, an env preset
and the static store. The registry stands in for each cloud's behind a route for its loopback address."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from tests.conftest import require_tool, run_helper
from tests.fake_aws import aws_env
from tests.kubelet_decoder import decode_response, lookup
from tests.loopback import Loopback, QuietHandler
from tests.registry import REPO, OciImage, Registry, check, make_oci_layout, run, seed, write_htpasswd
from tests.test_ecr_moto import ECR_HOST, MOTO_PASSWORD, MOTO_USER, moto_url  # noqa: F401 - a fixture
from tests.test_kubelet import V1, request, sa_token

pytestmark = pytest.mark.e2e

NGC_KEY = "nvapi-e2e-key"
STATIC = ("alice", "stored-secret")
PROVIDER = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/k8s/providers/cluster"
GOOGLE_TOKEN = "ya29.federated-for-team-a-builder"  # what the stand-in STS mints for the expected pod only


class Sts(QuietHandler):
    """Google STS for one pod: the exact audience and that pod's token, else 400."""

    expected_token = ""

    def do_POST(self) -> None:
        form = {k: v[0] for k, v in parse_qs(self.body().decode()).items()}
        if form.get("audience") != PROVIDER or form.get("subject_token") != Sts.expected_token:
            self.send(400, b'{"error": "invalid_grant", "error_description": "wrong audience or subject"}')
            return
        self.send(200, json.dumps({"access_token": GOOGLE_TOKEN, "expires_in": 3600,
                                   "token_type": "Bearer"}).encode())


class Stage:
    """The registry, the image in it, the skopeo policy, and where things are."""

    def __init__(self, registry: Registry, image: OciImage, policy: Path, routes: Path) -> None:
        self.registry = registry
        self.image = image
        self.policy = policy
        self.routes = routes

    @property
    def repository(self) -> str:
        """The repository as the kubelet asks for it: registry host with its port, no tag."""
        return f"{self.registry.host}/{REPO}"

    def route(self, text: str) -> None:
        self.routes.write_text(f'[[route]]\nmatch = "{self.registry.host}"\n{text}\n')

    def pull_with(self, response: str) -> str:
        """What the kubelet would give the runtime for the image, used by skopeo: the manifest digest pulled."""
        decoded = decode_response(response.encode(), V1)
        found = lookup(decoded.auth, self.repository)
        assert found, f"no credentials in {sorted(decoded.auth)} match {self.repository}"
        user, password = found[0]
        done = check(["skopeo", "--policy", str(self.policy), "inspect", "--tls-verify=false",
                      "--creds", f"{user}:{password}", f"docker://{self.registry.image}"])
        return str(json.loads(done.out)["Digest"])


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    for tool in ("docker-registry", "htpasswd", "skopeo"):
        require_tool(tool)
    folder = tmp_path_factory.mktemp("kubelet-e2e")
    htpasswd = write_htpasswd(folder / "htpasswd", {MOTO_USER: MOTO_PASSWORD, "$oauthtoken": NGC_KEY,
                                                    STATIC[0]: STATIC[1], "oauth2accesstoken": GOOGLE_TOKEN})
    registry = Registry("kubelet", folder / "registry", htpasswd)
    policy = folder / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    image = make_oci_layout(folder / "oci")
    registry.start()
    try:
        seed(registry, image, STATIC[0], STATIC[1], dict(os.environ), policy)
        yield Stage(registry, image, policy, folder / "routes.toml")
    finally:
        registry.stop()


@pytest.fixture
def staged(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> Stage:
    stage.routes.write_text("")
    monkeypatch.setenv("SWITCHBOARD_CONFIG", str(stage.routes))
    return stage


def ask(data: bytes, env: dict[str, str] | None = None) -> str:
    result = run_helper("kubelet", data, env=env)
    assert (result.code, result.err) == (0, ""), result.err
    return result.out


def test_an_ecr_token_from_moto_pulls_the_image(staged: Stage, moto_url: str) -> None:  # noqa: F811
    staged.route(f'backend = "ecr"\nregistry = "{ECR_HOST}"')
    out = ask(request(staged.repository), aws_env(moto_url))
    decoded = decode_response(out.encode(), V1)
    assert decoded.cache_key_type == "Registry" and list(decoded.auth) == [staged.registry.host]
    assert decoded.cache_duration_s == 0  # moto's tokens expired in 2015: the kubelet must not keep one
    assert staged.pull_with(out) == staged.image.manifest_digest


def test_a_pods_role_through_motos_sts_pulls_the_image(staged: Stage, moto_url: str) -> None:  # noqa: F811
    staged.route(f'backend = "ecr"\nregistry = "{ECR_HOST}"')
    env = {k: v for k, v in aws_env(moto_url).items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    pod = request(staged.repository, serviceAccountToken=sa_token(),
                  serviceAccountAnnotations={"eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::123456789012:role/pull"})
    out = ask(pod, env)  # the node has no AWS credentials at all: only the pod's token can have signed this
    assert staged.pull_with(out) == staged.image.manifest_digest
    node = run_helper("kubelet", request(staged.repository), env=env)
    assert node.code == 1 and "NoCredentials" in node.err  # control: without the pod's token nothing answers


def test_a_pods_google_identity_through_a_loopback_sts_pulls_the_image(staged: Stage) -> None:
    server = Loopback(Sts)
    try:
        token = sa_token("team-a", "builder", "uid-1")
        Sts.expected_token = token
        staged.route(f'backend = "gcp"\nworkload_identity_provider = "{PROVIDER}"\n'
                     f'sts_endpoint = "{server.url}/v1/token"')
        pod = request(staged.repository, serviceAccountToken=token, serviceAccountAnnotations={})
        assert staged.pull_with(ask(pod)) == staged.image.manifest_digest
        other = run_helper("kubelet", request(staged.repository, serviceAccountToken=sa_token("team-b", "x", "u2")))
        assert other.code == 1 and "invalid_grant" in other.err  # another account is refused, not served team-a's
    finally:
        server.close()


def test_an_env_preset_pulls_the_image(staged: Stage) -> None:
    staged.route('backend = "env"\npreset = "ngc"')
    out = ask(request(staged.repository), dict(os.environ, NGC_API_KEY=NGC_KEY))
    assert staged.pull_with(out) == staged.image.manifest_digest


def test_a_stored_secret_pulls_the_image_and_a_wrong_one_does_not(staged: Stage) -> None:
    stored = run_helper("store", json.dumps({"ServerURL": staged.registry.host, "Username": STATIC[0],
                                             "Secret": STATIC[1]}))
    assert stored.code == 0
    out = ask(request(f"{staged.repository}:latest"))
    assert decode_response(out.encode(), V1).cache_key_type == "Image"
    assert staged.pull_with(out) == staged.image.manifest_digest
    run_helper("store", json.dumps({"ServerURL": staged.registry.host, "Username": STATIC[0], "Secret": "wrong"}))
    decoded = decode_response(ask(request(staged.repository)).encode(), V1)
    (user, password), = lookup(decoded.auth, staged.repository)
    denied = run(["skopeo", "--policy", str(staged.policy), "inspect", "--tls-verify=false", "--creds",
                  f"{user}:{password}", f"docker://{staged.registry.image}"])
    assert denied.code != 0 and "unauthorized" in denied.text.lower()  # control: skopeo really checks them
