"""`kubelet-config`: the CredentialProviderConfig it prints is one the kubelet accepts (a mirror of
`pkg/credentialprovider/plugin/config.go`'s validation and `keyring.go`'s URLsMatch, FLEET.md 1.3 and 1.4),
and its matchImages are the routes in force and the stored hosts."""

from __future__ import annotations

import contextlib
import fnmatch
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from helper.commands.kubelet_config import SA_ANNOTATION_KEYS
from helper.durations import parse_go as parse_go_duration
from helper.router import BUILTIN
from tests.conftest import Result, call, run_helper

# --- the kubelet's side, in Python ---------------------------------------------------------------------------

TOP_FIELDS = {"apiVersion", "kind", "providers"}
PROVIDER_FIELDS = {"name", "matchImages", "defaultCacheDuration", "apiVersion", "args", "env", "tokenAttributes"}
TOKEN_FIELDS = {"serviceAccountTokenAudience", "cacheType", "requireServiceAccount",
                "requiredServiceAccountAnnotationKeys", "optionalServiceAccountAnnotationKeys"}
PLUGIN_VERSIONS = {"credentialprovider.kubelet.k8s.io/v1alpha1", "credentialprovider.kubelet.k8s.io/v1beta1",
                   "credentialprovider.kubelet.k8s.io/v1"}
# net/url shouldEscape(c, encodeHost) is false for these: anything else in a host is "invalid character"
_GO_HOST_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!$&'()*+,;=:[]<>\"")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def go_parse_schemeless(text: str) -> tuple[str, str, str]:
    """credentialprovider.ParseSchemelessURL: url.Parse("https://" + text) -> (host, port, path), or ValueError
    for what Go's url.Parse refuses (control characters, a bad host character, a port that is not digits)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError("net/url: invalid control character in URL")
    rest = text.split("#", 1)[0].split("?", 1)[0]
    authority, slash, path = rest.partition("/")
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise ValueError("missing ']' in host")
        name, port_part = host[1:end], host[end + 1:]
    elif ":" in host:
        name, port_part = host[:host.rindex(":")], host[host.rindex(":"):]
    else:
        name, port_part = host, ""
    if port_part and (not port_part.startswith(":") or (not port_part[1:].isdigit() and port_part != ":")):
        raise ValueError(f"invalid port {port_part!r} after host")
    if not set(name) <= _GO_HOST_CHARS:
        raise ValueError(f"invalid character in host name {name!r}")
    return name, port_part[1:], slash + path


def kubelet_matches(glob: str, image: str) -> bool:
    """URLsMatch(glob, image): equal ports, as many labels, each label a filepath.Match, the path a raw prefix."""
    g_host, g_port, g_path = go_parse_schemeless(glob)
    i_host, i_port, i_path = go_parse_schemeless(image)
    if g_port != i_port:
        return False
    g_labels, i_labels = g_host.split("."), i_host.split(".")
    if len(g_labels) != len(i_labels):
        return False
    if not all(fnmatch.fnmatchcase(label, want) for want, label in zip(g_labels, i_labels, strict=True)):
        return False
    return i_path.startswith(g_path)


def qualified_name(key: str) -> bool:
    """validation.IsQualifiedName: an optional DNS-subdomain prefix and `/`, then a name of at most 63."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_QUALIFIED_NAME.fullmatch(name))


def kubelet_accepts(doc: Any) -> list[str]:
    """The problems the kubelet's strict decoding and validateCredentialProviderConfig would find (none: [])."""
    problems: list[str] = []
    if not isinstance(doc, dict) or set(doc) != TOP_FIELDS:
        return [f"top-level fields {sorted(doc) if isinstance(doc, dict) else doc!r}"]
    if (doc["apiVersion"], doc["kind"]) != ("kubelet.config.k8s.io/v1", "CredentialProviderConfig"):
        problems.append("apiVersion/kind")
    providers = doc["providers"]
    if not isinstance(providers, list) or not providers:
        return [*problems, "at least 1 item in plugins is required"]
    names: set[str] = set()
    for provider in providers:
        unknown = set(provider) - PROVIDER_FIELDS
        if unknown:
            problems.append(f"unknown fields {sorted(unknown)}")
        name = provider.get("name")
        if not isinstance(name, str) or not name or "/" in name or " " in name or name in (".", ".."):
            problems.append(f"name {name!r}")
        if name in names:
            problems.append(f"duplicate name {name!r}")
        names.add(name)
        if provider.get("apiVersion") not in PLUGIN_VERSIONS:
            problems.append(f"apiVersion {provider.get('apiVersion')!r}")
        images = provider.get("matchImages")
        if not isinstance(images, list) or not images:
            problems.append("at least 1 item in matchImages is required")
        for image in images or []:
            try:
                go_parse_schemeless(image)
            except (ValueError, TypeError) as exc:
                problems.append(f"match image {image!r} is invalid: {exc}")
        duration = provider.get("defaultCacheDuration")
        try:
            if not isinstance(duration, str) or parse_go_duration(duration) < 0:
                problems.append(f"defaultCacheDuration {duration!r}")
        except ValueError:
            problems.append(f"defaultCacheDuration {duration!r} does not parse")
        args = provider.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            problems.append(f"args {args!r}")
        for env in provider.get("env", []):
            if not isinstance(env, dict) or set(env) != {"name", "value"} or not all(
                    isinstance(v, str) for v in env.values()):
                problems.append(f"env {env!r}")
        if "tokenAttributes" in provider:
            problems += token_attribute_problems(provider["tokenAttributes"], provider.get("apiVersion"))
    return problems


def token_attribute_problems(attrs: Any, api_version: object) -> list[str]:
    """validateCredentialProviderConfig's tokenAttributes rules (KEP-4412)."""
    problems: list[str] = []
    if not isinstance(attrs, dict) or set(attrs) - TOKEN_FIELDS:
        return [f"tokenAttributes fields {attrs!r}"]
    if not attrs.get("serviceAccountTokenAudience"):
        problems.append("serviceAccountTokenAudience is required")
    require = attrs.get("requireServiceAccount")
    if not isinstance(require, bool):
        problems.append("requireServiceAccount is required")
    if api_version != "credentialprovider.kubelet.k8s.io/v1":
        problems.append("tokenAttributes is only supported for credentialprovider.kubelet.k8s.io/v1")
    required = attrs.get("requiredServiceAccountAnnotationKeys", [])
    optional = attrs.get("optionalServiceAccountAnnotationKeys", [])
    if required and require is not True:
        problems.append("requireServiceAccount must be true with required annotation keys")
    for keys in (required, optional):
        if len(set(keys)) != len(keys) or not all(isinstance(k, str) and qualified_name(k) for k in keys):
            problems.append(f"annotation keys {keys!r}")
    if set(required) & set(optional):
        problems.append("required and optional annotation keys overlap")
    if attrs.get("cacheType") not in ("Token", "ServiceAccount"):
        problems.append(f"cacheType {attrs.get('cacheType')!r}")
    return problems


# --- helpers ---------------------------------------------------------------------------------------------------

ROUTES = """\
[[route]]
match = "registry.corp.example:5000"
backend = "store"

[[route]]
match = "*.corp.example"
backend = "env"
secret_env = "CORP_TOKEN"
username = "ci"

[[route]]
match = "ecr.corp.example"
backend = "ecr"
registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"

[[route]]
match = "public.ecr.aws"
backend = "none"
"""


def kubelet_config(argv: list[str] | None = None) -> tuple[Result, str]:
    """`kubelet-config ARGV` in-process: the result (stdout) and what it wrote on stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        result = call(["kubelet-config", *(argv or [])])
    return result, err.getvalue()


def document(argv: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """The parsed document, checked as the kubelet checks it, and stderr."""
    result, err = kubelet_config(argv)
    assert result.code == 0, (result.out, err)
    doc = yaml.safe_load(result.out)
    assert kubelet_accepts(doc) == []
    return doc, err


def images(argv: list[str] | None = None) -> list[str]:
    doc, _ = document(argv)
    found: list[str] = doc["providers"][0]["matchImages"]
    return found


def store(host: str) -> None:
    assert call("store", f'{{"ServerURL":"{host}","Username":"u","Secret":"stored-secret"}}').code == 0


# --- tests -----------------------------------------------------------------------------------------------------

def test_the_document_for_a_routes_file_is_one_the_kubelet_accepts_with_exactly_its_fields(routes: Path) -> None:
    routes.write_text(ROUTES)
    doc, _ = document()
    assert set(doc) == TOP_FIELDS and len(doc["providers"]) == 1
    provider = doc["providers"][0]
    assert set(provider) == {"name", "apiVersion", "matchImages", "defaultCacheDuration", "args"}
    assert provider["name"] == "docker-credential-switchboard"
    assert provider["apiVersion"] == "credentialprovider.kubelet.k8s.io/v1"
    assert provider["defaultCacheDuration"] == "5m" and provider["args"] == ["kubelet"]
    globs = provider["matchImages"]
    assert len(globs) == len(set(globs))
    for builtin in ("*.dkr.ecr.*.amazonaws.com", "*.azurecr.io", "*-docker.pkg.dev", "gcr.io", "*.gcr.io",
                    "ecr-public.aws.com"):
        assert builtin in globs
    assert "public.ecr.aws" not in globs  # the `none` route takes the built-in ECR Public glob out
    assert {"registry.corp.example:5000", "*.corp.example", "ecr.corp.example"} <= set(globs)
    assert "nvcr.io" not in globs and "ghcr.io" not in globs and "docker.io" not in globs  # presets: no variables


def test_a_pattern_with_a_port_keeps_it_and_a_portless_user_pattern_warns_once_on_stderr(routes: Path) -> None:
    routes.write_text(ROUTES)
    doc, err = document()
    globs = doc["providers"][0]["matchImages"]
    assert kubelet_matches("registry.corp.example:5000", "registry.corp.example:5000/team/app")
    assert not kubelet_matches("*.corp.example", "registry.corp.example:5000/team/app")  # why the warning
    assert any(kubelet_matches(g, "registry.corp.example:5000/team/app") for g in globs)
    assert any(kubelet_matches(g, "123456789012.dkr.ecr.us-east-1.amazonaws.com/app") for g in globs)
    assert not any(kubelet_matches(g, "public.ecr.aws/docker/library/nginx") for g in globs)
    lines = err.splitlines()
    assert sorted(lines) == [  # in the table's order: the more specific ecr.corp.example first
        f'warning: route *.corp.example ({routes}:5) also serves *.corp.example:PORT, which the kubelet cannot '
        'match with a glob; add "*.corp.example:PORT" for each port you use',
        f'warning: route ecr.corp.example ({routes}:11) also serves ecr.corp.example:PORT, which the kubelet '
        'cannot match with a glob; add "ecr.corp.example:PORT" for each port you use',
    ]  # and none for the built-in cloud routes, nor for the pattern with a port


def test_the_built_in_routes_alone_make_a_document_without_a_warning() -> None:
    doc, err = document()
    assert err == ""
    texts = [text for _, patterns in BUILTIN for text in patterns]
    assert sorted(doc["providers"][0]["matchImages"]) == sorted(texts)


def test_an_env_preset_is_there_only_when_its_variable_is_set_or_the_store_has_its_host(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert "nvcr.io" not in images()
    monkeypatch.setenv("NGC_API_KEY", "nvapi-secret")
    assert "nvcr.io" in images()
    assert "ghcr.io" not in images()
    store("ghcr.io")
    assert "ghcr.io" in images()
    monkeypatch.setenv("CI_REGISTRY", "registry.gitlab.example:5050")
    assert "registry.gitlab.example:5050" not in images()
    monkeypatch.setenv("CI_REGISTRY_USER", "gitlab-ci-token")
    monkeypatch.setenv("CI_REGISTRY_PASSWORD", "job-token")
    assert "registry.gitlab.example:5050" in images()


def test_a_route_that_claims_a_presets_host_decides_for_it(routes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    routes.write_text('[[route]]\nmatch = "nvcr.io"\nbackend = "none"\n')
    monkeypatch.setenv("NGC_API_KEY", "nvapi-secret")
    assert "nvcr.io" not in images()
    routes.write_text('[[route]]\nmatch = "nvcr.io"\nbackend = "store"\n')
    monkeypatch.delenv("NGC_API_KEY")
    assert "nvcr.io" in images()  # the user's own route: always there


def test_stored_hosts_appear_with_their_port_and_path_once_and_docker_hub_as_docker_io(routes: Path) -> None:
    routes.write_text('[[route]]\nmatch = "anon.example"\nbackend = "none"\n')
    for host in ("registry.example:8443/team", "https://index.docker.io/v1/", "plain.example", "x.azurecr.io",
                 "anon.example", "Upper.Example:5000"):
        store(host)
    _, err = kubelet_config()
    globs = images()
    assert {"registry.example:8443/team", "docker.io", "plain.example", "upper.example:5000"} <= set(globs)
    assert "x.azurecr.io" not in globs  # *.azurecr.io has it
    assert "anon.example" not in globs
    assert kubelet_matches("registry.example:8443/team", "registry.example:8443/team/app")
    assert "stored entry anon.example is never used: route anon.example" in err


def test_a_store_that_cannot_be_read_is_a_warning_and_the_routes_still_make_the_document(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_STORE", "bogus")
    doc, err = document()
    assert "*.azurecr.io" in doc["providers"][0]["matchImages"]
    assert err.startswith("warning: the static store cannot be read (SWITCHBOARD_STORE='bogus' is not one of")
    assert err.count("\n") == 1


def test_token_attributes_appear_only_with_an_audience_and_pass_the_kubelets_rules() -> None:
    doc, _ = document()
    assert "tokenAttributes" not in doc["providers"][0]
    doc, _ = document(["--service-account-audience", "switchboard.example"])
    attrs = doc["providers"][0]["tokenAttributes"]
    assert attrs == {"serviceAccountTokenAudience": "switchboard.example", "cacheType": "ServiceAccount",
                     "requireServiceAccount": False, "optionalServiceAccountAnnotationKeys": list(SA_ANNOTATION_KEYS)}
    doc, _ = document(["--service-account-audience", "switchboard.example", "--require-service-account"])
    assert doc["providers"][0]["tokenAttributes"]["requireServiceAccount"] is True
    # the control: the mirror does refuse what the kubelet refuses
    assert token_attribute_problems({**attrs, "requireServiceAccount": None}, "credentialprovider.kubelet.k8s.io/v1")
    assert token_attribute_problems({**attrs, "requiredServiceAccountAnnotationKeys": [SA_ANNOTATION_KEYS[0]]},
                                    "credentialprovider.kubelet.k8s.io/v1")
    assert token_attribute_problems({**attrs, "serviceAccountTokenAudience": ""},
                                    "credentialprovider.kubelet.k8s.io/v1")


def test_the_name_duration_and_odd_strings_come_out_as_the_kubelet_reads_them(routes: Path) -> None:
    routes.write_text("")
    doc, _ = document(["--name", "switchboard-eks", "--default-cache-duration", "1h30m",
                       "--service-account-audience", 'odd "aud"\u00e9\U0001f600', "--config-env"])
    provider = doc["providers"][0]
    assert (provider["name"], provider["defaultCacheDuration"]) == ("switchboard-eks", "1h30m")
    assert provider["tokenAttributes"]["serviceAccountTokenAudience"] == 'odd "aud"\u00e9\U0001f600'
    assert provider["env"] == [{"name": "SWITCHBOARD_CONFIG", "value": str(routes)}]


def test_config_env_without_a_routes_file_leaves_env_out_and_says_so() -> None:
    doc, err = document(["--config-env"])
    assert "env" not in doc["providers"][0]
    assert err == ("warning: --config-env: no routes file is in force and none of the variables is set; "
                   "env is left out\n")


def test_config_env_passes_the_store_and_system_routes_but_never_the_passphrase(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    system = tmp_path / "system.toml"
    system.write_text("")
    monkeypatch.setenv("SWITCHBOARD_SYSTEM_CONFIG", str(system))
    monkeypatch.setenv("SWITCHBOARD_STORE", "file")
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SWITCHBOARD_PASSPHRASE", "never-in-the-config")
    doc, _ = document(["--config-env", "--static-cache", "60"])
    provider = doc["providers"][0]
    env = {item["name"]: item["value"] for item in provider["env"]}
    assert env["SWITCHBOARD_SYSTEM_CONFIG"] == str(system) and env["SWITCHBOARD_STORE"] == "file"
    assert env["SWITCHBOARD_DATA_DIR"] == str(tmp_path / "data")
    assert "SWITCHBOARD_PASSPHRASE" not in env and "never-in-the-config" not in json.dumps(doc)
    assert provider["args"] == ["kubelet", "--static-cache", "60"]


@pytest.mark.parametrize(("argv", "expected"), [
    (["--name", "a/b"], "--name 'a/b' must be a file name"),
    (["--name", "a b"], "--name 'a b' must be a file name"),
    (["--name", "."], "must be a file name"),
    (["--name", ".."], "must be a file name"),
    (["--default-cache-duration", "600"], "missing unit in duration '600'"),
    (["--default-cache-duration", "1d"], "unknown unit 'd'"),
    (["--default-cache-duration=-5m"], "is negative"),
    (["--require-service-account"], "--require-service-account needs --service-account-audience AUD"),
    (["--service-account-audience", ""], "--service-account-audience must not be empty"),
], ids=str)
def test_bad_arguments_are_one_line_on_stderr_and_stdout_stays_empty(argv: list[str], expected: str) -> None:
    result, err = kubelet_config(argv)
    assert (result.code, result.out) == (1, "")
    assert err.count("\n") == 1 and expected in err, err


def test_routing_every_builtin_host_to_none_is_an_error_since_the_kubelet_needs_one_glob(routes: Path) -> None:
    texts = [text for _, patterns in BUILTIN for text in patterns]
    routes.write_text(f'[[route]]\nmatch = [{", ".join(f"{t!r}".replace(chr(39), chr(34)) for t in texts)}]\n'
                      'backend = "none"\n')
    result, err = kubelet_config()
    assert (result.code, result.out) == (1, "")
    assert err.count("\n") == 1 and "requires at least one matchImages entry" in err
    store("kept.example")  # the control: one stored host is enough
    assert images() == ["kept.example"]


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0), ("+0", 0), ("-0", 0), ("0s", 0), ("5m", 300), ("1h30m", 5400), ("1.5s", 1.5), ("300ms", 0.3),
    (".5s", 0.5), ("1.s", 1), ("2h45m30.5s", 9930.5), ("1ns", 1e-9), ("1us", 1e-6), ("1\u00b5s", 1e-6),
    ("1\u03bcs", 1e-6), ("-1.5h", -5400), ("+5m", 300), ("10m0s", 600),
])
def test_parse_go_duration_reads_what_go_reads(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "600", "5", "00", "1d", "5M", " 5m", "5m ", "-", "+", ".s", ".", "1h-5m",
                                  "s", "1e3s", "9999999999h", "\u0665s"])
def test_parse_go_duration_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


def test_the_mirror_of_url_parse_refuses_what_go_refuses() -> None:
    """The control of the matchImages check: a bad port or host character does fail it."""
    for bad in ("host:port", "host:50x0", "ho st", "host{a}", "a\nb", "[::1"):
        with pytest.raises(ValueError):
            go_parse_schemeless(bad)
    assert go_parse_schemeless("[::1]:5000/p") == ("::1", "5000", "/p")


def test_the_executable_prints_the_document(routes: Path) -> None:
    routes.write_text(ROUTES)
    result = run_helper(["kubelet-config", "--config-env"], None, env=dict(os.environ))
    assert result.code == 0, result.err
    doc = yaml.safe_load(result.out)
    assert kubelet_accepts(doc) == [] and "registry.corp.example:5000" in doc["providers"][0]["matchImages"]
    assert result.err.count("warning: route ") == 2
