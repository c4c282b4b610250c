"""The routes file: a malformed one is reported in one line naming the file, the line and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import call


@pytest.mark.parametrize("text, expected", [
    ('[[route]]\nmatch = "a.io"\nbackend = "ecrr"\n',
     ":1: route 1: backend 'ecrr' is not one of store, none, env"),
    ('[store]\nkind = "file"\n\n[[route]]\nmatch = "a.io"\nbackend = "env"\n',
     ":4: route 1: an env route needs secret_env and username (or username_env), or a preset"),
    ('[[route]]\nmatch = "a.io"\nbackend = "store"\n\n[[route]]\nmatch = "https://b.io"\nbackend = "store"\n',
     ":5: route 2: pattern 'https://b.io' must be a host"),
    ('[[route]]\nbackend = "store"\n', ":1: route 1: has no 'match'; add match ="),
    ('[[route]]\nmatch = "a.io"\nbackend = "env"\npreset = "ngc"\nprofile = "x"\n',
     ":1: route 1: unknown parameter 'profile' for backend 'env' "
     "(allowed: preset, secret_env, username, username_env)"),
    ('[[route]]\nmatch = "a.io"\nbackend = "helper"\nhelper = "pass"\ntimeout = -1\n',
     ":1: route 1: 'timeout' must be a positive number of seconds"),
    ('[[route]\nmatch = "a.io"\n', ": not valid TOML: "),
    ('[store]\nkind = "vault"\n', ":1: [store] kind 'vault' is not one of auto, keyring, file"),
    ('routes = 1\n', ": unknown top-level key 'routes'; only [store] and [[route]] are allowed"),
])
def test_a_malformed_routes_file_is_one_line_naming_file_line_and_fix(
        routes: Path, text: str, expected: str) -> None:
    routes.write_text(text)
    for action, data in (("get", "a.io"), ("store", '{"ServerURL":"a.io","Username":"u","Secret":"s"}'),
                         ("erase", "a.io")):
        result = call(action, data)
        assert result.code == 1
        assert result.out.startswith(str(routes)) and expected in result.out, result.out
        assert result.out.count("\n") == 1


def test_toml_syntax_errors_carry_the_line(routes: Path) -> None:
    routes.write_text('[[route]]\nmatch = "a.io"\nbackend = store\n')
    assert "line 3" in call("get", "a.io").out


def test_list_still_works_with_a_malformed_routes_file(routes: Path) -> None:
    routes.write_text("this is not toml")
    result = call("list")
    assert (result.code, result.out) == (0, "{}\n")


def test_an_unreadable_routes_file_says_how_to_fix_it(routes: Path) -> None:
    routes.unlink()  # the fixture made an empty file
    routes.mkdir()
    result = call("get", "a.io")
    assert result.code == 1 and str(routes) in result.out and result.out.count("\n") == 1


def test_non_utf8_routes_file_names_the_line(routes: Path) -> None:
    routes.write_bytes(b'[[route]]\nmatch = "\xff"\n')
    assert call("get", "a.io").out.strip() == f"{routes}:2: not UTF-8 text; save the routes file as UTF-8"


def test_store_kind_in_the_routes_file_and_the_environment_override(
        routes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    routes.write_text('[store]\nkind = "keyring"\n')
    result = call("store", '{"ServerURL":"a.io","Username":"u","Secret":"s"}')
    assert result.code == 1 and "no keychain is available" in result.out
    monkeypatch.setenv("SWITCHBOARD_STORE", "file")
    assert call("store", '{"ServerURL":"a.io","Username":"u","Secret":"s"}').code == 0
    monkeypatch.setenv("SWITCHBOARD_STORE", "vault")
    assert call("get", "a.io").out == "SWITCHBOARD_STORE='vault' is not one of auto, keyring, file\n"
