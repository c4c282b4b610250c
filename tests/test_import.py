"""`import`: plaintext logins of Docker's and Podman's auth files into the store; and `logout` of nothing.

Every login is stored and read back before any file is rewritten; the file keeps its other keys, its
mode and every entry (as Docker's `{}` form); a 0600 backup holds the old bytes; nothing secret is printed.
The last test drives the real docker CLI and skopeo against `docker-registry` with the imported logins.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from pathlib import Path

import pytest

from helper.actions import Switchboard
from helper.errors import StoreError
from tests import test_e2e_clients as e2e
from tests.conftest import NOT_FOUND, call, require_tool, run_helper

HUB = "https://index.docker.io/v1/"
SECRETS = ("hub-pass-1", "ghcr-pass-2", "refresh-token-3", "bad-entry-pass")

lab = e2e.lab  # the session's registries and the clients' environment, shared with test_e2e_clients
env = e2e.env


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def docker_doc() -> dict[str, object]:
    return {
        "auths": {
            HUB: {"auth": b64("hubuser:hub-pass-1")},
            "ghcr.io": {"username": "octocat", "password": "ghcr-pass-2"},
            "myregistry.azurecr.io": {"identitytoken": "refresh-token-3"},
            "bad.example": {"auth": "!!not-base64!!"},
            "nopass.example": {"username": "lonely"},
            "weird.example": "bad-entry-pass",
            "already.example": {},
        },
        "HttpHeaders": {"User-Agent": "kept"},
        "currentContext": "default",
    }


@pytest.fixture
def docker_config(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = isolated_home / "dockercfg"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    path = folder / "config.json"
    path.write_text(json.dumps(docker_doc(), indent=2))
    path.chmod(0o640)
    return path


def assert_no_secret(text: str | bytes) -> None:
    raw = text.encode() if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in raw


def answers(getter: object, key: str) -> tuple[str, str]:
    result = call("get", key) if getter == "call" else run_helper("get", key, env=dict(os.environ))
    assert result.code == 0, result.out
    got = result.json()
    return got["Username"], got["Secret"]


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".plaintext-backup-*"))


@pytest.mark.parametrize("getter", ["call", "run_helper"])
def test_import_docker_config(getter: str, docker_config: Path) -> None:
    original = docker_config.read_bytes()
    result = call("import") if getter == "call" else run_helper("import", env=dict(os.environ))
    assert result.code == 0, result.out
    assert_no_secret(result.out)
    lines = result.out.splitlines()
    assert lines[0] == f"{docker_config}:"
    assert f"  {HUB}: imported (user hubuser)" in lines
    assert "  ghcr.io: imported (user octocat)" in lines
    assert "  myregistry.azurecr.io: imported (user <token>)" in lines
    assert "  bad.example: skipped: auth is not base64 of UTF-8 user:password; left in place" in lines
    assert "  nopass.example: skipped: username/password: no password; left in place" in lines
    assert "  weird.example: skipped: the entry is not a JSON object; left in place" in lines
    assert any(line.startswith("  already.example: skipped: no plaintext login") for line in lines)

    assert answers(getter, HUB) == ("hubuser", "hub-pass-1")
    assert answers(getter, "ghcr.io") == ("octocat", "ghcr-pass-2")
    assert answers(getter, "myregistry.azurecr.io") == ("<token>", "refresh-token-3")  # identitytoken as Docker

    doc = json.loads(docker_config.read_text())
    assert doc["auths"][HUB] == doc["auths"]["ghcr.io"] == doc["auths"]["myregistry.azurecr.io"] == {}
    assert doc["auths"]["bad.example"] == {"auth": "!!not-base64!!"}  # malformed: left as it was
    assert doc["auths"]["weird.example"] == "bad-entry-pass"
    assert doc["HttpHeaders"] == {"User-Agent": "kept"} and doc["currentContext"] == "default"
    raw = docker_config.read_bytes()
    for secret in SECRETS[:3]:
        assert secret.encode() not in raw and b64(secret).encode()[:8] not in raw
    assert b64("hubuser:hub-pass-1").encode() not in raw
    assert stat.S_IMODE(docker_config.stat().st_mode) == 0o640  # the file's mode is kept

    [saved] = backups(docker_config)
    assert saved.read_bytes() == original and stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert f"rm {saved}" in result.out

    again = call("import")  # a second run finds nothing left to import and changes nothing
    assert again.code == 0 and "imported" not in again.out and docker_config.read_bytes() == raw


def test_dry_run_stores_and_writes_nothing(docker_config: Path) -> None:
    before = docker_config.read_bytes()
    result = call(["import", "--dry-run"])
    assert result.code == 0
    assert f"  {HUB}: would import (user hubuser)" in result.out.splitlines()
    assert result.out.endswith("Dry run: nothing stored, no file changed.\n")
    assert_no_secret(result.out)
    assert docker_config.read_bytes() == before and not backups(docker_config)
    assert call("get", HUB).out == NOT_FOUND + "\n"


def test_keep_plaintext_stores_but_leaves_the_file(docker_config: Path) -> None:
    before = docker_config.read_bytes()
    result = call(["import", "--keep-plaintext"])
    assert result.code == 0 and "Plaintext kept" in result.out
    assert docker_config.read_bytes() == before and not backups(docker_config)
    assert answers("call", "ghcr.io") == ("octocat", "ghcr-pass-2")


def test_no_backup(docker_config: Path) -> None:
    result = call(["import", "--no-backup"])
    assert result.code == 0 and "Backup with" not in result.out and "rm " not in result.out
    assert not backups(docker_config)
    assert json.loads(docker_config.read_text())["auths"]["ghcr.io"] == {}


def test_podman_auth_file_from_registry_auth_file_and_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = tmp_path / "podman-auth.json"
    auth.write_text(json.dumps({"auths": {"quay.io": {"auth": b64("robot:hub-pass-1")}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    result = run_helper("import", env=dict(os.environ))  # no docker config in this HOME: only the podman file
    assert result.code == 0 and result.out.startswith(f"{auth}:\n  quay.io: imported (user robot)\n"), result.out
    assert answers("run_helper", "quay.io") == ("robot", "hub-pass-1")
    assert json.loads(auth.read_text()) == {"auths": {"quay.io": {}}}

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"auths": {"127.0.0.1:5000": {"username": "u", "password": "ghcr-pass-2"}}}))
    result = call(["import", "--from", str(other), "--no-backup"])
    assert result.code == 0 and f"{auth}" not in result.out  # only the --from file was read
    assert answers("call", "127.0.0.1:5000") == ("u", "ghcr-pass-2")
    assert call(["import", "--from", str(tmp_path / "missing.json")]).code == 1


def test_podman_default_locations(isolated_home: Path) -> None:
    runtime = Path(os.environ["XDG_RUNTIME_DIR"]) / "containers"
    runtime.mkdir()
    (runtime / "auth.json").write_text(json.dumps({"auths": {"a.example": {"auth": b64("a:hub-pass-1")}}}))
    config = isolated_home / ".config" / "containers"
    config.mkdir(parents=True)
    (config / "auth.json").write_text(json.dumps({"auths": {"b.example": {"auth": b64("b:ghcr-pass-2")}}}))
    result = call(["import", "--no-backup"])
    assert result.code == 0, result.out
    assert answers("call", "a.example") == ("a", "hub-pass-1")
    assert answers("call", "b.example") == ("b", "ghcr-pass-2")


def test_a_store_failure_midway_leaves_every_file_unchanged(docker_config: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    before = docker_config.read_bytes()
    real_store = Switchboard.store
    seen: list[str] = []

    def failing(self: Switchboard, key: object, creds: object) -> None:
        seen.append(str(key))
        if len(seen) == 2:
            raise StoreError("the disk is full")
        real_store(self, key, creds)  # type: ignore[arg-type]

    monkeypatch.setattr(Switchboard, "store", failing)
    result = call("import")
    assert result.code == 1
    assert "  ghcr.io: not imported: store failed (the disk is full)" in result.out.splitlines()
    assert result.out.endswith("No file changed: the plaintext stays until every login is stored.\n")
    assert docker_config.read_bytes() == before and not backups(docker_config)
    assert_no_secret(result.out)


def test_an_unwritable_data_folder_fails_before_the_file_changes(docker_config: Path) -> None:
    data = Path(os.environ["XDG_DATA_HOME"])
    data.mkdir(parents=True, exist_ok=True)
    (data / "docker-credential-switchboard").write_text("a file where the store's folder should be")
    before = docker_config.read_bytes()
    result = run_helper("import", env={**os.environ, "SWITCHBOARD_STORE": "file"})
    assert result.code == 1 and "not imported" in result.out, result.out
    assert docker_config.read_bytes() == before and not backups(docker_config)
    assert_no_secret(result.out + result.err)


def test_a_symlinked_config_is_rewritten_through_the_link(docker_config: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles-config.json"
    real.write_bytes(docker_config.read_bytes())
    docker_config.unlink()
    docker_config.symlink_to(real)
    assert call(["import", "--no-backup"]).code == 0
    assert docker_config.is_symlink() and json.loads(real.read_text())["auths"]["ghcr.io"] == {}


def test_help_lists_import() -> None:
    assert re.search(r"^  import +move the plaintext", call("--help").out, re.M)
    assert "--keep-plaintext" in call(["import", "--help"]).out


def test_logout_of_nothing_says_so() -> None:
    result = call(["logout", "ghcr.io"])
    assert (result.code, result.out) == (0, "Nothing stored for ghcr.io.\n")
    call("store", '{"ServerURL":"ghcr.io","Username":"u","Secret":"s"}')
    assert call(["logout", "https://ghcr.io"]).out == "Removed credentials for https://ghcr.io.\n"  # an alias
    assert call("get", "ghcr.io").out == NOT_FOUND + "\n"
    result = run_helper(["logout", "ghcr.io"], env=dict(os.environ))
    assert (result.code, result.out) == (0, "Nothing stored for ghcr.io.\n")


@pytest.mark.e2e
def test_imported_logins_serve_the_docker_cli_and_skopeo(lab: e2e.Lab, env: e2e.Env) -> None:
    """Plaintext docker and podman logins, imported, then used by `docker manifest inspect` and `skopeo inspect`
    against the htpasswd registries: the files hold only `{}` entries, the helper answers."""
    require_tool("docker")
    config = env.write_docker_config({"auths": {lab.tls.host: {"auth": b64(f"{e2e.USER}:{e2e.PASSWORD}")}},
                                      "credsStore": e2e.HELPER})
    env.authfile.write_text(json.dumps({"auths": {lab.plain.host: {"username": e2e.USER, "password": e2e.PASSWORD}},
                                        "credHelpers": {lab.plain.host: e2e.HELPER}}))
    done = run_helper(["import", "--no-backup"], None, env=env.env)
    assert done.code == 0, done.out
    done = run_helper(["import", "--no-backup", "--from", str(env.authfile)], None, env=env.env)
    assert done.code == 0, done.out
    assert json.loads(config.read_text())["auths"] == {lab.tls.host: {}}
    assert json.loads(env.authfile.read_text())["auths"] == {lab.plain.host: {}}
    e2e.assert_no_plaintext_secret(config, env.authfile, e2e.data_dir())
    e2e.assert_stored(env, lab.tls.host)
    e2e.assert_stored(env, lab.plain.host)

    inspected = env.docker("manifest", "inspect", lab.tls.image)
    assert inspected.code == 0, inspected
    assert json.loads(inspected.out)["config"]["digest"] == lab.image.config_digest
    inspected = env.skopeo("inspect", *lab.plain.tls_flags(), "--authfile", str(env.authfile),
                           f"docker://{lab.plain.image}")
    assert inspected.code == 0, inspected
    assert json.loads(inspected.out)["Digest"] == lab.image.manifest_digest
