"""The README's recipes for runtimes that cannot call a helper, run as written: each test reads its block from
README.md (after a `<!-- recipe: NAME -->` marker), so the README cannot drift from what works."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml  # type: ignore[import-untyped]

from tests.conftest import ROOT, helper_executable, require_tool, run_helper
from tests.fake_aws import ECR_HOST, FakeEcr, aws_env
from tests.loopback import Loopback, QuietHandler
from tests.test_export import enroot_netrc


def recipe(name: str) -> str:
    """The fenced block that follows `<!-- recipe: NAME -->` in README.md."""
    found = re.search(rf"<!-- recipe: {name} -->\n```[a-z]*\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    assert found, f"README.md has no recipe {name!r}"
    return found.group(1) + "\n"


def bin_dir(tmp_path: Path) -> Path:
    """A folder with `docker-credential-switchboard` (the helper under test), first on the recipes' PATH."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    link = folder / "docker-credential-switchboard"
    if not link.exists():
        link.symlink_to(Path(helper_executable()).absolute())
    return folder


def store(key: str, user: str, secret: str) -> None:
    done = run_helper("store", json.dumps({"ServerURL": key, "Username": user, "Secret": secret}))
    assert done.code == 0, done.out


# -- imagePullSecrets refreshed by a CronJob -------------------------------------------------------------------

class Cluster(QuietHandler):
    """An API server as far as the recipe needs it: discovery for its kinds, and Secrets in `apps` that
    `kubectl apply` creates (GET 404 first, then POST)."""

    created: ClassVar[list[dict[str, Any]]] = []
    lock = threading.Lock()
    RESOURCES: ClassVar[dict[str, tuple[str, list[tuple[str, str]]]]] = {
        "/api/v1": ("v1", [("secrets", "Secret"), ("serviceaccounts", "ServiceAccount")]),
        "/apis/rbac.authorization.k8s.io/v1": ("rbac.authorization.k8s.io/v1", [("roles", "Role"),
                                                                               ("rolebindings", "RoleBinding")]),
        "/apis/batch/v1": ("batch/v1", [("cronjobs", "CronJob")]),
    }

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/api":
            self.send(200, json.dumps({"kind": "APIVersions", "versions": ["v1"]}).encode())
        elif path == "/apis":
            groups = [{"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                       "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}}
                      for g in ("rbac.authorization.k8s.io", "batch")]
            self.send(200, json.dumps({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}).encode())
        elif path in self.RESOURCES:
            version, kinds = self.RESOURCES[path]
            resources = [{"name": name, "singularName": kind.lower(), "namespaced": True, "kind": kind,
                          "verbs": ["create", "get", "list", "patch", "update", "delete"]} for name, kind in kinds]
            self.send(200, json.dumps({"kind": "APIResourceList", "groupVersion": version,
                                       "resources": resources}).encode())
        else:
            self.send(404, json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                       "reason": "NotFound", "code": 404}).encode())

    def do_POST(self) -> None:
        doc = json.loads(self.body())
        if self.path.split("?", 1)[0] != "/api/v1/namespaces/apps/secrets":
            self.send(404, b"{}")
            return
        with Cluster.lock:
            Cluster.created.append(doc)
        self.send(201, json.dumps(doc).encode())


def test_the_cronjob_recipe_parses_as_kubernetes_objects_and_its_command_writes_the_secret(
        fake_ecr: FakeEcr, tmp_path: Path) -> None:
    kubectl = require_tool("kubectl")
    block = recipe("cronjob")
    manifest = tmp_path / "cronjob.yaml"
    manifest.write_text(block)
    server = Loopback(Cluster)
    Cluster.created = []
    try:
        parsed = subprocess.run([kubectl, "--server", server.url, "create", "-f", str(manifest), "--dry-run=client",
                                 "--validate=false", "-o", "json"], capture_output=True, text=True, check=False,
                                env={"PATH": os.environ["PATH"], "HOME": os.environ["HOME"]})
        assert parsed.returncode == 0, parsed.stderr
        decoder, text, kinds = json.JSONDecoder(), parsed.stdout.strip(), []
        while text:  # kubectl prints one JSON object per document
            item, end = decoder.raw_decode(text)
            kinds.append(item["kind"])
            text = text[end:].strip()
        assert kinds == ["ServiceAccount", "Role", "RoleBinding", "CronJob"]

        job = next(doc for doc in yaml.safe_load_all(block) if doc["kind"] == "CronJob")
        container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["/bin/sh", "-ec"]
        # the container's kubectl, pointed at this stand-in cluster (which serves no OpenAPI to validate with)
        tools = bin_dir(tmp_path)
        (tools / "kubectl").write_text(f'#!/bin/sh\nexec {kubectl} --server {server.url} "$@" --validate=false\n')
        (tools / "kubectl").chmod(0o755)
        env = aws_env(fake_ecr.url, PATH=f"{tools}:{os.environ['PATH']}")
        done = subprocess.run(container["command"] + container["args"], capture_output=True, text=True, env=env,
                              check=False)
        assert done.returncode == 0, done.stderr
    finally:
        server.close()
    (secret,) = Cluster.created
    assert secret["metadata"]["name"] == "ecr-pull" and secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert config["auths"][ECR_HOST]["password"] == "token-1"
    assert f"{ECR_HOST}: a token, expires at" in done.stderr


# -- Enroot and Pyxis ---------------------------------------------------------------------------------------------

def test_the_enroot_recipe_writes_a_credentials_file_without_secrets_that_enroot_evaluates(
        fake_ecr: FakeEcr, tmp_path: Path) -> None:
    shared = tmp_path / "shared-enroot"
    shared.mkdir()
    block = recipe("enroot").replace("/shared/enroot", str(shared))
    env = aws_env(fake_ecr.url, NGC_API_KEY="nvapi-recipe-key", PATH=f"{bin_dir(tmp_path)}:{os.environ['PATH']}")
    done = subprocess.run(["sh", "-ec", block], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    text = (shared / ".credentials").read_text()
    assert "nvapi-recipe-key" not in text and "token-1" not in text  # the shared file holds no secret
    assert (shared / ".credentials").stat().st_mode & 0o777 == 0o600
    lines = enroot_netrc(text, env).splitlines()
    assert lines == ["machine nvcr.io login $oauthtoken password nvapi-recipe-key",
                     "machine authn.nvidia.com login $oauthtoken password nvapi-recipe-key",
                     f"machine {ECR_HOST} login AWS password token-1"]


# -- Apptainer ----------------------------------------------------------------------------------------------------

def test_the_apptainer_recipe_configures_the_helper_and_its_env_lines_carry_the_secret(tmp_path: Path) -> None:
    store("registry.corp.example", "alice", "s3cret with 'quotes'")
    block = recipe("apptainer")
    env = dict(os.environ, PATH=f"{bin_dir(tmp_path)}:{os.environ['PATH']}")
    done = subprocess.run(["sh", "-ec", block + 'printf "%s\\n%s" "$APPTAINER_DOCKER_USERNAME" '
                           '"$APPTAINER_DOCKER_PASSWORD"'], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["alice", "s3cret with 'quotes'"]
    config = json.loads((Path(os.environ["HOME"]) / ".apptainer/docker-config.json").read_text())
    assert config == {"credsStore": "switchboard"}
    # what Apptainer then asks the helper (docker/cli's config): the repository first, then the registry
    for key in ("registry.corp.example/team/app", "registry.corp.example"):
        answer = run_helper("get", key)
        assert answer.code == 0 and json.loads(answer.out)["Secret"] == "s3cret with 'quotes'", key


# -- Vault / OpenBao ----------------------------------------------------------------------------------------------

VAULT_TOKEN = "hvs.recipe-test-token"


class Vault(QuietHandler):
    """Vault's KV v2 read API: GET /v1/secret/data/<path> with X-Vault-Token."""

    reads: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Vault.reads.append(self.path)
        if self.headers.get("X-Vault-Token") != VAULT_TOKEN:
            self.send(403, b'{"errors": ["permission denied"]}')
        elif self.path == "/v1/secret/data/registry/corp":
            self.send(200, json.dumps({"data": {"data": {"password": "from-vault"}, "metadata": {"version": 3}}})
                      .encode())
        else:
            self.send(404, b'{"errors": []}')


# A stand-in for the `vault` CLI (not installable here): `vault kv get -field=F MOUNT/PATH` as Vault 1.x does it
# for a KV v2 mount, from VAULT_ADDR with VAULT_TOKEN; exit 2 and a message on stderr when Vault refuses.
VAULT_CLI = """import json, os, sys, urllib.request, urllib.error
args = sys.argv[1:]
assert args[:2] == ["kv", "get"], args
field = next(a.split("=", 1)[1] for a in args if a.startswith("-field="))
mount, _, path = args[-1].partition("/")
request = urllib.request.Request(f"{os.environ['VAULT_ADDR']}/v1/{mount}/data/{path}",
                                 headers={"X-Vault-Token": os.environ.get("VAULT_TOKEN", "")})
try:
    doc = json.load(urllib.request.urlopen(request, timeout=5))
except urllib.error.HTTPError as exc:
    sys.stderr.write(f"Error reading {mount}/data/{path}: Code: {exc.code}\\n")
    sys.exit(2)
sys.stdout.write(doc["data"]["data"][field])
"""


def test_the_vault_recipe_route_reads_the_secret_once_for_many_gets(routes: Path, tmp_path: Path) -> None:
    routes.write_text(recipe("vault"))
    tools = bin_dir(tmp_path)
    (tools / "vault").write_text(f"#!{sys.executable}\n{VAULT_CLI}")
    (tools / "vault").chmod(0o755)
    server = Loopback(Vault)
    Vault.reads = []
    try:
        env = dict(os.environ, PATH=f"{tools}:{os.environ['PATH']}", VAULT_ADDR=server.url, VAULT_TOKEN=VAULT_TOKEN)
        for _ in range(5):
            answer = run_helper("get", "registry.corp.example", env=env)
            assert answer.code == 0, answer.out
            assert json.loads(answer.out) == {"ServerURL": "registry.corp.example", "Username": "ci-puller",
                                              "Secret": "from-vault"}
        assert Vault.reads == ["/v1/secret/data/registry/corp"]  # ttl = 900: one read serves them all
        refused = run_helper("get", "other.corp.example", env=dict(env, VAULT_TOKEN="wrong"))
        assert refused.code == 1  # control: not routed to Vault, nothing stored
    finally:
        server.close()


@pytest.mark.parametrize("name", ["cronjob", "enroot", "apptainer", "vault"])
def test_every_recipe_block_is_in_the_readme(name: str) -> None:
    assert recipe(name).strip()
