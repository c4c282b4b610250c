"""Issue 11, items 5, 6 and 7 (part): the CI env presets as built-in routes, the system-wide routes file, a
`docker.io` route for every Docker Hub spelling, a missing SWITCHBOARD_CONFIG file as an error, and not-found
reasons in the debug log."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from helper import paths
from tests.conftest import NOT_FOUND, call, get_in_fresh_process, run_helper
from tests.test_commands import fields

HUB_SPELLINGS = ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io",
                 "registry.hub.docker.com", "docker.io", "https://registry-1.docker.io/v2/")
PRESET_VARIABLES = ("NGC_API_KEY", "GITHUB_TOKEN", "GITHUB_ACTOR", "GITHUB_USERNAME", "DOCKERHUB_USERNAME",
                    "DOCKERHUB_TOKEN", "DOCKERHUB_PASSWORD", "CI_REGISTRY", "CI_REGISTRY_USER",
                    "CI_REGISTRY_PASSWORD", "QUAY_USERNAME", "QUAY_PASSWORD")


@pytest.fixture(autouse=True)
def no_ci_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite may itself run in GitHub Actions or GitLab CI: none of their variables leaks in."""
    for name in PRESET_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A system-wide routes file named by SWITCHBOARD_SYSTEM_CONFIG (tests never depend on the real /etc)."""
    path = tmp_path / "system" / "routes.toml"
    path.parent.mkdir()
    monkeypatch.setenv("SWITCHBOARD_SYSTEM_CONFIG", str(path))
    return path


def creds(host: str) -> tuple[str, str] | None:
    result = call("get", host)
    if result.code != 0:
        assert result.out == NOT_FOUND + "\n"
        return None
    answer = result.json()
    return answer["Username"], answer["Secret"]


def store(host: str, username: str, secret: str) -> None:
    assert call("store", json.dumps({"ServerURL": host, "Username": username, "Secret": secret})).code == 0


def file_route(path: Path, host: str, folder: Path, username: str, value: str) -> None:
    """Route `host` to a file backend whose secret file (in `folder`) holds `value`."""
    secret = folder / f"{username}-secret"
    secret.write_text(value)
    path.write_text(route(host, "file", username=username, secret_file=str(secret)))


def route(match: str, backend: str, **params: str) -> str:
    return (f'[[route]]\nmatch = "{match}"\nbackend = "{backend}"\n'
            + "".join(f'{name} = "{value}"\n' for name, value in params.items()))


# ---- item 5: the presets answer with no configuration ----------------------------------------------------------

def test_every_preset_answers_from_its_variables_with_no_routes_file(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [creds(h) for h in ("nvcr.io", "ghcr.io", "docker.io", "quay.io")] == [None] * 4
    monkeypatch.setenv("NGC_API_KEY", "nvapi-k")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-t")
    monkeypatch.setenv("DOCKERHUB_USERNAME", "hubber")
    monkeypatch.setenv("DOCKERHUB_TOKEN", "dckr-t")
    monkeypatch.setenv("QUAY_USERNAME", "quser")
    monkeypatch.setenv("QUAY_PASSWORD", "qpass")
    assert creds("nvcr.io") == ("$oauthtoken", "nvapi-k")
    assert creds("ghcr.io") == ("x-access-token", "ghp-t")
    assert creds("ghcr.io/org/img") == ("x-access-token", "ghp-t")
    assert creds("quay.io") == ("quser", "qpass")
    for spelling in HUB_SPELLINGS:
        assert creds(spelling) == ("hubber", "dckr-t"), spelling
    # lookalikes and other hosts are not the presets'
    assert creds("ghcr.io.evil.example") is None and creds("nvcr.io@evil.example") is None


def test_the_fallback_variables_of_ghcr_and_docker_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-t")
    monkeypatch.setenv("GITHUB_USERNAME", "octo-name")
    assert creds("ghcr.io") == ("octo-name", "ghp-t")
    monkeypatch.setenv("GITHUB_ACTOR", "octo-actor")
    assert creds("ghcr.io") == ("octo-actor", "ghp-t")  # GitHub Actions' own variable first
    monkeypatch.setenv("DOCKERHUB_USERNAME", "hubber")
    assert creds("docker.io") is None  # a username alone answers nothing
    monkeypatch.setenv("DOCKERHUB_PASSWORD", "pw")
    assert creds("https://index.docker.io/v1/") == ("hubber", "pw")
    monkeypatch.setenv("DOCKERHUB_TOKEN", "tok")
    assert creds("https://index.docker.io/v1/") == ("hubber", "tok")  # the token first
    monkeypatch.setenv("DOCKERHUB_TOKEN", "")  # empty is unset
    assert creds("docker.io") == ("hubber", "pw")


def test_gitlab_answers_for_the_host_ci_registry_names_and_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_REGISTRY_USER", "gitlab-ci-token")
    monkeypatch.setenv("CI_REGISTRY_PASSWORD", "job-token")
    assert creds("registry.gitlab.example:5050") is None  # CI_REGISTRY unset: no GitLab route
    monkeypatch.setenv("CI_REGISTRY", "registry.gitlab.example:5050")
    assert creds("registry.gitlab.example:5050") == ("gitlab-ci-token", "job-token")
    assert creds("https://registry.gitlab.example:5050/v2/") == ("gitlab-ci-token", "job-token")
    assert creds("registry.gitlab.example:5051") is None and creds("other.example") is None
    monkeypatch.setenv("CI_REGISTRY", "Registry.GitLab.com")  # GitLab.com's own spelling is lowercase; any case
    assert creds("registry.gitlab.com") == ("gitlab-ci-token", "job-token")
    for junk in ("*.example", "a b", "host:99999", "https://x.example/path"):
        monkeypatch.setenv("CI_REGISTRY", junk)
        assert fields(call(["resolve", "x.example"]).out)["backend"] == "store", junk


def test_ci_registry_never_takes_a_host_another_route_claims(routes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_REGISTRY_USER", "u")
    monkeypatch.setenv("CI_REGISTRY_PASSWORD", "p")
    monkeypatch.setenv("CI_REGISTRY", "myreg.azurecr.io")
    routes.write_text("")
    assert fields(call(["resolve", "myreg.azurecr.io"]).out)["backend"] == "acr"  # a cloud built-in keeps it
    routes.write_text('[[route]]\nmatch = "*.corp.example"\nbackend = "exec"\ncommand = ["/bin/false"]\n')
    monkeypatch.setenv("CI_REGISTRY", "gitlab.corp.example")
    got = fields(call(["resolve", "gitlab.corp.example"]).out)
    assert (got["backend"], got["from"]) == ("exec", f"{routes}:1")  # even a less specific routes-file route


def test_precedence_routes_file_then_presets_then_the_stored_secret(routes: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    routes.write_text("")
    store("nvcr.io", "stored-user", "stored-secret")
    # variables unset: the stored secret answers
    assert creds("nvcr.io") == ("stored-user", "stored-secret")
    got = fields(call(["resolve", "nvcr.io"]).out)
    assert got["backend"] == "env" and got["answers"] == "the static store ($NGC_API_KEY is not set)"
    assert got["from"].startswith("built-in env preset 'ngc'")
    # variables set: the CI job's variables win over the stored secret
    monkeypatch.setenv("NGC_API_KEY", "from-ci")
    assert creds("nvcr.io") == ("$oauthtoken", "from-ci")
    out = call(["resolve", "nvcr.io"]).out
    assert fields(out)["answers"].startswith("env") and "from-ci" not in out
    # a routes file wins over a preset, even with a less specific pattern
    routes.write_text(route("*.io", "store"))
    assert creds("nvcr.io") == ("stored-user", "stored-secret")
    got = fields(call(["resolve", "nvcr.io"]).out)
    assert (got["backend"], got["from"], got["answers"]) == ("store", f"{routes}:1", "the static store")
    routes.write_text(route("nvcr.io", "none"))
    assert creds("nvcr.io") is None


def test_routes_lists_the_presets_after_the_claimed_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_REGISTRY", "gitlab.example")
    lines = call("routes").out.splitlines()
    rows = [line.split()[:2] for line in lines[3:]]
    presets = [row[0] for row in rows if row[1] == "env"]
    assert presets == ["gitlab.example", "nvcr.io", "ghcr.io", "docker.io", "quay.io"]
    assert rows.index(["gitlab.example", "env"]) > rows.index(["*.azurecr.io", "acr"])
    assert rows[-1] == ["*", "store"]


def test_a_preset_through_the_real_executable(tmp_path: Path) -> None:
    env = {**os.environ, "GITHUB_TOKEN": "ghp-real", "GITHUB_ACTOR": "octo"}
    result = run_helper("get", "ghcr.io", env=env)
    assert (result.code, result.json()) == (0, {"ServerURL": "ghcr.io", "Username": "octo", "Secret": "ghp-real"})
    assert run_helper("get", "ghcr.io").out.strip() == NOT_FOUND  # unset: not-found (nothing stored)


def test_a_get_of_a_plain_host_imports_no_env_backend() -> None:
    code, out, modules = get_in_fresh_process("registry.example", dict(os.environ, GITHUB_TOKEN="t"))
    assert (code, out.strip()) == (1, NOT_FOUND) and "helper.backends.env" not in modules


# ---- item 6: the system-wide routes file --------------------------------------------------------------------------

def test_a_system_routes_file_applies_under_the_users(system: Path, routes: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-the-system-file")
    system.write_text(route("fleet.example", "file", username="fleet", secret_file=str(secret))
                      + route("*.corp.example", "file", username="corp", secret_file=str(secret))
                      + route("user.example", "none"))
    routes.write_text("")  # SWITCHBOARD_CONFIG replaces the user's file only: the system file still applies
    assert creds("fleet.example") == ("fleet", "from-the-system-file")
    store("user.example", "u", "mine")
    assert creds("user.example") is None  # the system route says anonymous
    # the user's routes win at equal specificity; the most specific route wins across the two files
    routes.write_text(route("user.example", "store") + route("*.example", "store"))
    assert creds("user.example") == ("u", "mine")
    assert creds("a.corp.example") == ("corp", "from-the-system-file")  # more specific than the user's *.example
    lines = call("routes").out.splitlines()
    assert lines[0] == f"routes file: {routes}" and lines[1] == f"system routes files: {system}"
    by_pattern = {line.split()[0]: line.split(maxsplit=2)[2] for line in lines[3:]}
    assert by_pattern["fleet.example"] == f"{system}:1"
    assert by_pattern["*.corp.example"] == f"{system}:6"
    assert by_pattern["*.example"] == f"{routes}:4"
    got = fields(call(["resolve", "fleet.example"]).out)
    assert (got["route"], got["from"], got["backend"]) == ("fleet.example", f"{system}:1", "file")


def test_the_system_files_store_kind_applies_unless_the_user_names_one(system: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from helper.config import load_all

    system.write_text('[store]\nkind = "file"\n')
    assert load_all().store_kind == "file"  # no user file at the default place, none named
    routes = tmp_path / "user.toml"
    routes.write_text('[store]\nkind = "keyring"\n')
    monkeypatch.setenv("SWITCHBOARD_CONFIG", str(routes))
    assert load_all().store_kind == "keyring"


def test_the_default_system_files_in_xdg_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform != "win32":
        monkeypatch.delenv("XDG_CONFIG_DIRS", raising=False)
        assert paths.system_routes_files() == ("/etc/xdg/docker-credential-switchboard/routes.toml",
                                               "/etc/docker-credential-switchboard/routes.toml")
    monkeypatch.delenv("XDG_CONFIG_DIRS", raising=False)
    first, second = tmp_path / "xdg" / "docker-credential-switchboard" / "routes.toml", tmp_path / "etc.toml"
    first.parent.mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{tmp_path / 'xdg'}:relative/ignored")
    monkeypatch.setattr(paths, "ETC_ROUTES_FILE", str(second))
    monkeypatch.setattr(sys, "platform", "linux")
    second.write_text(route("both.example", "none") + route("etc.example", "none"))
    assert fields(call(["resolve", "etc.example"]).out)["from"] == f"{second}:4"
    first.write_text(route("both.example", "store"))
    assert fields(call(["resolve", "both.example"]).out)["from"] == f"{first}:1"  # the XDG one first
    assert call("routes").out.splitlines()[1] == f"system routes files: {first}, {second}"


def test_a_broken_or_missing_system_file_is_one_line_naming_it(system: Path) -> None:
    result = call("get", "x.example")
    assert result.code == 1 and str(system) in result.out and "SWITCHBOARD_SYSTEM_CONFIG" in result.out
    system.write_text("[[route]]\nmatch = 5\n")
    result = call("get", "x.example")
    assert (result.code, result.out.count("\n")) == (1, 1) and result.out.startswith(f"{system}:1: route 1:")
    assert call("list").code == 0


@pytest.mark.skipif(getattr(os, "geteuid", lambda: -1)() != 0, reason="the root check applies to root only")
def test_root_refuses_a_system_file_others_can_write(system: Path) -> None:
    system.write_text(route("fleet.example", "none"))
    system.chmod(0o666)
    result = run_helper("get", "fleet.example")
    assert result.code == 1 and result.out.startswith(f"{system}: refusing the routes file")
    system.chmod(0o644)
    assert run_helper("get", "fleet.example").out.strip() == NOT_FOUND


def test_the_system_file_through_the_real_executable(system: Path, tmp_path: Path) -> None:
    file_route(system, "fleet.example", tmp_path, "fleet", "fleet-secret")
    result = run_helper("get", "fleet.example")
    assert (result.code, result.json()["Secret"]) == (0, "fleet-secret")
    rows = [line.split() for line in run_helper("routes", None).out.splitlines()]
    assert ["fleet.example", "file", f"{system}:1"] in rows


# ---- item 7: Docker Hub spellings, a missing SWITCHBOARD_CONFIG file, not-found reasons ---------------------------

def test_a_docker_io_route_takes_every_spelling_of_docker_hub(routes: Path, tmp_path: Path) -> None:
    file_route(routes, "docker.io", tmp_path, "hubuser", "hub-secret")
    secret = tmp_path / "hubuser-secret"
    for spelling in HUB_SPELLINGS:
        assert creds(spelling) == ("hubuser", "hub-secret"), spelling
        assert fields(call(["resolve", spelling]).out)["from"] == f"{routes}:1"
    # a route for one spelling keeps taking that spelling; a mirror or another port is not Docker Hub
    routes.write_text(route("docker.io", "none") + route("index.docker.io", "file", username="i",
                                                           secret_file=str(secret)))
    assert creds("https://index.docker.io/v1/") == ("i", "hub-secret")
    assert creds("registry-1.docker.io") is None
    assert creds("mirror.docker.io.evil.example") is None and creds("docker.io:5000") is None
    assert creds("Index.Docker.io") is None  # capitals match no route (nothing stored either)


def test_docker_hub_spelling_through_the_real_executable(routes: Path, tmp_path: Path) -> None:
    file_route(routes, "docker.io", tmp_path, "hubuser", "hub-secret")
    result = run_helper("get", "https://index.docker.io/v1/")
    assert (result.code, result.json()["Secret"]) == (0, "hub-secret")


def test_a_switchboard_config_naming_a_missing_file_is_an_error(routes: Path) -> None:
    routes.write_text("")
    store("x.example", "u", "s")
    routes.unlink()
    assert call("store", json.dumps({"ServerURL": "y.example", "Username": "u", "Secret": "s"})).code == 1
    for action in ("get", "erase"):
        result = call(action, "x.example")
        assert result.code == 1 and result.out.count("\n") == 1, action
        assert result.out.startswith(f"{routes}: no such routes file") and "SWITCHBOARD_CONFIG" in result.out
    assert call(["resolve", "x.example"]).code == 1 and call("routes").code == 1
    assert call("list").json() == {"x.example": "u"}  # list never fails
    real = run_helper("get", "x.example")
    assert (real.code, real.out.count("\n"), real.err) == (1, 1, "")
    assert str(routes) in real.out
    routes.write_text("")  # it exists: fine
    assert creds("x.example") == ("u", "s")


def test_an_empty_switchboard_config_means_the_default_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_CONFIG", "")
    assert call("get", "x.example").out == NOT_FOUND + "\n"


def test_a_not_found_says_why_in_the_debug_log(routes: Path, tmp_path: Path) -> None:
    log = tmp_path / "switchboard.log"
    missing = tmp_path / "mounted" / "password"
    routes.write_text(route("mounted.example", "file", username="u", secret_file=str(missing))
                      + route("env.example", "env", username="u", secret_env="MY_REGISTRY_SECRET"))
    env = {**os.environ, "SWITCHBOARD_LOG": str(log), "QUAY_USERNAME": "quser"}
    for host in ("mounted.example", "env.example", "plain.example:5000/team/img", "quay.io"):
        assert run_helper("get", host, env=env).out.strip() == NOT_FOUND
    text = log.read_text()
    assert f"{missing} missing or empty" in text
    assert "$MY_REGISTRY_SECRET is not set" in text
    assert "$QUAY_PASSWORD is not set" in text
    assert "looked up: plain.example:5000/team/img, plain.example:5000/team, plain.example:5000" in text
    # debug mode: the same on stderr, and never a secret
    env = {**os.environ, "SWITCHBOARD_DEBUG": "1", "MY_REGISTRY_SECRET": "", "QUAY_USERNAME": "quser-value"}
    result = run_helper("get", "quay.io", env=env)
    assert "$QUAY_PASSWORD is not set" in result.err and "quser-value" not in result.err
