"""The wire protocol, in-process: the cases of docker-credential-helpers' credentials_test.go and
client_test.go, plus PROTOCOL.md §7's edge cases."""

from __future__ import annotations

import json

import pytest

from tests.conftest import NOT_FOUND, call

KEY = "registry.example.test:5000"


def store(key: str = KEY, user: str = "foo", secret: str = "bar") -> None:
    result = call("store", json.dumps({"ServerURL": key, "Username": user, "Secret": secret}))
    assert (result.code, result.out) == (0, "")


def test_store_then_get_returns_the_credentials_and_echoes_the_key() -> None:
    store()
    result = call("get", KEY)
    assert result.code == 0
    assert result.json() == {"ServerURL": KEY, "Username": "foo", "Secret": "bar"}
    assert result.out.endswith("}\n") and result.out.count("\n") == 1


def test_get_of_a_missing_key_is_the_exact_not_found_line() -> None:
    result = call("get", "https://never-stored.example.test")
    assert (result.code, result.out) == (1, NOT_FOUND + "\n")


@pytest.mark.parametrize("data", ["", "   ", "\n", "\r\n", " \t\n"])
def test_get_and_erase_of_empty_input_say_no_server_url(data: str) -> None:
    for action in ("get", "erase"):
        result = call(action, data)
        assert (result.code, result.out) == (1, "no credentials server URL\n")


def test_store_without_server_url_or_username_uses_the_reference_messages() -> None:
    assert call("store", '{"Username":"u","Secret":"s"}').out == "no credentials server URL\n"
    assert call("store", '{"ServerURL":"","Username":"u","Secret":"s"}').out == "no credentials server URL\n"
    missing_user = call("store", '{"ServerURL":"h.example","Secret":"s"}')
    assert (missing_user.code, missing_user.out) == (1, "no credentials username\n")


def test_store_of_empty_input_answers_eof_like_the_reference() -> None:
    assert (call("store", "").code, call("store", "").out) == (1, "EOF\n")


def test_store_accepts_an_empty_secret() -> None:
    store(secret="")
    assert call("get", KEY).json() == {"ServerURL": KEY, "Username": "foo", "Secret": ""}


def test_go_style_payload_with_html_escapes_and_newline_round_trips() -> None:
    payload = ('{"ServerURL":"127.0.0.1:5077","Username":"\\u003ctoken\\u003e",'
               '"Secret":"p\\u003ca\\u003e\\u0026\\"\\\\ü"}\n')
    assert call("store", payload).code == 0
    got = call("get", "127.0.0.1:5077").json()
    assert got == {"ServerURL": "127.0.0.1:5077", "Username": "<token>", "Secret": 'p<a>&"\\ü'}


def test_docker_py_style_payload_round_trips() -> None:
    payload = '{"ServerURL": "https://index.docker.io/v1/", "Username": "<token>", "Secret": "p<\\u00fc>"}'
    assert call("store", payload).code == 0
    assert call("get", "https://index.docker.io/v1/").json()["Secret"] == "p<ü>"


def test_store_field_names_match_case_insensitively_like_go() -> None:
    assert call("store", '{"serverurl":"h.example","USERNAME":"u","secret":"s"}').code == 0
    assert call("get", "h.example").json()["Username"] == "u"


def test_secrets_of_100_kb_and_more_round_trip() -> None:
    secret = "é" + "x" * 150_000
    store(secret=secret)
    assert call("get", KEY).json()["Secret"] == secret


def test_get_trims_whitespace_and_crlf() -> None:
    store()
    assert call("get", f"  {KEY}\r\n").json()["ServerURL"] == KEY


def test_erase_then_get_is_not_found_and_erasing_again_succeeds() -> None:
    store()
    assert call("erase", KEY).code == 0
    assert call("get", KEY).out == NOT_FOUND + "\n"
    assert (call("erase", KEY).code, call("erase", KEY).out) == (0, "")


def test_list_is_an_empty_object_when_nothing_is_stored() -> None:
    result = call("list")
    assert (result.code, result.out) == (0, "{}\n")


def test_list_maps_keys_to_usernames_and_never_reads_stdin() -> None:
    store("a.example", "ua")
    store("https://index.docker.io/v1/", "<token>")

    class Exploding:
        def read(self) -> bytes:
            raise AssertionError("list read stdin")

    import io

    from helper import cli

    out = io.StringIO()
    assert cli.main(["list"], Exploding(), out) == 0  # type: ignore[arg-type]
    assert json.loads(out.getvalue()) == {"a.example": "ua", "https://index.docker.io/v1/": "<token>"}


def test_list_keys_are_exactly_the_keys_get_accepts() -> None:
    for key in ("h1.example", "http://h2.example", "https://index.docker.io/v1/access-token"):
        store(key, "u-" + key)
    listed = call("list").json()
    assert isinstance(listed, dict)
    for key, user in listed.items():
        assert call("get", key).json()["Username"] == user


@pytest.mark.parametrize("argv", [["-v"], ["--version"], ["version"]])
def test_version_exits_zero(argv: list[str]) -> None:
    result = call(argv)
    assert result.code == 0 and result.out.startswith("docker-credential-switchboard (")


@pytest.mark.parametrize("argv", [["-h"], ["--help"]])
def test_help_exits_zero_with_usage(argv: list[str]) -> None:
    result = call(argv)
    assert result.code == 0
    assert result.out.startswith("Usage: docker-credential-switchboard <store|get|erase|list|version>")


def test_unknown_action_is_one_line_and_exit_1() -> None:
    result = call("fetch")
    assert (result.code, result.out) == (1, "docker-credential-switchboard: unknown action: fetch\n")


@pytest.mark.parametrize("argv", [[], ["get", "extra"], ["list", "x"]])
def test_wrong_argument_count_prints_usage_and_exits_1(argv: list[str]) -> None:
    result = call(argv)
    assert result.code == 1 and result.out.startswith("Usage:") and result.out.count("\n") == 1


@pytest.mark.parametrize("payload, message", [
    ("[]", "invalid credentials JSON: expected an object, not list"),
    ('{"ServerURL": 5, "Username": "u"}', "invalid credentials JSON: ServerURL must be a string, not int"),
    ('{"ServerURL": "h", "Username": "u", "Secret": null, "x": 1} trailing',
     "invalid credentials JSON: extra data after the object"),
    ("{not json", 'invalid credentials JSON: expected {"ServerURL": ..., "Username": ..., "Secret": ...}'),
    ("[" * 100_000, 'invalid credentials JSON: expected {"ServerURL": ..., "Username": ..., "Secret": ...}'),
    ('{"ServerURL": "h\\u0000x", "Username": "u"}', "the server URL must be a single line without NUL bytes"),
    ('{"ServerURL": "h", "Username": "\\ud800"}',
     "invalid credentials JSON: Username holds an unpaired \\u surrogate"),
])
def test_bad_store_payloads_get_one_clear_line(payload: str, message: str) -> None:
    result = call("store", payload)
    assert (result.code, result.out) == (1, message + "\n")


def test_invalid_utf8_and_bom() -> None:
    assert call("get", b"\xff\xfe").out == "input is not valid UTF-8\n"
    store()
    assert call("get", b"\xef\xbb\xbf" + KEY.encode()).json()["Username"] == "foo"


def test_bad_input_never_loses_what_was_stored() -> None:
    store()
    for payload in (b"", b"\xff", b"{", b"[]", b'{"ServerURL":"x"}', b"\0" * 1000):
        assert call("store", payload).code == 1
    assert call("get", KEY).json()["Secret"] == "bar"
