"""Management commands: login, logout, resolve, routes; and the quiet, traceback-free executable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import NOT_FOUND, call, run_helper


def test_login_with_password_stdin_then_get_then_logout() -> None:
    result = call(["login", "ghcr.io", "-u", "octocat", "--password-stdin", "--no-verify"], "ghp_secret\n")
    assert (result.code, result.out) == (0, "Stored credentials for ghcr.io (user octocat).\n")
    assert call("get", "ghcr.io").json()["Secret"] == "ghp_secret"
    assert call(["logout", "ghcr.io"]).code == 0
    assert call("get", "ghcr.io").out == NOT_FOUND + "\n"


def test_login_without_a_terminal_or_password_stdin_says_how() -> None:
    result = run_helper(["login", "ghcr.io", "-u", "octocat"], None, env=dict(os.environ))
    assert (result.code, result.out) == (1, "no terminal to prompt on: pipe the secret with --password-stdin\n")


@pytest.mark.parametrize("argv, expected", [
    (["login"], "the following arguments are required: host"),
    (["login", "ghcr.io", "--password-stdin"], "login needs -u USER when the password comes from stdin"),
    (["resolve"], "the following arguments are required: host"),
    (["routes", "extra"], "unrecognized arguments: extra"),
])
def test_command_errors_are_one_line(argv: list[str], expected: str) -> None:
    result = call(argv, "pw")
    assert result.code == 1 and expected in result.out and result.out.count("\n") == 1


def fields(out: str) -> dict[str, str]:
    """`resolve` output as {label: value} (labels are padded with spaces)."""
    found: dict[str, str] = {}
    for line in out.splitlines():
        label, _, value = line.partition("  ")
        found.setdefault(label.strip(), value.strip())
    return found


def test_resolve_names_route_backend_and_source_but_never_the_secret(
        routes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    routes.write_text('[[route]]\nmatch = "nvcr.io"\nbackend = "env"\npreset = "ngc"\n')
    monkeypatch.setenv("NGC_API_KEY", "nvapi-very-secret")
    out = call(["resolve", "nvcr.io"]).out
    got = fields(out)
    assert (got["route"], got["from"], got["backend"]) == ("nvcr.io", f"{routes}:1", "env")
    assert got["secret"] == "$NGC_API_KEY (set)" and got["username"] == "'$oauthtoken'"
    assert "nvapi-very-secret" not in out
    call("store", '{"ServerURL":"ghcr.io","Username":"u","Secret":"stored-secret"}')
    out = call(["resolve", "https://ghcr.io"]).out
    # issue 11.5: ghcr.io is the GHCR env preset's; with GITHUB_TOKEN unset the stored secret answers
    got = fields(out)
    assert (got["backend"], got["then store: entry"]) == ("env", "ghcr.io") and "stored-secret" not in out
    assert got["answers"] == "the static store ($GITHUB_TOKEN is not set)"
    got = fields(call(["resolve", "x.azurecr.io.evil.example"]).out)
    assert (got["route"], got["backend"]) == ("(none matched)", "store")
    assert fields(call(["resolve", "x.azurecr.io"]).out)["backend"] == "acr"


def test_routes_lists_the_effective_table_most_specific_first(routes: Path) -> None:
    routes.write_text('[[route]]\nmatch = "special.azurecr.io"\nbackend = "store"\n')
    lines = call("routes").out.splitlines()
    assert lines[0] == f"routes file: {routes}"
    patterns = [line.split()[0] for line in lines[2:]]
    assert patterns.index("special.azurecr.io") < patterns.index("*.azurecr.io")
    assert patterns[-1] == "*"


def test_the_executable_is_quiet_on_stderr_and_never_prints_a_traceback(tmp_path: Path) -> None:
    env = dict(os.environ)
    cases: list[tuple[str | list[str], bytes | None]] = [
        ("store", b'{"ServerURL":"q.example","Username":"u","Secret":"quiet-secret"}'),
        ("get", b"q.example"), ("get", b"missing.example"), ("list", None), ("erase", b"q.example"),
        ("store", b"\xff\xfe"), ("store", b"[" * 200_000), ("bogus", b""), ("get", b""),
        (["resolve", "q.example"], None), (["routes"], None),
    ]
    for action, data in cases:
        result = run_helper(action, data, env=env)
        assert result.err == "", (action, result.err)
        assert "Traceback" not in result.out
        if isinstance(action, str):  # protocol actions answer in one line at most
            assert result.out.count("\n") <= 1
        assert result.code in (0, 1)


def test_debug_mode_and_the_log_file_carry_no_secret(tmp_path: Path) -> None:
    log = tmp_path / "switchboard.log"
    env = dict(os.environ, SWITCHBOARD_DEBUG="1", SWITCHBOARD_LOG=str(log),
               SWITCHBOARD_CONFIG=str(tmp_path / "routes.toml"))
    (tmp_path / "routes.toml").write_text('[[route]]\nmatch = "nvcr.io"\nbackend = "env"\npreset = "ngc"\n')
    secret = "debug-mode-secret-value"
    outputs = [run_helper("store", json.dumps({"ServerURL": "d.example", "Username": "u", "Secret": secret}), env=env),
               run_helper("get", "d.example", env=env), run_helper("get", "nvcr.io", env=env),
               run_helper("list", None, env=env), run_helper(["resolve", "d.example"], None, env=env),
               run_helper("erase", "d.example", env=env)]
    (tmp_path / "routes.toml").write_text("broken = [")
    outputs.append(run_helper("get", "nvcr.io", env=env))
    assert log.exists() and (log.stat().st_mode & 0o777) == 0o600
    assert "nvcr.io" in log.read_text()
    assert secret not in log.read_text()
    for result in outputs:
        assert secret not in result.err
    assert outputs[1].out.count(secret) == 1  # only the get answer itself carries it


def test_login_prompts_without_echo_on_a_terminal(tmp_path: Path) -> None:
    import pty
    import select
    import time

    from tests.conftest import helper_executable

    pid, fd = pty.fork()
    if pid == 0:  # the child: the helper on a terminal, as a person runs it
        os.execv(helper_executable(), [helper_executable(), "login", "tty.example", "-u", "person", "--no-verify"])  # noqa: S606
    seen = b""
    deadline = time.monotonic() + 20
    while b"Password:" not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            seen += os.read(fd, 1024)
    os.write(fd, b"typed-secret\n")
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b"typed-secret" not in seen  # no echo
    assert b"Stored credentials for tty.example (user person)." in seen
    assert call("get", "tty.example").json()["Secret"] == "typed-secret"
