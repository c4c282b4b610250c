"""`configure docker` / `configure podman`: the clients' own files point at the helper, nothing else moves.

Docker: config.json keeps every other key in its order and its mode, the previous file is kept as a 0600
`.bak`, a second run writes nothing, plaintext `auths` the change would hide stop it (named, never
printed), a file that is not JSON is refused untouched. Podman: one drop-in under ~/.config, idempotent,
and, end to end, `podman login` through it stores in the helper and leaves no plaintext anywhere while an
`--authfile` keeps working (real podman, buildah and skopeo against the loopback registries of
tests/test_e2e_clients.py).
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from helper.configure import podman as podman_module
from tests.conftest import call, require_tool
from tests.test_e2e_clients import (  # noqa: F401 (the e2e fixtures `lab` and `env`, reused)
    PASSWORD,
    USER,
    Env,
    Lab,
    assert_no_plaintext_secret,
    assert_stored,
    env,
    lab,
    unauthorized,
)

HUB = "https://index.docker.io/v1/"
DROPIN_LINE = 'credential-helpers = ["switchboard", "containers-auth.json"]'


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds a docker-credential-switchboard (so no PATH warning), and nothing else."""
    folder = tmp_path / "bin"
    folder.mkdir()
    exe = folder / "docker-credential-switchboard"
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    return folder


@pytest.fixture
def docker_config(isolated_home: Path, on_path: Path) -> Path:
    return isolated_home / ".docker" / "config.json"


def write(path: Path, doc: object, mode: int = 0o600) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(doc, indent=2).encode()
    path.write_bytes(raw)
    path.chmod(mode)
    return raw


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- docker ----------------------------------------------------------------------------------------------
def test_creds_store_is_set_other_keys_kept_in_order_mode_kept_and_a_backup_made(docker_config: Path) -> None:
    before = {"psFormat": "table {{.ID}}", "auths": {"quay.io": {}}, "credHelpers": {"gcr.io": "gcloud"},
              "proxies": {"default": {"httpProxy": "http://proxy:3128"}}}
    raw = write(docker_config, before, 0o640)
    result = call(["configure", "docker"])
    assert result.code == 0, result.out
    assert 'set "credsStore": "switchboard"' in result.out and "config.json.bak" in result.out
    assert "warning" not in result.out
    after = json.loads(docker_config.read_text())
    assert list(after) == [*before, "credsStore"]
    assert {k: v for k, v in after.items() if k != "credsStore"} == before and after["credsStore"] == "switchboard"
    assert mode(docker_config) == 0o640
    backup = docker_config.with_name("config.json.bak")
    assert backup.read_bytes() == raw and mode(backup) == 0o600
    assert sorted(p.name for p in docker_config.parent.iterdir()) == ["config.json", "config.json.bak"]


def test_root_rewriting_her_config_keeps_it_hers(docker_config: Path, other_user: int) -> None:
    # `sudo docker-credential-switchboard configure docker` with her DOCKER_CONFIG: the file stays hers
    write(docker_config, {"currentContext": "default"})
    os.chown(docker_config, other_user, other_user)
    assert call(["configure", "docker"]).code == 0
    assert json.loads(docker_config.read_text())["credsStore"] == "switchboard"
    assert (docker_config.stat().st_uid, docker_config.stat().st_gid) == (other_user, other_user)
    assert docker_config.with_name("config.json.bak").stat().st_uid == 0  # the backup root made: root's, 0600


def test_a_second_run_changes_nothing_and_says_so(docker_config: Path) -> None:
    write(docker_config, {"auths": {}})
    assert call(["configure", "docker"]).code == 0
    written = docker_config.read_bytes()
    docker_config.with_name("config.json.bak").unlink()
    again = call(["configure", "docker"])
    assert again.code == 0 and "nothing changed" in again.out
    assert docker_config.read_bytes() == written
    assert not docker_config.with_name("config.json.bak").exists()


def test_a_missing_config_is_created_0600_in_a_0700_folder_under_docker_config(
        tmp_path: Path, on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "dockercfg"
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    result = call(["configure", "docker"])
    assert result.code == 0, result.out
    assert json.loads((folder / "config.json").read_text()) == {"credsStore": "switchboard"}
    assert mode(folder / "config.json") == 0o600 and mode(folder) == 0o700
    assert not (folder / "config.json.bak").exists()


def test_hosts_add_only_cred_helpers_with_dockers_own_hub_key(docker_config: Path) -> None:
    write(docker_config, {"credHelpers": {"gcr.io": "gcloud", "ghcr.io": "pass"}})
    result = call(["configure", "docker", "--hosts", "docker.io, 127.0.0.1:5000,GHCR.IO,index.docker.io"])
    assert result.code == 0, result.out
    after = json.loads(docker_config.read_text())
    assert after == {"credHelpers": {"gcr.io": "gcloud", "ghcr.io": "switchboard", HUB: "switchboard",
                                     "127.0.0.1:5000": "switchboard"}}
    assert '(was "pass")' in result.out
    again = call(["configure", "docker", "--hosts", "registry-1.docker.io,ghcr.io"])
    assert again.code == 0 and "nothing changed" in again.out


@pytest.mark.parametrize("hosts", ["ghcr.io/org/img", "a b", "", "user@evil.example"])
def test_a_bad_hosts_list_is_one_line_and_changes_nothing(docker_config: Path, hosts: str) -> None:
    raw = write(docker_config, {"auths": {}})
    result = call(["configure", "docker", "--hosts", hosts])
    assert result.code == 1 and result.out.count("\n") == 1, result.out
    assert docker_config.read_bytes() == raw


PLAINTEXT = {"auths": {
    "ghcr.io": {"auth": base64.b64encode(b"octo:ghp_SECRET1").decode()},
    HUB: {"username": "me", "password": "SECRET2"},
    "registry.example:5000": {"identitytoken": "SECRET3"},
    "quay.io": {},  # Docker's own placeholder for a login kept by a helper: nothing to hide
}}


def test_plaintext_logins_stop_the_switch_with_their_hosts_and_the_import_command(docker_config: Path) -> None:
    raw = write(docker_config, PLAINTEXT)
    result = call(["configure", "docker"])
    assert result.code == 0, result.out
    assert docker_config.read_bytes() == raw
    assert not docker_config.with_name("config.json.bak").exists()
    for host in ("ghcr.io", HUB, "registry.example:5000"):
        assert host in result.out
    assert "quay.io" not in result.out
    assert "docker-credential-switchboard import" in result.out and "Nothing was changed" in result.out
    for secret in ("SECRET", "ghp_", PLAINTEXT["auths"]["ghcr.io"]["auth"], "octo"):
        assert secret not in result.out
    # --dry-run says the same, and writes nothing either
    assert call(["configure", "docker", "--dry-run"]).out == result.out


def test_hosts_that_shadow_no_plaintext_login_go_ahead_and_those_that_do_stop(docker_config: Path) -> None:
    raw = write(docker_config, PLAINTEXT)
    stopped = call(["configure", "docker", "--hosts", "docker.io"])
    assert stopped.code == 0 and HUB in stopped.out and "ghcr.io" not in stopped.out
    assert docker_config.read_bytes() == raw
    result = call(["configure", "docker", "--hosts", "quay.io,nvcr.io"])
    assert result.code == 0 and "warning" not in result.out, result.out
    assert json.loads(docker_config.read_text())["credHelpers"] == {"quay.io": "switchboard", "nvcr.io": "switchboard"}


def test_force_switches_and_leaves_the_plaintext_in_place_with_a_warning(docker_config: Path) -> None:
    write(docker_config, PLAINTEXT)
    result = call(["configure", "docker", "--force"])
    assert result.code == 0 and "warning" in result.out and "import" in result.out
    assert "SECRET" not in result.out
    after = json.loads(docker_config.read_text())
    assert after == {**PLAINTEXT, "credsStore": "switchboard"}


def test_another_creds_store_is_replaced_and_named(docker_config: Path) -> None:
    write(docker_config, {"credsStore": "desktop"})
    result = call(["configure", "docker"])
    assert result.code == 0 and '(was "desktop"' in result.out
    assert json.loads(docker_config.read_text()) == {"credsStore": "switchboard"}


@pytest.mark.parametrize("content", [b'{"auths": {', b"[]", b'{"auths": []}', b"\xff\xfe"])
def test_a_file_that_is_not_a_docker_config_is_refused_in_one_line_and_untouched(
        docker_config: Path, content: bytes) -> None:
    docker_config.parent.mkdir(parents=True)
    docker_config.write_bytes(content)
    result = call(["configure", "docker"])
    assert result.code == 1 and result.out.count("\n") == 1 and str(docker_config) in result.out, result.out
    assert docker_config.read_bytes() == content
    assert [p.name for p in docker_config.parent.iterdir()] == ["config.json"]


def test_an_empty_file_is_an_empty_config_as_for_docker(docker_config: Path) -> None:
    docker_config.parent.mkdir(parents=True)
    docker_config.write_bytes(b"")
    assert call(["configure", "docker"]).code == 0
    assert json.loads(docker_config.read_text()) == {"credsStore": "switchboard"}


def test_docker_dry_run_writes_nothing(docker_config: Path) -> None:
    result = call(["configure", "docker", "--dry-run"])
    assert result.code == 0 and 'would set "credsStore": "switchboard"' in result.out
    assert not docker_config.parent.exists()
    raw = write(docker_config, {"auths": {}})
    result = call(["configure", "docker", "--hosts", "ghcr.io", "--dry-run"])
    assert result.code == 0 and "would set" in result.out
    assert docker_config.read_bytes() == raw and not docker_config.with_name("config.json.bak").exists()


def test_a_symlinked_config_is_updated_through_the_link(docker_config: Path, tmp_path: Path) -> None:
    target = tmp_path / "dotfiles" / "docker.json"
    write(target, {"psFormat": "x"})
    docker_config.parent.mkdir(parents=True)
    docker_config.symlink_to(target)
    assert call(["configure", "docker"]).code == 0
    assert docker_config.is_symlink()
    assert json.loads(target.read_text()) == {"psFormat": "x", "credsStore": "switchboard"}


@pytest.mark.parametrize("client", ["docker", "podman"])
def test_a_helper_missing_from_path_is_warned_about(client: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = call(["configure", client])
    assert result.code == 0 and "docker-credential-switchboard is not on PATH" in result.out


@pytest.mark.parametrize("argv", [["configure", "podman", "--hosts", "ghcr.io"], ["configure", "podman", "--force"],
                                  ["configure", "docker", "--system"], ["configure", "kubelet"], ["configure"]])
def test_options_of_the_other_client_are_usage_errors(argv: list[str], on_path: Path) -> None:
    result = call(argv)
    assert result.code == 1 and result.out.count("\n") == 1, result.out


# -- podman ----------------------------------------------------------------------------------------------
def dropin(home: Path) -> Path:
    return home / ".config/containers/registries.conf.d/50-switchboard.conf"


def test_podman_dropin_content_and_a_second_run_changes_nothing(isolated_home: Path, on_path: Path) -> None:
    result = call(["configure", "podman"])
    assert result.code == 0 and "created" in result.out and "warning" not in result.out, result.out
    path = dropin(isolated_home)
    text = path.read_text()
    assert DROPIN_LINE + "\n" in text.splitlines(keepends=True)
    assert all(line.startswith("#") for line in text.splitlines() if line != DROPIN_LINE)
    assert "containers-auth.json stays" in text and "--authfile" in text
    assert mode(path) == 0o644
    assert sorted(p.name for p in path.parent.parent.rglob("*")) == ["50-switchboard.conf", "registries.conf.d"]
    again = call(["configure", "podman"])
    assert again.code == 0 and "nothing changed" in again.out
    assert path.read_text() == text


def test_podman_replaces_an_outdated_dropin_and_dry_run_writes_nothing(isolated_home: Path, on_path: Path) -> None:
    result = call(["configure", "podman", "--dry-run"])
    assert result.code == 0 and "would create" in result.out
    assert not (isolated_home / ".config").exists()
    path = dropin(isolated_home)
    path.parent.mkdir(parents=True)
    path.write_text('credential-helpers = ["switchboard"]\n')
    assert "would replace" in call(["configure", "podman", "--dry-run"]).out
    assert path.read_text() == 'credential-helpers = ["switchboard"]\n'
    assert call(["configure", "podman"]).code == 0
    assert DROPIN_LINE in path.read_text()


def test_podman_dropin_goes_under_home_whatever_xdg_config_home_says(
        isolated_home: Path, on_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """containers/image 5.23 reads $HOME/.config/containers/registries.conf.d only (observed)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    result = call(["configure", "podman"])
    assert result.code == 0 and "note: XDG_CONFIG_HOME" in result.out
    assert dropin(isolated_home).exists() and not (tmp_path / "xdg").exists()


def test_podman_system_dropin(tmp_path: Path, on_path: Path, monkeypatch: pytest.MonkeyPatch,
                              isolated_home: Path) -> None:
    monkeypatch.setattr(podman_module, "SYSTEM_DIR", str(tmp_path / "etc"))
    result = call(["configure", "podman", "--system"])
    assert result.code == 0, result.out
    assert DROPIN_LINE in (tmp_path / "etc/50-switchboard.conf").read_text()
    assert not (isolated_home / ".config").exists()


@pytest.mark.e2e
def test_podman_login_through_the_dropin_stores_in_the_helper_and_writes_no_plaintext(
        lab: Lab, env: Env, isolated_home: Path,  # noqa: F811 (the e2e fixtures, imported above)
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the drop-in wires the helper (no auth file names it): podman login stores through it, podman,
    buildah and skopeo read through it, an --authfile still authenticates, and no plaintext is left."""
    for tool in ("podman", "buildah", "skopeo"):
        require_tool(tool)
    env.authfile.unlink()
    run_dir = Path(os.environ["XDG_RUNTIME_DIR"])
    host = lab.plain.host
    # control: without the drop-in, podman does not ask the helper
    env.helper_store(host, USER, PASSWORD)
    done = env.podman("login", "--get-login", host)
    assert done.code != 0, done
    assert env.helper("erase", host).code == 0

    monkeypatch.setenv("PATH", env.path)  # the helper is on PATH: no warning
    result = call(["configure", "podman"])
    assert result.code == 0 and "warning" not in result.out, result.out
    assert dropin(isolated_home).exists()
    assert not any(run_dir.rglob("*")), "configure wrote under XDG_RUNTIME_DIR"

    done = env.podman("login", *lab.plain.tls_flags(), "-u", USER, "-p", PASSWORD, host)
    assert done.code == 0, done
    assert_stored(env, host)
    for client in (env.podman, env.buildah):
        done = client("login", "--get-login", host)
        assert (done.code, done.out.strip()) == (0, USER), done
    done = env.skopeo("inspect", *lab.plain.tls_flags(), f"docker://{lab.plain.image}")
    assert done.code == 0 and json.loads(done.out)["Digest"] == lab.image.manifest_digest, done
    for auth_json in (run_dir / "containers/auth.json", isolated_home / ".config/containers/auth.json",
                      Path("/run/containers/0/auth.json")):
        assert not auth_json.exists() or PASSWORD not in auth_json.read_text(), auth_json
    assert_no_plaintext_secret(isolated_home)

    # an explicit auth file still authenticates (containers-auth.json in the list), for a host the helper lacks
    authfile = env.work / "scripted-auth.json"
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    authfile.write_text(json.dumps({"auths": {lab.tls.host: {"auth": token}}}))
    image = f"docker://{lab.tls.image}"
    done = env.skopeo("inspect", *lab.tls.tls_flags(), image)
    assert done.code != 0 and unauthorized(done), done  # control: the helper has nothing for it
    done = env.skopeo("inspect", "--authfile", str(authfile), *lab.tls.tls_flags(), image)
    assert done.code == 0 and json.loads(done.out)["Digest"] == lab.image.manifest_digest, done
