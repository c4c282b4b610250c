"""`doctor` (issue 11 item 3): one line per check with its fix, --json, exit 1 only when something failed.

Every test runs in conftest's isolated HOME (no D-Bus: the static store is the encrypted file). The healthy setup
is made with the commands a person runs (`configure docker`, `configure podman`, a login through `store`, a routes
file); the broken one has each problem the issue names. The security tests prove that nothing secret is printed,
that the round trip leaves the store as it was and that no socket is opened, each with a control.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from helper.doctor.store import PROBE_KEY
from tests import test_login_check as login_check
from tests.conftest import Result, call, helper_executable, run_helper
from tests.test_login_check import PASSWORD as CHECK_PASSWORD
from tests.test_login_check import USER as CHECK_USER
from tests.test_login_check import WRONG as CHECK_WRONG
from tests.test_login_check import Lab

lab = login_check.lab  # the login check's htpasswd registries (plain and TLS), reused
trusted = login_check.trusted

SECRET = "Doctor-Must-Never-Print-This-9f3c1e"
ENV_SECRET = "nvapi-Env-Secret-Never-Printed-77aa"
LINE = re.compile(r"^\[( OK |WARN|FAIL)\] [^:]+: .+$")


def _lines(out: str, tag: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(f"[{tag}]")]


def _fix_after(out: str, prefix: str) -> str:
    """The fix line printed under the first line that starts with `prefix`."""
    lines = out.splitlines()
    index = next(n for n, line in enumerate(lines) if line.startswith(prefix))
    assert lines[index + 1].startswith("       fix: "), lines[index:index + 2]
    return lines[index + 1]


def _store(host: str, user: str, secret: str) -> None:
    assert call("store", json.dumps({"ServerURL": host, "Username": user, "Secret": secret})).code == 0


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> str:
    """The helper's folder first on PATH, as a configured machine has it."""
    folder = str(Path(helper_executable()).parent)
    monkeypatch.setenv("PATH", folder + os.pathsep + os.environ.get("PATH", ""))
    return folder


@pytest.fixture
def healthy(on_path: str, routes: Path) -> Path:
    """configure docker + podman done via the commands, a stored login, a routes file."""
    routes.write_text('[[route]]\nmatch = "registry.corp.example"\nbackend = "store"\n')
    assert call(["configure", "docker"]).code == 0
    assert call(["configure", "podman"]).code == 0
    _store("registry.corp.example", "alice", SECRET)
    return routes


def test_a_healthy_setup_is_all_ok_or_warn_and_exits_0(healthy: Path) -> None:
    result = call(["doctor"])
    assert result.code == 0, result.out
    assert not _lines(result.out, "FAIL")
    for check in ("helper on PATH", "docker config", "podman config", "routes file", "store key",
                  "store round trip", "route registry.corp.example", "token cache"):
        assert any(line.startswith(f"[ OK ] {check}:") for line in result.out.splitlines()), (check, result.out)
    assert f"[ OK ] routes file: {healthy} (1 routes)" in result.out
    assert "protected by a key file" in result.out
    assert "entry registry.corp.example" in result.out  # the route's row says which stored entry answers
    lines = [line for line in result.out.splitlines() if not line.startswith("       fix: ")]
    assert all(LINE.match(line) for line in lines[:-1]), lines
    assert lines[-1] == "0 failed, 0 warnings"


def test_a_broken_setup_names_each_problem_with_its_fix_and_exits_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _store("ghcr.io", "bob", SECRET)  # a keyfile store (no passphrase yet)
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"credsStore": "switchboard", "auths": {
        "quay.io": {"auth": "dTpw"}, "index.docker.io": {}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    monkeypatch.setenv("SWITCHBOARD_CONFIG", str(tmp_path / "no-such-routes.toml"))
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("SWITCHBOARD_PASSPHRASE", "now-a-passphrase")

    result = call(["doctor"])

    assert result.code == 1, result.out
    out = result.out
    assert "[FAIL] helper on PATH: docker-credential-switchboard is not on PATH" in out
    assert "PATH" in _fix_after(out, "[FAIL] helper on PATH")
    assert f"[FAIL] routes file: SWITCHBOARD_CONFIG names {tmp_path / 'no-such-routes.toml'}, which does not " \
           "exist" in out
    assert "unset SWITCHBOARD_CONFIG" in _fix_after(out, "[FAIL] routes file")
    plaintext = [line for line in _lines(out, "WARN") if line.startswith("[WARN] docker plaintext:")]
    assert len(plaintext) == 1 and "quay.io, hidden by the helper" in plaintext[0]
    assert "docker-credential-switchboard import" in _fix_after(out, "[WARN] docker plaintext")
    assert "index.docker.io" not in "".join(line for line in out.splitlines() if "plaintext" in line)  # `{}`
    assert "[WARN] passphrase: SWITCHBOARD_PASSPHRASE is set, but" in out
    assert "docker-credential-switchboard rekey" in _fix_after(out, "[WARN] passphrase")
    assert "dTpw" not in out  # the plaintext entry's value is never printed


def test_a_passphrase_store_with_its_passphrase_set_gets_no_rekey_warning(
        on_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # control for the broken case: the warning is about a mismatch, not about the variable being set
    monkeypatch.setenv("SWITCHBOARD_PASSPHRASE", "the-right-one")
    _store("ghcr.io", "bob", SECRET)
    result = call(["doctor"])
    assert "protected by a passphrase (SWITCHBOARD_PASSPHRASE)" in result.out
    assert "rekey" not in result.out and "[ OK ] store round trip: stored, read back and erased" in result.out


def test_json_is_an_array_of_status_check_message_fix_with_the_same_exit_code(healthy: Path) -> None:
    result = call(["doctor", "--json"])
    found: list[dict[str, Any]] = json.loads(result.out)
    assert found and all(set(item) == {"status", "check", "message", "fix"} for item in found)
    assert {item["status"] for item in found} <= {"OK", "WARN", "FAIL"} and result.code == 0
    os.environ["SWITCHBOARD_CONFIG"] = str(healthy) + ".missing"  # monkeypatched by `routes`: restored
    broken = call(["doctor", "--json"])
    failed = [item for item in json.loads(broken.out) if item["status"] == "FAIL"]
    assert broken.code == 1 and failed[0]["check"] == "routes file" and "SWITCHBOARD_CONFIG" in failed[0]["fix"]


def test_no_secret_is_printed_neither_a_stored_one_nor_an_env_one_nor_the_probes(
        healthy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NGC_API_KEY", ENV_SECRET)
    _store("ghcr.io", "carol", SECRET + "-ghcr")
    outputs = [call(["doctor"]).out, call(["doctor", "--json"]).out]
    for out in outputs:
        # control: the entries and the preset are described (so a leak would have had its chance)
        assert "entry registry.corp.example" in out and "2 real entries untouched" in out
        assert "route nvcr.io" in out and "$NGC_API_KEY (set)" in out.replace('\\"', '"')
        assert SECRET not in out and ENV_SECRET not in out and ENV_SECRET[:12] not in out
        assert not re.search(r"doctor-[0-9a-f]{32}", out)  # the round trip's throw-away secret


def test_the_round_trip_leaves_the_store_as_it_was(healthy: Path) -> None:
    _store("ghcr.io", "carol", SECRET + "-ghcr")
    before = call("list").json()
    result = call(["doctor"])
    assert "[ OK ] store round trip: stored, read back and erased doctor.switchboard.invalid (file); 2 real " \
           "entries untouched" in result.out
    after = call("list").json()
    assert before == after and PROBE_KEY not in after
    got = call("get", "registry.corp.example").json()
    assert (got["Username"], got["Secret"]) == ("alice", SECRET)


def test_doctor_does_not_create_a_store_that_does_not_exist(on_path: str, isolated_home: Path) -> None:
    result = call(["doctor"])
    assert "[ OK ] store round trip: skipped: no store yet" in result.out
    assert not list(isolated_home.rglob("store.json")) and not list(isolated_home.rglob("store.key"))


def test_doctor_opens_no_socket_even_with_cloud_routes(healthy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    healthy.write_text('[[route]]\nmatch = "*.dkr.ecr.*.amazonaws.com"\nbackend = "ecr"\nprofile = "ci"\n'
                       '[[route]]\nmatch = "corp.azurecr.io"\nbackend = "acr"\n'
                       '[[route]]\nmatch = "tokens.corp.example"\nbackend = "exec"\ncommand = ["false"]\n')
    opened: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        opened.append(address)
        raise OSError("doctor must not reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    result = call(["doctor"])
    assert opened == [] and result.code == 0, result.out
    assert "[ OK ] route corp.azurecr.io: acr from" in result.out
    assert "[ OK ] route tokens.corp.example: exec from" in result.out and "command false" in result.out
    # control: the patch does catch a connection attempt
    with pytest.raises(OSError, match="must not reach"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    assert opened


def test_an_env_route_whose_variables_are_unset_is_a_warning_with_the_fix(on_path: str, routes: Path) -> None:
    routes.write_text('[[route]]\nmatch = "registry.ci.example"\nbackend = "env"\nusername = "ci"\n'
                      'secret_env = "CI_DOCTOR_TOKEN"\n')
    result = call(["doctor"])
    warned = [line for line in _lines(result.out, "WARN") if "registry.ci.example" in line]
    assert warned and "$CI_DOCTOR_TOKEN is not set" in warned[0] and result.code == 0


def test_registry_without_credentials_fails_with_the_login_fix_and_sends_nothing(healthy: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    host = f"127.0.0.1:{server.getsockname()[1]}"
    server.settimeout(0.2)
    try:
        result = call(["doctor", "--registry", host])
        with pytest.raises(TimeoutError):
            server.accept()  # not-found: the registry is never asked
    finally:
        server.close()
    assert result.code == 1
    assert f"[FAIL] registry {host}: no credentials: a client asking the helper for {host} gets not-found" \
        in result.out.splitlines()
    assert _fix_after(result.out, f"[FAIL] registry {host}") == \
        f"       fix: docker-credential-switchboard login {host}"
    assert result.out.endswith("1 failed, 0 warnings\n")  # the usual checks ran too, all OK


def test_registry_unreachable_fails_with_the_reason(healthy: Path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    host = f"127.0.0.1:{probe.getsockname()[1]}"
    probe.close()
    _store(host, "alice", SECRET)
    result = call(["doctor", "--registry", host])
    assert result.code == 1 and SECRET not in result.out
    assert f"[FAIL] registry {host}: unreachable (Connection refused)" in result.out.splitlines()
    assert "--insecure" in _fix_after(result.out, f"[FAIL] registry {host}")
    as_json = json.loads(call(["doctor", "--registry", host, "--json"]).out)
    assert as_json[-1]["check"] == f"registry {host}" and as_json[-1]["status"] == "FAIL"


def test_insecure_needs_registry(healthy: Path) -> None:
    result = call(["doctor", "--insecure"])
    assert result.code != 0 and "--insecure goes with --registry HOST" in result.out


def test_registry_accepted_and_refused_against_a_real_htpasswd_registry(healthy: Path, trusted: Lab) -> None:
    """docker-registry with htpasswd over TLS (the test CA trusted by SSL_CERT_FILE) and over plain http."""
    for registry in (trusted.tls, trusted.plain):
        host = registry.host
        _store(host, CHECK_USER, CHECK_PASSWORD)
        result = call(["doctor", "--registry", host])
        assert result.code == 0, result.out
        assert f"[ OK ] registry {host}: user {CHECK_USER}: accepted (basic, {registry.scheme})" \
            in result.out.splitlines()
        assert CHECK_PASSWORD not in result.out and not _lines(result.out, "FAIL")

        _store(host, CHECK_USER, CHECK_WRONG)
        result = call(["doctor", "--registry", host])
        assert result.code == 1 and CHECK_WRONG not in result.out
        assert f"[FAIL] registry {host}: user {CHECK_USER}: refused (401): the stored credentials are wrong or " \
               "expired" in result.out.splitlines()
        assert _fix_after(result.out, f"[FAIL] registry {host}") == \
            f"       fix: docker-credential-switchboard login {host}"


def test_registry_insecure_passes_through_to_an_untrusted_tls_registry(healthy: Path, lab: Lab) -> None:
    host = lab.tls.host
    _store(host, CHECK_USER, CHECK_PASSWORD)
    untrusted = call(["doctor", "--registry", host])
    assert untrusted.code == 1
    assert f"[FAIL] registry {host}: unreachable (TLS certificate not trusted" in untrusted.out
    insecure = call(["doctor", "--registry", host, "--insecure"])
    assert insecure.code == 0, insecure.out
    assert f"[ OK ] registry {host}: user {CHECK_USER}: accepted (basic, https)" in insecure.out.splitlines()


def _env() -> dict[str, str]:
    return dict(os.environ)


def test_the_executable_runs_doctor_and_knows_it_is_the_one_on_path(healthy: Path) -> None:
    result: Result = run_helper(["doctor"], env=_env())
    assert result.code == 0, result.out + result.err
    assert f"[ OK ] helper on PATH: {Path(helper_executable()).parent}" in result.out


def test_another_copy_first_on_path_is_a_warning(healthy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-bin"
    other.mkdir()
    copy = other / "docker-credential-switchboard"
    copy.write_text("#!/bin/sh\nexit 1\n")
    copy.chmod(0o755)
    env = _env()
    env["PATH"] = f"{other}{os.pathsep}{env['PATH']}"
    result = run_helper(["doctor"], env=env)
    assert f"[WARN] helper on PATH: PATH finds {copy}, not the" in result.out, result.out
    assert result.code == 0 and sys.platform != "win32"
