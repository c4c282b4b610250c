"""The env and file backends through routes, as a CI runner would configure them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.conftest import NOT_FOUND, call


def test_ngc_preset_reads_the_api_key_from_the_environment(routes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    routes.write_text('[[route]]\nmatch = "nvcr.io"\nbackend = "env"\npreset = "ngc"\n')
    assert call("get", "nvcr.io").out == NOT_FOUND + "\n"  # unset: not-found, the pull goes anonymous
    monkeypatch.setenv("NGC_API_KEY", "nvapi-test")
    assert call("get", "nvcr.io").json() == {"ServerURL": "nvcr.io", "Username": "$oauthtoken",
                                              "Secret": "nvapi-test"}


@pytest.mark.parametrize("preset, env, user", [
    ("ghcr", {"GITHUB_TOKEN": "ghp_x"}, "x-access-token"),
    ("ghcr", {"GITHUB_TOKEN": "ghp_x", "GITHUB_ACTOR": "octocat"}, "octocat"),
    ("dockerhub", {"DOCKERHUB_USERNAME": "hubber", "DOCKERHUB_TOKEN": "dckr_pat_x"}, "hubber"),
    ("gitlab", {"CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": "glpat"}, "gitlab-ci-token"),
    ("quay", {"QUAY_USERNAME": "org+robot", "QUAY_PASSWORD": "q"}, "org+robot"),
])
def test_presets(routes: Path, monkeypatch: pytest.MonkeyPatch, preset: str, env: dict[str, str], user: str) -> None:
    routes.write_text(f'[[route]]\nmatch = "reg.example"\nbackend = "env"\npreset = "{preset}"\n')
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert call("get", "reg.example").json()["Username"] == user


def test_explicit_env_variables(routes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    routes.write_text('[[route]]\nmatch = "*.corp.example"\nbackend = "env"\nusername_env = "U"\nsecret_env = "S"\n')
    monkeypatch.setenv("U", "svc")
    monkeypatch.setenv("S", "pw")
    assert call("get", "eu.corp.example").json()["Secret"] == "pw"


def test_store_on_an_env_route_is_kept_and_used_when_the_variable_is_unset(
        routes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    routes.write_text('[[route]]\nmatch = "nvcr.io"\nbackend = "env"\npreset = "ngc"\n')
    assert call("store", '{"ServerURL":"nvcr.io","Username":"$oauthtoken","Secret":"stored"}').code == 0
    assert call("get", "nvcr.io").json()["Secret"] == "stored"
    monkeypatch.setenv("NGC_API_KEY", "from-env")
    assert call("get", "nvcr.io").json()["Secret"] == "from-env"
    assert call("erase", "nvcr.io").code == 0


def test_kubernetes_secret_files(routes: Path, tmp_path: Path) -> None:
    (tmp_path / "username").write_text("robot\n")
    (tmp_path / "password").write_text("file-secret\n")
    routes.write_text(f'[[route]]\nmatch = "quay.io"\nbackend = "file"\n'
                      f'username_file = "{tmp_path}/username"\nsecret_file = "{tmp_path}/password"\n')
    assert call("get", "quay.io").json() == {"ServerURL": "quay.io", "Username": "robot", "Secret": "file-secret"}
    (tmp_path / "password").write_text("rotated")
    assert call("get", "quay.io").json()["Secret"] == "rotated"


def test_dockerconfigjson(routes: Path, tmp_path: Path) -> None:
    config = {"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hubuser:hubpass").decode()},
        "ghcr.io": {"username": "gh", "password": "ghpass"},
        "registry.example:5000": {"identitytoken": "idtok"},
    }}
    (tmp_path / ".dockerconfigjson").write_text(json.dumps(config))
    routes.write_text(f'[[route]]\nmatch = ["docker.io", "ghcr.io", "registry.example"]\nbackend = "file"\n'
                      f'dockerconfigjson = "{tmp_path}/.dockerconfigjson"\n')
    assert call("get", "docker.io").json()["Secret"] == "hubpass"
    assert call("get", "ghcr.io").json()["Username"] == "gh"
    assert call("get", "registry.example:5000").json() == {"ServerURL": "registry.example:5000",
                                                           "Username": "<token>", "Secret": "idtok"}
    (tmp_path / ".dockerconfigjson").write_text("{broken")
    result = call("get", "ghcr.io")
    assert result.code == 1 and result.out == f"{tmp_path}/.dockerconfigjson is not valid JSON\n"


def test_a_missing_mounted_file_is_not_found(routes: Path, tmp_path: Path) -> None:
    routes.write_text(f'[[route]]\nmatch = "quay.io"\nbackend = "file"\nusername = "u"\n'
                      f'secret_file = "{tmp_path}/absent"\n')
    assert call("get", "quay.io").out == NOT_FOUND + "\n"


def test_helper_route_delegates_store_get_erase(routes: Path, tmp_path: Path) -> None:
    from tests.conftest import helper_executable

    inner = tmp_path / "docker-credential-inner"
    inner.write_text(f"#!/bin/sh\nSWITCHBOARD_CONFIG= SWITCHBOARD_DATA_DIR='{tmp_path}/inner' "
                     f"exec '{helper_executable()}' \"$@\"\n")
    inner.chmod(0o755)
    routes.write_text(f'[[route]]\nmatch = "corp.example"\nbackend = "helper"\nhelper = "{inner}"\ntimeout = 20\n')
    assert call("store", '{"ServerURL":"corp.example","Username":"d","Secret":"delegated"}').code == 0
    assert call("get", "corp.example").json()["Secret"] == "delegated"
    assert call("list").json() == {}  # it went to the delegate, not our store
    assert call("erase", "corp.example").code == 0
    assert call("get", "corp.example").out == NOT_FOUND + "\n"


def test_a_delegation_loop_is_stopped(routes: Path, tmp_path: Path) -> None:
    from tests.conftest import helper_executable

    routes.write_text(f'[[route]]\nmatch = "loop.example"\nbackend = "helper"\nhelper = "{helper_executable()}"\n')
    result = call("get", "loop.example")
    assert result.code == 1 and "delegation loop" in result.out
