"""Issue 11's "Done when", end to end: a new user's first ten minutes on a fresh machine.

The machine already holds plaintext logins: Docker's ~/.docker/config.json has `auths` for registry A (the
TLS `docker-registry` with htpasswd, its test CA trusted through SSL_CERT_FILE), Podman's auth file
($XDG_RUNTIME_DIR/containers/auth.json, also named by REGISTRY_AUTH_FILE because podman running as root
reads /run/containers/0/auth.json otherwise) a login for registry B (plain http). The user runs, with the
real executable, `import`, `configure docker`, `configure podman`, `doctor` (and `doctor --registry` for
each), deletes the backups `import` named with the `rm` it printed, and then every login works through
the helper with the real docker CLI, skopeo, podman and buildah, and no plaintext secret is left under
HOME or $XDG_RUNTIME_DIR (in clear, JSON-escaped or as Docker's base64 `auth`).
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests import test_e2e_clients as e2e
from tests.conftest import Result, require_tool, run_helper

pytestmark = pytest.mark.e2e

lab = e2e.lab  # the session's registries (plain http and TLS, htpasswd, seeded image), shared with the e2e tests
env = e2e.env

#: A: the Docker login; B: the Podman login (a second registry user, so each secret is its own)
USER_A, SECRET_A = e2e.USER, e2e.PASSWORD
USER_B, SECRET_B = e2e.SPECIAL_USER, e2e.SPECIAL_PASSWORD


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_forms() -> list[bytes]:
    """Every way a file could hold the two secrets: in clear, JSON-escaped, and Docker's base64 `user:secret`."""
    forms: list[bytes] = []
    for user, secret in ((USER_A, SECRET_A), (USER_B, SECRET_B)):
        forms += [secret.encode(), json.dumps(secret)[1:-1].encode(), json.dumps(secret, ensure_ascii=False)[1:-1]
                  .encode(), b64(f"{user}:{secret}").encode()]
    return forms


def files_holding_a_secret(*places: Path) -> list[str]:
    """Every file under `places` (each once: $XDG_RUNTIME_DIR may be under HOME) whose bytes hold a secret."""
    files = {p.resolve() for place in places for p in place.rglob("*") if p.is_file() and not p.is_symlink()}
    return sorted(str(path) for path in files if any(form in path.read_bytes() for form in secret_forms()))


def helper(e: e2e.Env, *argv: str) -> Result:
    """The real executable, as the user types it in a shell with the clients' environment."""
    return run_helper(list(argv), None, env=e.env, timeout=120)


def test_a_new_user_with_plaintext_logins_ends_with_every_login_through_the_helper_and_no_plaintext(
        lab: e2e.Lab, env: e2e.Env, isolated_home: Path) -> None:
    for tool in ("docker", "podman", "buildah", "skopeo"):
        require_tool(tool)
    a, b = lab.tls, lab.plain
    assert a.tls is not None
    run_dir = Path(os.environ["XDG_RUNTIME_DIR"])
    # a fresh machine: Docker's default ~/.docker, no auth file naming the helper, no drop-in; A's CA trusted
    env.authfile.unlink()
    del env.overrides["DOCKER_CONFIG"]
    podman_auth = run_dir / "containers" / "auth.json"
    env.overrides["REGISTRY_AUTH_FILE"] = str(podman_auth)
    env.overrides["SSL_CERT_FILE"] = str(a.tls[0])
    docker_config = isolated_home / ".docker" / "config.json"
    docker_config.parent.mkdir()
    docker_config.write_text(json.dumps({"auths": {a.host: {"auth": b64(f"{USER_A}:{SECRET_A}")}}}, indent="\t"))
    podman_auth.parent.mkdir()
    podman_auth.write_text(json.dumps({"auths": {b.host: {"auth": b64(f"{USER_B}:{SECRET_B}")}}}))
    podman_auth.chmod(0o600)
    assert len(files_holding_a_secret(isolated_home, run_dir)) == 2  # the two plaintext logins, found by the grep
    # control: the clients use the plaintext logins today
    done = env.docker("manifest", "inspect", a.image)
    assert done.code == 0, done
    done = env.podman("login", "--get-login", b.host)
    assert (done.code, done.out.strip()) == (0, USER_B), done

    imported = helper(env, "import")
    assert imported.code == 0, imported.out + imported.err
    removals = [line.split("delete it once logins work: ", 1)[1] for line in imported.out.splitlines()
                if "delete it once logins work: rm " in line]
    assert len(removals) == 2, imported.out
    for result in (imported, configured_docker := helper(env, "configure", "docker"),
                   configured_podman := helper(env, "configure", "podman")):
        assert result.code == 0, result.out + result.err
        assert "warning" not in result.out.lower(), result.out
    assert json.loads(docker_config.read_text()) == {"auths": {a.host: {}}, "credsStore": e2e.HELPER}, \
        configured_docker.out
    assert (isolated_home / ".config/containers/registries.conf.d/50-switchboard.conf").exists(), \
        configured_podman.out
    doctor = helper(env, "doctor")
    assert doctor.code == 0 and "[FAIL]" not in doctor.out, doctor.out + doctor.err
    for registry, user in ((a, USER_A), (b, USER_B)):
        checked = helper(env, "doctor", "--registry", registry.host)
        assert checked.code == 0 and "[FAIL]" not in checked.out, checked.out + checked.err
        assert f"[ OK ] registry {registry.host}: user {user}: accepted (basic, {registry.scheme})" \
            in checked.out.splitlines(), checked.out
    for output in (imported.out, configured_docker.out, configured_podman.out, doctor.out, checked.out):
        assert not any(form.decode() in output for form in secret_forms())

    # the user deletes the backups with the commands import printed
    for command in removals:
        subprocess.run(shlex.split(command), check=True, cwd=env.work, env=env.env)

    # every login works through the helper, with every client
    done = env.docker("manifest", "inspect", a.image)
    assert done.code == 0, done
    assert json.loads(done.out)["config"]["digest"] == lab.image.config_digest
    for registry in (a, b):
        done = env.skopeo("inspect", *registry.tls_flags(), f"docker://{registry.image}")
        assert done.code == 0, done
        assert json.loads(done.out)["Digest"] == lab.image.manifest_digest
    for client in (env.podman, env.buildah):
        done = client("login", "--get-login", b.host)
        assert (done.code, done.out.strip()) == (0, USER_B), done
    e2e.assert_stored(env, a.host, USER_A, SECRET_A)
    e2e.assert_stored(env, b.host, USER_B, SECRET_B)

    # no plaintext secret left anywhere under HOME or $XDG_RUNTIME_DIR (the store is encrypted)
    assert files_holding_a_secret(isolated_home, run_dir) == []
    assert json.loads(podman_auth.read_text()) == {"auths": {b.host: {}}}
