"""The `exec` backend: a user's command prints a secret or JSON; bounded, cached by expiry or ttl."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.conftest import NOT_FOUND, call, run_helper


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "creds.sh"
    counter = tmp_path / "calls"
    path.write_text(f"#!/bin/sh\necho x >> '{counter}'\n{body}\n")
    path.chmod(0o755)
    return path


def calls(tmp_path: Path) -> int:
    counter = tmp_path / "calls"
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def test_plain_secret_with_a_route_username_and_ttl(routes: Path, tmp_path: Path) -> None:
    cmd = script(tmp_path, 'read key; echo "secret-for-$key-$SWITCHBOARD_REGISTRY"')
    routes.write_text(f'[[route]]\nmatch = "*.corp.example"\nbackend = "exec"\ncommand = ["{cmd}"]\n'
                      'username = "robot"\nttl = 300\n')
    got = call("get", "eu.corp.example").json()
    assert got == {"ServerURL": "eu.corp.example", "Username": "robot",
                   "Secret": "secret-for-eu.corp.example-eu.corp.example"}
    assert call("get", "eu.corp.example").json()["Secret"] == got["Secret"]
    assert calls(tmp_path) == 1  # the second answer came from the cache
    call("get", "us.corp.example")
    assert calls(tmp_path) == 2  # one cache entry per registry


def test_json_answer_with_expiry(routes: Path, tmp_path: Path) -> None:
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    cmd = script(tmp_path, f'echo \'{{"Username": "u", "Secret": "s", "ExpiresAt": "{expires}"}}\'')
    routes.write_text(f'[[route]]\nmatch = "corp.example"\nbackend = "exec"\ncommand = ["{cmd}"]\n')
    assert call("get", "corp.example").json()["Username"] == "u"
    assert call("get", "corp.example").json()["Secret"] == "s"
    assert calls(tmp_path) == 1


def test_no_ttl_and_no_expiry_means_no_caching(routes: Path, tmp_path: Path) -> None:
    cmd = script(tmp_path, 'echo \'{"Username": "u", "Secret": "s"}\'')
    routes.write_text(f'[[route]]\nmatch = "corp.example"\nbackend = "exec"\ncommand = ["{cmd}"]\n')
    call("get", "corp.example")
    call("get", "corp.example")
    assert calls(tmp_path) == 2


def test_failures_are_a_quiet_not_found_and_a_hang_is_cut_off(routes: Path, tmp_path: Path) -> None:
    for body in ("exit 3", "true", "echo '{broken'", 'echo \'{"Secret": 5}\'', "sleep 30"):
        cmd = script(tmp_path, body)
        routes.write_text(f'[[route]]\nmatch = "corp.example"\nbackend = "exec"\ncommand = ["{cmd}"]\n'
                          'username = "u"\ntimeout = 1\n')
        started = time.monotonic()
        result = run_helper("get", "corp.example", env=dict(os.environ))
        assert (result.code, result.out, result.err) == (1, NOT_FOUND + "\n", ""), body
        assert time.monotonic() - started < 8


def test_the_key_reaches_the_command_on_stdin_never_in_argv(routes: Path, tmp_path: Path) -> None:
    cmd = script(tmp_path, f'cat /proc/$$/cmdline | tr "\\0" " " > "{tmp_path}/argv"; echo s')
    routes.write_text(f'[[route]]\nmatch = "corp.example"\nbackend = "exec"\ncommand = ["{cmd}", "--flag"]\n'
                      'username = "u"\n')
    assert call("get", "corp.example").json()["Secret"] == "s"
    assert (tmp_path / "argv").read_text().split()[-1] == "--flag"


def test_store_on_a_token_routed_host_is_kept_as_the_fallback(tmp_path: Path) -> None:
    """`aws ecr get-login-password | docker login ...`: nothing is refused or lost."""
    host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    payload = json.dumps({"ServerURL": host, "Username": "AWS", "Secret": "pasted-password"})
    assert call("store", payload).code == 0  # never "not implemented"
    env = dict(os.environ, AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    got = run_helper("get", host, env=env)  # no AWS identity here: the stored password answers
    assert json.loads(got.out)["Secret"] == "pasted-password"
    assert call("erase", host).code == 0
    assert run_helper("get", host, env=env).out == NOT_FOUND + "\n"
