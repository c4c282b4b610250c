"""Hostile input on every action's stdin and in the routes file, mostly in-process with Hypothesis.

For `get`, `erase`, `store`, `list`, `login --password-stdin` and the management commands' HOST, and for
the routes file: random bytes, invalid UTF-8, a BOM, NUL bytes, `\\r\\n`, 10 MB and 17 MB of input,
deeply nested JSON and TOML, JSON of the wrong types. Whatever arrives:

* the exit status is 0 or 1; an error is exactly one line on stdout;
* never a traceback (stdout or stderr; the in-process runs use SWITCHBOARD_DEBUG=1, which prints one for
  any internal error) and never the catch-all "internal error" line;
* never a hang (list never reads stdin: a pipe nobody closes does not stall it);
* nothing stored before is lost: a sentinel stored first reads back after every example.

In-process through conftest's `call()` (helper.cli.main) for speed; a smaller set through the real
executable. Hypothesis example budgets are in tests/soak.py (`SWITCHBOARD_SOAK` raises them).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from helper import hosts
from helper.config import PARAMS
from tests.conftest import NOT_FOUND, Result, call, helper_executable, run_helper
from tests.soak import examples, figures

SENTINEL = "sentinel.hostile-input.example"
SENTINEL_SECRET = "sentinel-s3cret-\u00fc<&>"
PROBE = "probe.hostile-input.example"
LOGIN = ["login", "login.hostile-input.example", "-u", "me", "--password-stdin", "--no-verify"]
BOM = b"\xef\xbb\xbf"
MB = 1024 * 1024

counts: dict[str, int] = {}


@pytest.fixture(autouse=True)
def sentinel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_DEBUG", "1")  # an internal error would print its traceback: caught below
    stored = call("store", json.dumps({"ServerURL": SENTINEL, "Username": "keeper", "Secret": SENTINEL_SECRET}))
    assert stored.code == 0


def run(action: str | list[str], data: bytes) -> Result:
    """call(), with stderr captured."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        result = call(action, data)
    result.err = err.getvalue()
    name = f"{action if isinstance(action, str) else action[0]}_exit_{result.code}"
    counts[name] = counts.get(name, 0) + 1
    return result


def check(result: Result, action: str) -> None:
    """The rules every answer follows, whatever the input."""
    assert result.code in (0, 1), result.out
    assert "Traceback" not in result.out and "Traceback" not in result.err, result.err
    assert "internal error" not in result.out, result.out
    if result.code == 1:
        assert result.out.endswith("\n") and result.out.count("\n") == 1 and result.out.strip(), repr(result.out)
        return
    if action == "get":
        assert result.out.count("\n") == 1
        doc = json.loads(result.out)
        assert set(doc) == {"ServerURL", "Username", "Secret"}
    elif action in ("store", "erase"):
        assert result.out == ""
    elif action == "list":
        listed = json.loads(result.out)
        assert isinstance(listed, dict) and all(isinstance(v, str) for v in listed.values())


def erases_sentinel(key: str) -> bool:
    """Whether erasing `key` legitimately forgets the sentinel (the same registry in another spelling)."""
    parsed, sentinel = hosts.parse(key.strip()), hosts.parse(SENTINEL)
    return parsed.raw == SENTINEL or (parsed.canonical is not None and parsed.canonical == sentinel.canonical)


def restore_sentinel() -> None:
    stored = call("store", json.dumps({"ServerURL": SENTINEL, "Username": "keeper", "Secret": SENTINEL_SECRET}))
    assert stored.code == 0


def sentinel_intact() -> None:
    got = call("get", SENTINEL)
    assert got.code == 0, got.out
    assert got.json() == {"ServerURL": SENTINEL, "Username": "keeper", "Secret": SENTINEL_SECRET}


# -- strategies -----------------------------------------------------------------------------------------

INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf",
                b"\x80", b"\xe2\x82"]
PREFIXES = [b"", BOM, b" ", b"\n", b"\r\n", b"\x00", b"\t", BOM + BOM]
SUFFIXES = [b"", b"\n", b"\r\n", b"\x00", b"\xff", b" \t\r\n", b"\n\n"]
HOSTS = ["registry.example", "https://index.docker.io/v1/", "docker.io", "a.azurecr.io@evil.example",
         "https://a.azurecr.io@evil.example", "127.0.0.1:5000", "[::1]:5000", "ghcr.io/org/img",
         "123456789012.dkr.ecr.us-east-1.amazonaws.com", "\u0430zurecr.io", "host:99999", "https://", "//", "@",
         "a b", "x" * 300, SENTINEL.upper(), "https://index.docker.io/v1/access-token"]
LONE_SURROGATES = ["\ud800", "a\udfffb", "\udbff"]


def framed(core: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.tuples(st.sampled_from(PREFIXES), core, st.sampled_from(SUFFIXES)).map(lambda t: t[0] + t[1] + t[2])


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                         st.text(max_size=40), st.sampled_from(HOSTS + LONE_SURROGATES))
json_values = st.recursive(
    json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4)),
    max_leaves=12)
field_names = st.one_of(st.sampled_from(["ServerURL", "serverurl", "SERVERURL", "serverURL", "Username", "username",
                                         "USERNAME", "Secret", "secret", "SeCrEt", "Extra", ""]), st.text(max_size=8))
store_docs = st.one_of(
    st.dictionaries(field_names, json_values, max_size=6),
    st.fixed_dictionaries({"ServerURL": st.one_of(st.sampled_from(HOSTS), st.text(max_size=60)),
                           "Username": st.one_of(st.text(max_size=20), json_values),
                           "Secret": st.one_of(st.text(max_size=200), json_values)}),
)


def encode_json(doc: object, ascii_only: bool, compact: bool, html: bool) -> bytes:
    text = json.dumps(doc, ensure_ascii=ascii_only, separators=(",", ":") if compact else None)
    if html:  # Go's encoder escapes <, > and &
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.encode("utf-8", "surrogatepass")


valid_store_docs = st.builds(  # well-formed payloads in every casing, with awkward values: they must round-trip
    lambda names, server, user, secret: {names[0]: server, names[1]: user, names[2]: secret},
    st.tuples(st.sampled_from(["ServerURL", "serverurl", "SERVERURL", "serverUrl"]),
              st.sampled_from(["Username", "username", "USERNAME"]), st.sampled_from(["Secret", "secret", "SECRET"])),
    st.one_of(st.sampled_from(HOSTS), st.text(min_size=1, max_size=60)),
    st.text(min_size=1, max_size=30),
    st.one_of(st.text(max_size=300), st.sampled_from(["<token>", 'p<a>&"\\\u00fc'])),
)
json_payloads = st.builds(encode_json, st.one_of(store_docs, json_values), st.booleans(), st.booleans(), st.booleans())
deep_json = st.tuples(st.integers(1, 200_000), st.sampled_from([b"[", b'{"a":', b'{"ServerURL":"x","Username":"u",'
                                                                  b'"Secret":"s","x":['])).map(lambda t: t[1] * t[0])
stdin_data = st.one_of(
    st.binary(max_size=2048),
    framed(st.text(max_size=300).map(lambda s: s.encode("utf-8"))),
    framed(st.sampled_from(INVALID_UTF8)),
    framed(json_payloads),
    st.builds(encode_json, valid_store_docs, st.booleans(), st.booleans(), st.booleans()).flatmap(
        lambda body: st.sampled_from([b"", BOM, b" \r\n"]).map(lambda pre: pre + body)),
    framed(st.sampled_from(HOSTS).map(str.encode)),
    deep_json,
    st.tuples(st.text(max_size=50), st.sampled_from(INVALID_UTF8), st.text(max_size=50)).map(
        lambda t: t[0].encode() + t[1] + t[2].encode()),
)


# -- the protocol actions and login, in-process ----------------------------------------------------------

@examples(400)
@given(stdin_data)
@example(b"")
@example(BOM)
@example(b"\x00")
@example(SENTINEL.encode() + b"\x00")
@example(b"registry.example\r\n")
@example(b"a\nb")
@example(b"[" * 100_000)
def test_get_and_erase_take_any_stdin(data: bytes) -> None:
    for action in ("get", "erase"):
        result = run(action, data)
        check(result, action)
    if result.code == 0 and erases_sentinel(data.removeprefix(BOM).decode("utf-8")):
        assert call("get", SENTINEL).out == NOT_FOUND + "\n"  # erased as asked: every spelling is forgotten
        restore_sentinel()
    sentinel_intact()


@examples(600)
@given(stdin_data)
@example(b"")
@example(b"null")
@example(b"[]")
@example(b'{"ServerURL": 5, "Username": "u", "Secret": "s"}')
@example(b'{"ServerURL": "x", "Username": ["u"], "Secret": "s"}')
@example(b'{"ServerURL": "x", "Username": "u", "Secret": {"a": 1}}')
@example(b'{"ServerURL": "x", "Username": "u", "Secret": "\\ud800"}')
@example(b'{"ServerURL": "x\\u0000y", "Username": "u", "Secret": "s"}')
@example(b'{"ServerURL": "x", "Username": "u", "Secret": NaN}')
@example(b'{"ServerURL": "x", "Username": "u", "Secret": "s"} trailing')
@example(b'{"ServerURL": "x", "Username": "u", "Secret": "s"}{"ServerURL": "y"}')
@example(b'{"ServerURL": "x", "serverurl": "y", "Username": "u", "Secret": "s"}')
@example(BOM + b'{"ServerURL":"x","Username":"u","Secret":"s"}\r\n')
@example(b'{"ServerURL":"x",\r\n"Username":"u",\r\n"Secret":"s"}')
def test_store_takes_any_stdin(data: bytes) -> None:
    result = run("store", data)
    check(result, "store")
    if result.code == 0:  # what was acknowledged reads back exactly
        doc, _ = json.JSONDecoder().raw_decode(data.removeprefix(BOM).decode("utf-8").lstrip())
        server = field(doc, "ServerURL").strip()
        got = call("get", server)
        assert got.code == 0, got.out
        assert got.json()["Username"] == field(doc, "Username")
        assert got.json()["Secret"] == field(doc, "Secret")
        if server == SENTINEL:
            restore_sentinel()
    sentinel_intact()


def field(doc: dict[str, str], name: str) -> str:
    """A field as Go's decoder finds it: the exact name, else the first case-insensitive match; null is empty."""
    value = doc[name] if name in doc else next((v for k, v in doc.items() if k.lower() == name.lower()), None)
    return "" if value is None else value


@examples(100)
@given(stdin_data)
def test_list_never_reads_stdin(data: bytes) -> None:
    result = run("list", data)
    check(result, "list")
    assert result.code == 0 and result.json()[SENTINEL] == "keeper"


@examples(300)
@given(stdin_data)
@example(b"")
@example(b"\n")
@example(b"pw\r\n")
@example(BOM + b"pw")
@example(b"p\x00w")
@example(b"\xff")
def test_login_password_stdin_takes_any_stdin(data: bytes) -> None:
    result = run(LOGIN, data)
    check(result, "login")
    if result.code == 0:
        assert result.out == "Stored credentials for login.hostile-input.example (user me).\n"
        assert call("get", LOGIN[1]).json()["Secret"] == data.decode("utf-8").rstrip("\r\n")
    sentinel_intact()


@examples(300)
@given(st.sampled_from(["resolve", "logout", "login"]), st.one_of(st.text(max_size=80), st.sampled_from(HOSTS)))
@example("resolve", "")
@example("resolve", "-")
@example("resolve", "--help")
@example("logout", "\x00")
@example("login", "login-host.example\n")
@example("login", "a\nb.example")
@example("logout", SENTINEL.upper())
def test_management_commands_take_any_host(command: str, host: str) -> None:
    argv = [command, host] if command != "login" else [command, host, "-u", "me", "--password-stdin", "--no-verify"]
    result = run(argv, b"pw")
    check(result, command)
    if command == "logout" and result.code == 0 and erases_sentinel(host):
        restore_sentinel()
    sentinel_intact()


@pytest.mark.parametrize("host", ["a\nb.example", "a\rb.example", "a.example\n\nb"])
def test_login_never_stores_a_key_that_list_shows_and_get_refuses(host: str) -> None:
    check(run(["login", host, "-u", "me", "--password-stdin", "--no-verify"], b"pw"), "login")
    for key in call("list").json():
        got = call("get", key)
        assert got.code == 0, (key, got.out)


# -- big inputs ------------------------------------------------------------------------------------------

BIG_INPUTS = {
    "10 MB of random bytes": lambda: os.urandom(10 * MB),
    "10 MB key": lambda: b"a" * (10 * MB),
    "10 MB of whitespace": lambda: b" \r\n\t" * (10 * MB // 4),
    "10 MB store payload": lambda: json.dumps({"ServerURL": "big.example", "Username": "u",
                                               "Secret": "s" * (10 * MB)}).encode(),
    "10 MB of nested JSON": lambda: b"[" * (10 * MB),
    "17 MB (over the 16 MiB cap)": lambda: b"b" * (17 * MB),
    "10 MB with NUL bytes": lambda: b"\x00" * (10 * MB),
}


@pytest.mark.parametrize("name", list(BIG_INPUTS))
def test_big_inputs_on_every_action(name: str) -> None:
    data = BIG_INPUTS[name]()
    for action in ("get", "erase", "store", "list", LOGIN):
        started = time.monotonic()
        result = run(action, data)
        check(result, action if isinstance(action, str) else "login")
        assert time.monotonic() - started < 30
        if name.startswith("17 MB") and action in ("get", "erase", "store"):
            assert result.out == "input is larger than 16 MiB\n"
    if name == "10 MB store payload":
        assert call("get", "big.example").json()["Secret"] == "s" * (10 * MB)
    sentinel_intact()


# -- the routes file ---------------------------------------------------------------------------------------

SAFE_COMMANDS = [["/bin/false"], ["/bin/true"], ["/nonexistent/command"], [sys.executable, "-c", "print('s')"],
                 [sys.executable, "-c", "print('{\"Secret\": 5}')"], []]
SAFE_HELPERS = ["/bin/false", "nonexistent-helper-xyz", "/nonexistent/helper", ""]
SAFE_FILES = ["/nonexistent/file", "/dev/null", "relative/file", ""]
PATTERNS = ["probe.hostile-input.example", "*.hostile-input.example", "*", "*.*", "probe.hostile-input.example:5000",
            "PROBE.example", "", "a..b", "*-input.example", "**.example", "https://x.example", "x.example/p",
            "u@x.example", "x.example:0", "x.example:99999", "\u0430.example", "*.azurecr.io", "gcr.io"]
finite = st.one_of(st.integers(-10, 10**6), st.floats(-10, 1e6, allow_nan=False, allow_infinity=False))
toml_scalars = st.one_of(st.booleans(), finite, st.text(max_size=20), st.sampled_from(PATTERNS))


def toml_value(name: str) -> st.SearchStrategy[object]:
    if name == "command":
        return st.one_of(st.sampled_from(SAFE_COMMANDS), toml_scalars.filter(lambda v: not isinstance(v, str)))
    if name == "helper":
        return st.sampled_from(SAFE_HELPERS)
    if name.endswith("_file") or name == "dockerconfigjson":
        return st.sampled_from(SAFE_FILES)
    if name == "match":
        return st.one_of(st.sampled_from(PATTERNS), st.lists(st.sampled_from(PATTERNS), max_size=3),
                         toml_scalars.filter(lambda v: not isinstance(v, str)))
    if name == "backend":
        return st.one_of(st.sampled_from([*PARAMS, "bogus", ""]), finite)
    return st.one_of(toml_scalars, st.lists(toml_scalars, max_size=3))


PARAM_NAMES = sorted({name for names in PARAMS.values() for name in names} | {"match", "backend", "extra"})
route_tables = st.lists(st.sampled_from(PARAM_NAMES), max_size=6, unique=True).flatmap(
    lambda names: st.fixed_dictionaries({name: toml_value(name) for name in names}))


def toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def toml_document(store_kind: object, routes: list[dict[str, object]], top: dict[str, object]) -> str:
    lines = [f"{k.replace(' ', '_') or 'x'} = {toml_literal(v)}" for k, v in top.items()]
    if store_kind is not None:
        lines += ["[store]", f"kind = {toml_literal(store_kind)}"]
    for table in routes:
        lines.append("[[route]]")
        lines += [f"{k} = {toml_literal(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


VALID_PARAMS: dict[str, st.SearchStrategy[dict[str, object]]] = {
    "store": st.just({}),
    "none": st.just({}),
    "env": st.one_of(st.fixed_dictionaries({"preset": st.sampled_from(["ngc", "ghcr", "dockerhub", "gitlab", "quay"])}),
                     st.fixed_dictionaries({"secret_env": st.sampled_from(["HOSTILE_SECRET", "PATH", "NOPE"]),
                                            "username": st.text(min_size=1, max_size=10)})),
    "file": st.one_of(st.fixed_dictionaries({"dockerconfigjson": st.sampled_from(SAFE_FILES[:3])}),
                      st.fixed_dictionaries({"secret_file": st.sampled_from(SAFE_FILES[:3]),
                                             "username": st.text(min_size=1, max_size=10)})),
    "helper": st.fixed_dictionaries({"helper": st.sampled_from(SAFE_HELPERS[:3])},
                                    optional={"timeout": st.floats(0.5, 5)}),
    "exec": st.fixed_dictionaries({"command": st.sampled_from(SAFE_COMMANDS[:5]), "username": st.just("u")},
                                  optional={"ttl": st.floats(0.001, 1e6), "timeout": st.floats(0.5, 5)}),
    "ecr": st.fixed_dictionaries({}, optional={"region": st.sampled_from(["us-east-1", "x"]),
                                               "registry": st.sampled_from([PROBE, "123456789012.dkr.ecr.us-east-1."
                                                                                   "amazonaws.com"])}),
    "gcp": st.just({}),
    "acr": st.fixed_dictionaries({}, optional={"tenant": st.sampled_from(["t", "../x", "a b"])}),
}
valid_routes = st.sampled_from(sorted(VALID_PARAMS)).flatmap(lambda backend: st.tuples(
    st.sampled_from(PATTERNS[:4] + PATTERNS[8:9]), VALID_PARAMS[backend]).map(
    lambda t: {"match": t[0], "backend": backend, **t[1]}))
valid_files = st.builds(toml_document, st.sampled_from([None, "auto", "file"]), st.lists(valid_routes, max_size=4),
                        st.just({})).map(lambda text: text.encode("utf-8"))
toml_files = st.builds(
    toml_document,
    st.one_of(st.none(), st.sampled_from(["auto", "file", "keyring", "bogus", ""]), finite),
    st.lists(route_tables, max_size=4),
    st.dictionaries(st.sampled_from(["store", "route", "extra", "Route"]), toml_scalars, max_size=1),
).map(lambda text: text.encode("utf-8"))
mutations = st.tuples(toml_files, st.integers(0, 10_000), st.sampled_from([b"", b"\x00", b"\xff", b"[", b'"', b"\r\n",
                                                                          b"=", BOM])).map(
    lambda t: t[0][: t[1]] + t[2] + t[0][t[1]:])
routes_data = st.one_of(valid_files, valid_files, toml_files,
                        toml_files.map(lambda b: BOM + b.replace(b"\n", b"\r\n")), mutations,
                        st.binary(max_size=1024), framed(st.text(max_size=200).map(str.encode)))


def every_action_under(routes: Path, data: bytes) -> list[Result]:
    routes.write_bytes(data)
    results = []
    for action, stdin in (("get", PROBE.encode()), ("erase", PROBE.encode()),
                          ("store", json.dumps({"ServerURL": PROBE, "Username": "u", "Secret": "p"}).encode()),
                          ("list", b""), (["resolve", PROBE], b""), (["routes"], b"")):
        result = run(action, stdin)
        check(result, action if isinstance(action, str) else action[0])
        results.append(result)
    assert results[3].code == 0, "list must answer whatever the routes file holds"
    routes.write_bytes(b"")  # issue 11.7b: a routes file SWITCHBOARD_CONFIG names must exist (empty: no routes)
    sentinel_intact()
    return results


@examples(300)
@given(routes_data)
@example(b"")
@example(BOM)
@example(b"\x00")
@example(b'[[route]]\r\nmatch = "probe.hostile-input.example"\r\nbackend = "none"\r\n')
@example(b'[[route]]\nmatch = "probe.hostile-input.example"\nbackend = "helper"\nhelper = "/bin/false"\n')
@example(b'[[route]]\nmatch = "probe.hostile-input.example"\nbackend = "exec"\ncommand = ["/bin/false"]\n'
         b'username = "u"\n')
@example(b'[store]\nkind = "keyring"\n')
@example(b'route = 5\n')
@example(b'[route]\nmatch = "x"\n')
@example(b'[[route]]\nmatch = []\nbackend = "store"\n')
@example(b'[[route]]\nmatch = "*"\nbackend = "env"\nsecret_env = "NOPE"\nusername = "u"\ntimeout = -1\n')
@example(b"a." * 2000 + b"a = 1\n")
def test_any_routes_file_gives_one_line_errors_and_list_still_answers(routes: Path, data: bytes) -> None:
    every_action_under(routes, data)


BIG_ROUTES = {
    "10 MB of comments": lambda: b"# comment\n" * (MB),
    "10 MB of random bytes": lambda: os.urandom(10 * MB),
    "10 MB string": lambda: b'x = "' + b"a" * (10 * MB) + b'"\n',
    "10 000 routes": lambda: b'[[route]]\nmatch = "r.example"\nbackend = "store"\n' * 10_000,
}


@pytest.mark.parametrize("name", list(BIG_ROUTES))
def test_big_routes_files(routes: Path, name: str) -> None:
    started = time.monotonic()
    every_action_under(routes, BIG_ROUTES[name]())
    assert time.monotonic() - started < 60


def test_a_folder_as_routes_file(routes: Path) -> None:
    routes.unlink()  # the fixture made an empty file
    routes.mkdir()
    result = run("get", PROBE.encode())
    check(result, "get")
    assert result.out.startswith(f"{routes}: ")
    assert run("list", b"").code == 0


@pytest.mark.parametrize("nesting", [b"a = " + b"[" * 1000 + b"]" * 1000,
                                     b"a = " + b"{b = " * 1000 + b"1" + b"}" * 1000])
def test_a_deeply_nested_routes_file_is_a_config_error_and_list_still_answers(routes: Path, nesting: bytes) -> None:
    routes.write_bytes(nesting + b"\n")
    result = run("get", PROBE.encode())
    check(result, "get")
    assert result.out.startswith(f"{routes}:")
    listed = run("list", b"")
    check(listed, "list")
    assert listed.code == 0


@pytest.mark.parametrize("route", [
    'backend = "helper"\nhelper = "/bin/false"\ntimeout = nan',
    'backend = "helper"\nhelper = "/bin/false"\ntimeout = inf',
    'backend = "helper"\nhelper = "/bin/false"\ntimeout = 1e308',
    'backend = "exec"\ncommand = ["/bin/echo", "s"]\nusername = "u"\nttl = nan',
    'backend = "exec"\ncommand = ["/bin/echo", "s"]\nusername = "u"\ntimeout = nan',
])
def test_non_finite_route_numbers_are_rejected_with_the_file_and_line(routes: Path, route: str) -> None:
    routes.write_text(f'[[route]]\nmatch = "{PROBE}"\n{route}\n')
    for action in ("get", ["routes"]):
        result = run(action, PROBE.encode())
        check(result, action if isinstance(action, str) else "routes")
        assert result.code == 1 and result.out.startswith(f"{routes}:1: route 1:"), result.out


# -- through the real executable ---------------------------------------------------------------------------

PROCESS_INPUTS = {
    "random bytes": os.urandom(4096),
    "invalid UTF-8": b"registry.example\xff",
    "BOM": BOM + b"registry.example",
    "NUL": b"registry\x00.example",
    "CRLF": b"registry.example\r\n",
    "deep JSON": b"[" * 1_000_000,
    "wrong types": b'{"ServerURL": ["x"], "Username": {"u": 1}, "Secret": 5}',
    "10 MB": b"z" * (10 * MB),
    "lone surrogate": b'{"ServerURL": "x.example", "Username": "u", "Secret": "\\udc00"}',
}


def test_the_real_executable_takes_hostile_stdin(tmp_path: Path) -> None:
    quiet = {k: v for k, v in os.environ.items() if k != "SWITCHBOARD_DEBUG"}
    debug = dict(os.environ, SWITCHBOARD_DEBUG="1", SWITCHBOARD_LOG=str(tmp_path / "log"))
    actions: list[list[str]] = [["get"], ["erase"], ["store"], ["list"], LOGIN]
    jobs = [(action, name, env) for action in actions for name in PROCESS_INPUTS for env in (quiet, debug)]

    def one(job: tuple[list[str], str, dict[str, str]]) -> tuple[str, Result, float]:
        action, name, env = job
        started = time.monotonic()
        result = run_helper(action, PROCESS_INPUTS[name], env=env, timeout=60)
        return f"{action[0]} / {name} / {'debug' if env is debug else 'quiet'}", result, time.monotonic() - started

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(one, jobs))
    for label, result, elapsed in outcomes:
        assert result.code in (0, 1), label
        assert "Traceback" not in result.out + result.err and "internal error" not in result.out, label
        if result.code == 1:
            assert result.out.count("\n") == 1, (label, result.out)
        if "quiet" in label:
            assert result.err == "", (label, result.err)
        assert elapsed < 30, label
    assert "Traceback" not in (tmp_path / "log").read_text()
    got = run_helper("get", SENTINEL, env=quiet)
    assert json.loads(got.out)["Secret"] == SENTINEL_SECRET
    figures("hostile stdin through the executable", runs=len(jobs))


def test_list_answers_while_its_stdin_stays_open() -> None:
    """docker-py lets `list` inherit a terminal; a pipe that nobody writes or closes must not stall it."""
    quiet = {k: v for k, v in os.environ.items() if k != "SWITCHBOARD_DEBUG"}
    proc = subprocess.Popen([helper_executable(), "list"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=quiet)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.wait(timeout=20)  # stdin stays open and empty all along
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("list waited on its stdin") from None
    finally:
        proc.stdin.close()
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 0 and json.loads(out)[SENTINEL] == "keeper" and err == b""


def test_figures() -> None:
    """Not a check: prints how many in-process runs the properties above made (with `pytest -s`)."""
    figures("hostile input in-process", **counts)
