"""ECR end to end against moto in server mode: the real helper gets moto's token through botocore
(AWS_ENDPOINT_URL), and skopeo pulls with it from a `docker-registry` whose htpasswd accepts that token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NOT_FOUND, helper_executable, require_tool, run_helper
from tests.fake_aws import aws_env
from tests.registry import Registry, check, free_port, make_oci_layout, run, seed, write_htpasswd

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
ECR_HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
MOTO_USER, MOTO_PASSWORD = "AWS", f"{ACCOUNT}-auth-token"  # moto's fixed answer (CLIENTS.md §4)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1)  # noqa: S310 - loopback test server
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)




def test_get_returns_motos_token_and_never_caches_its_2015_expiry(moto_url: str) -> None:
    env = aws_env(moto_url)
    for key in (ECR_HOST, f"{ECR_HOST}:8443", f"https://{ECR_HOST}/v2/"):
        result = run_helper("get", key, env=env)
        assert result.code == 0, result.out
        assert json.loads(result.out) == {"ServerURL": key, "Username": MOTO_USER, "Secret": MOTO_PASSWORD}
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "docker-credential-switchboard"
    assert not list(cache.glob("*.json")) if cache.exists() else True
    assert json.loads(run_helper("list", None, env=env).out) == {}


def test_no_aws_credentials_is_a_quick_clean_not_found(moto_url: str) -> None:
    env = {k: v for k, v in aws_env(moto_url).items() if not k.startswith("AWS_ACCESS") and
           not k.startswith("AWS_SECRET")}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    started = time.monotonic()
    result = run_helper("get", ECR_HOST, env=env)
    assert (result.code, result.out, result.err) == (1, NOT_FOUND + "\n", "")
    assert time.monotonic() - started < 10


def test_skopeo_pulls_through_an_alias_route_to_ecr(moto_url: str, tmp_path: Path) -> None:
    """`registry.corp` in front of ECR: the route's `registry` names the ECR registry whose token to use."""
    for tool in ("docker-registry", "htpasswd", "skopeo"):
        require_tool(tool)
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {MOTO_USER: MOTO_PASSWORD})
    registry = Registry("ecr-alias", tmp_path / "registry", htpasswd)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    image = make_oci_layout(tmp_path / "oci")
    env = aws_env(moto_url)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker-credential-switchboard").symlink_to(Path(helper_executable()).absolute())
    routes = tmp_path / "routes.toml"
    routes.write_text(f'[[route]]\nmatch = "{registry.host}"\nbackend = "ecr"\nregistry = "{ECR_HOST}"\n')
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"credHelpers": {registry.host: "switchboard"}}))
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", SWITCHBOARD_CONFIG=str(routes))
    registry.start()
    try:
        seed(registry, image, MOTO_USER, MOTO_PASSWORD, env, policy)
        inspect = ["skopeo", "--policy", str(policy), "inspect", "--authfile", str(authfile), "--tls-verify=false",
                   f"docker://{registry.image}"]
        done = check(inspect, env=env)
        assert json.loads(done.out)["Digest"] == image.manifest_digest
        routes.write_text("")  # without the alias route the host is just a static-store host: unauthorized
        denied = run(inspect, env=env)
        assert denied.code != 0 and "unauthorized" in denied.text.lower()
    finally:
        registry.stop()
