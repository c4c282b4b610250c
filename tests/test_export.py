"""`export` through the real consumers: kubectl (its own `create secret docker-registry`, and `create -f` of our
file against a minimal API server on loopback), curl with the netrc as Enroot runs it, skopeo and podman with the
exported `--authfile`, and `sh` sourcing the env lines. Plus the rules: one line and nothing written on any error,
0600 and atomic with `--out`, a token's expiry on stderr and `--min-valid`."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from tests.conftest import Result, helper_executable, require_tool, run_helper
from tests.fake_aws import ECR_HOST, FakeEcr, aws_env
from tests.loopback import Loopback, QuietHandler
from tests.registry import REPO, TAG, Registry
from tests.test_e2e_clients import (  # noqa: F401 - fixtures
    PASSWORD,
    SPECIAL_PASSWORD,
    SPECIAL_USER,
    USER,
    Env,
    Lab,
    env,
    lab,
)

MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"


def export(*args: str, environ: dict[str, str] | None = None) -> Result:
    return run_helper(["export", *args], None, env=environ)


def store(key: str, user: str, secret: str, environ: dict[str, str] | None = None) -> None:
    done = run_helper("store", json.dumps({"ServerURL": key, "Username": user, "Secret": secret}), env=environ)
    assert done.code == 0, done.out


def ok(result: Result) -> str:
    assert result.code == 0, result.err
    return result.out


def failed(result: Result) -> str:
    """The one stderr line of a refused export; nothing on stdout."""
    assert (result.code, result.out) == (1, ""), (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


# -- dockerconfigjson and k8s-secret ------------------------------------------------------------------------------

def test_dockerconfigjson_keys_docker_hub_as_docker_does_and_carries_auth() -> None:
    store("docker.io", "hubuser", "hub-token")
    store("ghcr.io/org", "alice", "p<&>")
    doc = json.loads(ok(export("--format", "dockerconfigjson", "--all")))
    assert doc == {"auths": {
        "https://index.docker.io/v1/": {"username": "hubuser", "password": "hub-token",
                                        "auth": base64.b64encode(b"hubuser:hub-token").decode()},
        "ghcr.io/org": {"username": "alice", "password": "p<&>", "auth": base64.b64encode(b"alice:p<&>").decode()}}}


def test_k8s_secret_equals_what_kubectl_makes_for_the_same_credentials() -> None:
    kubectl = require_tool("kubectl")
    store("https://index.docker.io/v1/", "hubuser", 'p<a>&"\\\u00fc:x y')
    ours = ok(export("--format", "k8s-secret", "--name", "regcred", "--namespace", "ci", "docker.io"))
    theirs = subprocess.run([kubectl, "create", "secret", "docker-registry", "regcred", "-n", "ci",
                             "--docker-server=https://index.docker.io/v1/", "--docker-username=hubuser",
                             f"--docker-password={chr(112)}<a>&\"\\\u00fc:x y", "--dry-run=client", "-o", "yaml"],
                            capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"],
                                                                              "HOME": os.environ["HOME"]}).stdout
    mine, kubes = yaml.safe_load(ours), yaml.safe_load(theirs)
    kubes["metadata"].pop("creationTimestamp", None)  # older kubectl writes `null`
    assert mine == kubes
    assert ours.replace("  creationTimestamp: null\n", "") == theirs.replace("  creationTimestamp: null\n", "")


class ApiServer(QuietHandler):
    """Just enough of an API server for `kubectl create -f --dry-run=client`: discovery for core/v1 Secrets (no
    OpenAPI documents, so kubectl's schema validation is off: kubectl still decodes the file into a Secret)."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        docs: dict[str, object] = {
            "/api": {"kind": "APIVersions", "versions": ["v1"],
                     "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
            "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
            "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
                 "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}]},
        }
        if path in docs:
            self.send(200, json.dumps(docs[path]).encode())
        else:
            self.send(404, b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}')


def test_kubectl_reads_the_exported_secret_file_as_a_secret(tmp_path: Path) -> None:
    kubectl = require_tool("kubectl")
    store("registry.corp.example:5000", "alice", "s3cret")
    out = tmp_path / "secret.yaml"
    ok(export("--format", "k8s-secret", "--name", "regcred", "--out", str(out), "registry.corp.example:5000"))
    server = Loopback(ApiServer)
    try:
        done = subprocess.run([kubectl, "--server", server.url, "--insecure-skip-tls-verify", "create", "-f",
                               str(out), "--dry-run=client", "--validate=false", "-o", "json"],
                              capture_output=True, text=True, check=False,
                              env={"PATH": os.environ["PATH"], "HOME": os.environ["HOME"]})
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    secret = json.loads(done.stdout)
    assert (secret["kind"], secret["type"], secret["metadata"]["name"]) == (
        "Secret", "kubernetes.io/dockerconfigjson", "regcred")
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert config["auths"]["registry.corp.example:5000"]["password"] == "s3cret"


def test_skopeo_and_podman_pull_with_the_exported_authfile(lab: Lab, env: Env) -> None:  # noqa: F811
    for tool in ("skopeo", "podman"):
        require_tool(tool)
    registry = lab.plain
    store(registry.host, USER, PASSWORD, environ=env.env)
    authfile = env.work / "exported.json"
    ok(export("--format", "dockerconfigjson", "--out", str(authfile), registry.host, environ=env.env))
    done = env.skopeo("inspect", "--authfile", str(authfile), *registry.tls_flags(), f"docker://{registry.image}")
    assert done.code == 0, done
    assert json.loads(done.out)["Digest"] == lab.image.manifest_digest
    pulled = env.podman("pull", "--quiet", "--authfile", str(authfile), "--signature-policy", str(env.policy),
                        *registry.tls_flags(), registry.image)
    assert pulled.code == 0, pulled
    assert f"sha256:{pulled.out.strip()}" == lab.image.config_digest
    authfile.write_text(json.dumps({"auths": {}}))  # control: without the export, the registry refuses
    denied = env.skopeo("inspect", "--authfile", str(authfile), *registry.tls_flags(), f"docker://{registry.image}")
    assert denied.code != 0


# -- netrc: curl as Enroot runs it --------------------------------------------------------------------------------

def enroot_netrc(text: str, environ: dict[str, str]) -> str:
    """The netrc as Enroot hands it to curl (NVIDIA/enroot src/common.sh common::evalnetrc): a password field
    that starts with `$` is replaced by what `sh -c "echo ..."` prints for the rest of the line."""
    lines = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[4] == "password" and fields[5].startswith("$"):
            rest = line.split(" password ", 1)[1]
            value = subprocess.run(["sh", "-c", f"echo {rest}"], capture_output=True, text=True, env=environ,
                                   check=True).stdout.strip()
            line = " ".join([*fields[:5], value])
        lines.append(line)
    return "\n".join(lines) + "\n"


def curl_manifest(registry: Registry, netrc: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--netrc-file", str(netrc),
                           "-H", f"Accept: {MANIFEST_TYPES}", f"http://{registry.host}/v2/{REPO}/manifests/{TAG}"],
                          capture_output=True, text=True, check=False)


def test_curl_pulls_a_manifest_with_the_exported_netrc(lab: Lab, env: Env) -> None:  # noqa: F811
    require_tool("curl")
    registry = lab.plain
    store(registry.host, USER, PASSWORD, environ=env.env)
    netrc = env.work / "credentials"
    ok(export("--format", "netrc", "--out", str(netrc), registry.host, environ=env.env))
    assert netrc.read_text() == f"machine 127.0.0.1 login {USER} password {PASSWORD}\n"  # curl: no port
    assert curl_manifest(registry, netrc).stdout == "200"
    netrc.write_text("")
    assert curl_manifest(registry, netrc).stdout == "401"  # control: curl really needs the line


def test_a_dynamic_netrc_asks_the_helper_when_enroot_evaluates_it(lab: Lab, env: Env) -> None:  # noqa: F811
    require_tool("curl")
    registry = lab.plain
    store(registry.host, SPECIAL_USER, "first-secret", environ=env.env)
    netrc = env.work / "credentials"
    ok(export("--format", "netrc", "--dynamic", "--out", str(netrc), registry.host, environ=env.env))
    text = netrc.read_text()
    assert "first-secret" not in text and "$(docker-credential-switchboard export --format secret" in text
    evaluated = env.work / "evaluated"
    store(registry.host, USER, PASSWORD, environ=env.env)  # rotated after the export: the file still works
    ok(export("--format", "netrc", "--dynamic", "--out", str(netrc), registry.host, environ=env.env))
    evaluated.write_text(enroot_netrc(netrc.read_text(), env.env))
    assert curl_manifest(registry, evaluated).stdout == "200"


def test_netrc_adds_the_token_realm_hosts_ngc_and_docker_hub_need() -> None:
    store("docker.io", "hubuser", "hub-token")
    out = ok(export("--format", "netrc", "docker.io", "nvcr.io", environ=dict(os.environ, NGC_API_KEY="nvapi-key")))
    assert out.splitlines() == [
        "machine registry-1.docker.io login hubuser password hub-token",
        "machine auth.docker.io login hubuser password hub-token",
        "machine nvcr.io login $oauthtoken password nvapi-key",
        "machine authn.nvidia.com login $oauthtoken password nvapi-key"]
    extra = ok(export("--format", "netrc", "--realm", "docker.io=login.example", "docker.io"))
    assert "machine login.example login hubuser password hub-token" in extra


def test_netrc_refuses_a_secret_with_a_space_and_two_ports_that_differ(tmp_path: Path) -> None:
    store("registry.corp.example", SPECIAL_USER, SPECIAL_PASSWORD)
    out = tmp_path / "credentials"
    line = failed(export("--format", "netrc", "--out", str(out), "registry.corp.example"))
    assert "space" in line and "--dynamic" in line and SPECIAL_PASSWORD not in line
    assert not out.exists()
    store("registry.corp.example:5000", "a", "one")
    store("registry.corp.example:5001", "a", "two")
    line = failed(export("--format", "netrc", "registry.corp.example:5000", "registry.corp.example:5001"))
    assert "host name alone" in line and "password" not in line


# -- env and secret -----------------------------------------------------------------------------------------------

def test_the_env_lines_give_apptainer_singularity_and_charliecloud_the_exact_secret(tmp_path: Path) -> None:
    store("registry.corp.example", SPECIAL_USER, SPECIAL_PASSWORD + "$HOME `id` 'q'")
    lines = tmp_path / "env.sh"
    ok(export("--format", "env", "--out", str(lines), "registry.corp.example"))
    names = ["APPTAINER_DOCKER_USERNAME", "APPTAINER_DOCKER_PASSWORD", "SINGULARITY_DOCKER_USERNAME",
             "SINGULARITY_DOCKER_PASSWORD", "CH_IMAGE_USERNAME", "CH_IMAGE_PASSWORD"]
    script = f". {lines}; " + "; ".join(f'printf "%s\\0" "${name}"' for name in names)
    got = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.decode().split("\0")[:-1]
    secret = SPECIAL_PASSWORD + "$HOME `id` 'q'"
    assert got == [SPECIAL_USER, secret] * 3


def test_secret_prints_the_secret_alone() -> None:
    store("registry.corp.example", "alice", "s3cret")
    assert ok(export("--format", "secret", "registry.corp.example")) == "s3cret\n"


# -- tokens, errors, files ----------------------------------------------------------------------------------------

def test_an_ecr_host_exports_a_fresh_token_and_says_when_it_expires(fake_ecr: FakeEcr) -> None:
    result = export("--format", "dockerconfigjson", ECR_HOST, environ=aws_env(fake_ecr.url))
    doc = json.loads(ok(result))
    assert doc["auths"][ECR_HOST]["password"] == "token-1"
    (line,) = result.err.splitlines()
    assert line.startswith(f"{ECR_HOST}: a token, expires at ") and "(in 11h59m" in line
    assert "token-1" not in result.err


def test_min_valid_refuses_a_token_that_expires_sooner(fake_ecr: FakeEcr, tmp_path: Path) -> None:
    fake_ecr.lifetime = 3600
    out = tmp_path / "auth.json"
    line = failed(export("--format", "dockerconfigjson", "--min-valid", "2h", "--out", str(out), ECR_HOST,
                         environ=aws_env(fake_ecr.url)))
    assert ECR_HOST in line and "--min-valid 2h0m0s" in line and "nothing written" in line
    assert not out.exists()
    ok(export("--format", "dockerconfigjson", "--min-valid", "30m", ECR_HOST, environ=aws_env(fake_ecr.url)))


def test_a_host_without_credentials_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    store("registry.corp.example", "alice", "s3cret")
    out = tmp_path / "auth.json"
    out.write_text("previous")
    line = failed(export("--format", "dockerconfigjson", "--out", str(out), "registry.corp.example",
                         "missing.example"))
    assert "missing.example" in line and "nothing written" in line
    assert out.read_text() == "previous"


def test_a_cloud_failure_says_why(fake_ecr: FakeEcr) -> None:
    fake_ecr.mode = "denied"
    line = failed(export("--format", "secret", ECR_HOST, environ=aws_env(fake_ecr.url)))
    assert ECR_HOST in line and "AccessDenied" in line


def test_out_is_written_at_0600_whatever_the_umask_and_replaces_atomically(tmp_path: Path) -> None:
    store("registry.corp.example", "alice", "s3cret")
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "auth.json"
    out.write_text("old")
    out.chmod(0o644)
    done = subprocess.run(["sh", "-c", 'umask 000; exec "$0" export --format dockerconfigjson --out "$1" '
                           "registry.corp.example", helper_executable(), str(out)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and json.loads(out.read_text())["auths"]
    assert [p.name for p in folder.iterdir()] == ["auth.json"]  # no temp file left beside it


@pytest.mark.parametrize(("argv", "expected"), [
    (["--format", "yaml", "x"], "invalid choice: 'yaml'"),
    (["--format", "secret"], "name a HOST"),
    (["--format", "env", "a.example", "b.example"], "exactly one HOST"),
    (["--format", "k8s-secret", "x.example"], "needs --name"),
    (["--format", "k8s-secret", "--name", "Reg_Cred", "x.example"], "DNS-1123 subdomain"),
    (["--format", "k8s-secret", "--name", "r", "--namespace", "a.b", "x.example"], "DNS-1123 label"),
    (["--format", "dockerconfigjson", "--dynamic", "x.example"], "for --format netrc"),
    (["--format", "dockerconfigjson", "--min-valid", "600", "x.example"], "missing unit"),
    (["--format", "netrc", "--realm", "nope", "x.example"], "REGISTRY=HOST"),
])
def test_bad_options_are_one_line_and_nothing_is_fetched(argv: list[str], expected: str) -> None:
    assert expected in failed(export(*argv))


def test_an_unwritable_out_is_one_line_and_nothing_is_left(tmp_path: Path) -> None:
    store("registry.corp.example", "alice", "s3cret")
    line = failed(export("--format", "secret", "--out", str(tmp_path / "no" / "such" / "dir"),
                         "registry.corp.example"))
    assert "cannot write" in line and "s3cret" not in line
    folder = tmp_path / "ro"
    folder.mkdir()
    line = failed(export("--format", "secret", "--out", str(folder), "registry.corp.example"))  # a directory
    assert "cannot write" in line
    assert list(folder.iterdir()) == []


def test_routes_exports_the_literal_hosts_and_warns_for_patterns(routes: Path) -> None:
    routes.write_text('[[route]]\nmatch = "registry.corp.example"\nbackend = "env"\nusername = "ci"\n'
                      'secret_env = "CORP_TOKEN"\n\n[[route]]\nmatch = "*.other.example"\nbackend = "store"\n')
    result = export("--format", "dockerconfigjson", "--routes", environ=dict(os.environ, CORP_TOKEN="corp-secret"))
    assert json.loads(ok(result))["auths"] == {"registry.corp.example": {
        "username": "ci", "password": "corp-secret", "auth": base64.b64encode(b"ci:corp-secret").decode()}}
    assert "*.other.example" in result.err and "not a host" in result.err


def test_the_secret_never_reaches_stderr_or_the_log(tmp_path: Path) -> None:
    log = tmp_path / "log"
    logged = dict(os.environ, SWITCHBOARD_LOG=str(log))
    store("registry.corp.example", "alice", "very-secret-value", environ=logged)
    result = export("--format", "dockerconfigjson", "--out", str(tmp_path / "a.json"), "registry.corp.example",
                    environ=logged)
    assert result.code == 0
    failed(export("--format", "secret", "missing.example", environ=logged))  # control: the log is written
    assert "missing.example" in log.read_text()
    assert "very-secret-value" not in result.err and "very-secret-value" not in log.read_text()


def test_a_realm_is_named_by_the_registry_host_and_must_be_one_exported(tmp_path: Path) -> None:
    store("registry.corp.example:5000", "alice", "s3cret")
    out = ok(export("--format", "netrc", "--realm", "registry.corp.example:5000=auth.corp.example",
                    "registry.corp.example:5000"))
    assert out.splitlines() == ["machine registry.corp.example login alice password s3cret",
                                "machine auth.corp.example login alice password s3cret"]
    line = failed(export("--format", "netrc", "--realm", "typo.example=auth.corp.example",
                         "registry.corp.example:5000"))
    assert "typo.example" in line and "not a registry exported here" in line


def test_a_dynamic_password_quotes_the_helper_path_and_still_refuses_a_secret_with_a_space() -> None:
    store("registry.corp.example", "alice", "s3cret")
    out = ok(export("--format", "netrc", "--dynamic", "--helper", "/opt/my tools/dcs", "registry.corp.example"))
    assert out == ("machine registry.corp.example login alice password "
                   "$('/opt/my tools/dcs' export --format secret registry.corp.example)\n")
    assert "--dynamic" in failed(export("--format", "netrc", "--helper", "/opt/dcs", "registry.corp.example"))
    store("spaced.example", "bob", "a b")
    line = failed(export("--format", "netrc", "--dynamic", "spaced.example"))
    assert "white space" in line and "--format env" in line


def test_out_dash_is_stdout() -> None:
    store("registry.corp.example", "alice", "s3cret")
    assert ok(export("--format", "secret", "--out", "-", "registry.corp.example")) == "s3cret\n"
