"""The standalone build's launcher and its fast records (packaging/launcher/, helper/fastpath.py).

A repeated token `get` is answered by the C launcher from a record the Python helper wrote; everything
else reaches the Python helper with stdin intact. These tests drive the real launcher: the one in front
of the frozen build when SWITCHBOARD_HELPER names it, else one compiled here (cc) in front of the helper
under test. "Served by the launcher" is proved by forging a record's answer (with a valid length and
checksum): only the launcher would print the forged secret, Python answers from its token cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from helper import fastpath, paths
from tests.conftest import NOT_FOUND, ROOT, call, helper_executable, require_tool, run_helper
from tests.soak import cache_dir

# Windows has no exec(): its build ships the frozen helper itself, without the launcher
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the launcher is for Linux and macOS")

HOST = "tokens.corp.example"
FORGED = "forged-by-the-test"


def exec_route(routes: Path, script: str, match: str = HOST) -> Path:
    """Route `match` to an exec command running `script`; its tokens live an hour (fresh for 45 min)."""
    command = routes.parent / "mint.sh"
    command.write_text(f"#!/bin/sh\n{script}\n")
    command.chmod(0o755)
    routes.write_text(f'[[route]]\nmatch = "{match}"\nbackend = "exec"\ncommand = ["{command}"]\n'
                      'username = "robot"\nttl = 3600\n')
    return routes


@pytest.fixture
def token_route(routes: Path, tmp_path: Path) -> Path:
    """An exec route for HOST whose command counts its runs."""
    return exec_route(routes, f"echo x >> '{tmp_path / 'mints'}'\necho minted-secret")


def records(home: Path) -> list[Path]:
    folder = cache_dir(home) / "fast"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def parse(record: Path) -> tuple[int, list[tuple[str, str]], bytes]:
    """(serve until, [(path, signature)], answer) of a record."""
    data = record.read_bytes()
    lines = data.split(b"\n")
    assert lines[0].decode() == fastpath.MAGIC
    assert lines[1].decode() == record.name
    count = int(lines[5])
    deps = [(lines[6 + 2 * i].decode(), lines[7 + 2 * i].decode()) for i in range(count)]
    header = b"\n".join(lines[:6 + 2 * count]) + b"\n"
    return int(lines[2]), deps, data[len(header):]


def forge(record: Path, secret: str = FORGED, until: int | None = None) -> None:
    """Rewrite a record's answer (and optionally its serve-until), consistently: length and checksum."""
    old_until, deps, answer = parse(record)
    doc = json.loads(answer)
    doc["Secret"] = secret
    body = (json.dumps(doc, separators=(",", ":")) + "\n").encode()
    record.write_bytes(fastpath.render(record.name, body, old_until if until is None else until, deps))


def get(launcher: str, host: str = HOST, env: dict[str, str] | None = None) -> str:
    result = run_helper("get", host, env=env, executable=launcher)
    assert result.err == ""
    if result.code != 0:
        return result.out.strip()
    secret: str = result.json()["Secret"]
    return secret


def fingerprint(host: str, env: Mapping[str, str]) -> str:
    """The record name the launcher computes for a `get` of `host` under `env` (launcher.c fingerprint)."""
    from helper import __version__, envrules

    key = host.encode()
    data = [b"docker-credential-switchboard fingerprint/1\0", __version__.encode() + b"\0",
            f"uid={os.geteuid()}\0key={len(key)}\0".encode(), key]
    for name in sorted((name for name in env if envrules.fingerprinted(name)), key=os.fsencode):
        shown = "<set>" if envrules.secret_name(name) else env[name]
        data.append(b"\0" + os.fsencode(f"{name}={shown}"))
    return hashlib.sha256(b"".join(data)).hexdigest()


def copy_record(record: Path, name: str) -> None:
    """A copy of `record` (private, as the launcher wants it) under the fingerprint `name`."""
    until, deps, answer = parse(record)
    fd = os.open(record.parent / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, fastpath.render(name, answer, until, deps))
    os.close(fd)


def warm(launcher: str, home: Path) -> Path:
    """One `get` through the launcher (Python answers and records), and the record it wrote."""
    assert get(launcher) == "minted-secret"
    found = records(home)
    assert len(found) == 1
    return found[0]


# ---- what the launcher serves -----------------------------------------------------------------------


def test_a_repeated_token_get_is_answered_by_the_launcher(launcher: str, token_route: Path, isolated_home: Path,
                                                          tmp_path: Path) -> None:
    record = warm(launcher, isolated_home)
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert stat.S_IMODE(record.parent.stat().st_mode) == 0o700
    until, deps, answer = parse(record)
    assert json.loads(answer) == {"ServerURL": HOST, "Username": "robot", "Secret": "minted-secret"}
    # fresh until the advisory window of a one-hour token: 45 minutes from now
    assert abs(until - (time.time() + 2700)) < 60
    entry = next(cache_dir(isolated_home).glob("exec_*.json"))
    # every routes file in force is pinned, the system-wide ones (absent here: "-") too (issue 11.6)
    assert deps == [(str(token_route), fastpath.signature(str(token_route))),
                    *[(path, fastpath.signature(path)) for path in paths.system_routes_files()],
                    (str(entry), fastpath.signature(str(entry)))]
    forge(record)
    assert get(launcher) == FORGED
    assert len((tmp_path / "mints").read_text().splitlines()) == 1


def test_the_record_is_byte_for_byte_what_python_printed(launcher: str, token_route: Path,
                                                         isolated_home: Path) -> None:
    python = run_helper("get", HOST)
    record = warm(launcher, isolated_home)
    served = run_helper("get", HOST, executable=launcher)
    assert parse(record)[2].decode() == python.out == served.out
    assert served.code == 0


@pytest.mark.parametrize("length", [1, 23, 24, 31, 32, 87, 88, 95, 96, 4000])
def test_answers_of_every_length_around_a_block_pass_the_checksum(launcher: str, routes: Path, tmp_path: Path,
                                                                  isolated_home: Path, length: int) -> None:
    # the answer is 64 bytes of JSON around the secret: these lengths put its end on every side of
    # SHA-256's 55/56/64-byte padding boundaries, which the C checksum must agree on with Python's
    secret = "s" * length
    exec_route(routes, f"echo {secret}")
    assert get(launcher) == secret
    (record,) = records(isolated_home)
    assert hashlib.sha256(parse(record)[2]).hexdigest() == record.read_bytes().split(b"\n")[4].decode()
    forge(record, FORGED + str(length))
    assert get(launcher) == FORGED + str(length)


def test_static_secrets_are_never_recorded(launcher: str, isolated_home: Path) -> None:
    assert call("store", json.dumps({"ServerURL": "static.example", "Username": "u", "Secret": "p"})).code == 0
    assert get(launcher, "static.example") == "p"
    assert get(launcher, "static.example") == "p"
    assert records(isolated_home) == []
    assert get(launcher, "unknown.example") == NOT_FOUND
    assert records(isolated_home) == []


def test_a_token_route_that_fails_leaves_no_record(launcher: str, routes: Path, isolated_home: Path) -> None:
    routes.write_text(f'[[route]]\nmatch = "{HOST}"\nbackend = "exec"\ncommand = ["/bin/false"]\n'
                      'username = "robot"\nttl = 3600\n')
    assert get(launcher) == NOT_FOUND
    assert records(isolated_home) == []


def test_only_a_cached_token_carries_what_a_record_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # AWS_ECR_DISABLE_CACHE (caching() false) means every get asks the cloud: then no record either
    from helper.backends.token_base import Identity, TokenBackend
    from helper.cache import TokenCache
    from helper.hosts import parse as parse_key
    from helper.route import RouteSpec
    from helper.tokens import Token

    class Minting(TokenBackend):
        cached = True

        def target(self, key: object) -> str:
            return "minting"

        def who(self, key: object) -> Identity:
            return Identity("", (("/some/file", "-"),))

        def fetch(self, key: object) -> Token:
            return Token("u", "s", time.time() + 3600, time.time())

        def caching(self) -> bool:
            return self.cached

    spec = RouteSpec([], "exec", {}, "built-in")
    cache = TokenCache(str(tmp_path / "cache"))
    backend = Minting(spec, cache)
    creds = backend.get(parse_key(HOST))
    entry = cache.path(backend.cache_key(parse_key(HOST)))
    assert creds.basis is not None
    assert (*creds.basis.files, creds.basis.entry()) == (("/some/file", "-"), (entry, fastpath.signature(entry)))
    Path(entry).unlink()  # the entry no longer holds the token served: nothing to pin, so no record
    assert creds.basis.entry() is None
    assert creds.fresh_until is not None and abs(creds.fresh_until - (time.time() + 2700)) < 60
    backend.cached = False
    uncached = backend.get(parse_key(HOST))
    # an uncached token still says how long it stands (the kubelet plugin's cacheDuration), but rests on nothing
    # a record could pin: no basis, so the launcher never repeats it
    assert uncached.basis is None and uncached.fresh_until is not None and uncached.secret == "s"


# ---- when the launcher must ask Python -------------------------------------------------------------


def test_a_different_stdin_or_a_relevant_variable_is_another_record(launcher: str, token_route: Path,
                                                                    isolated_home: Path) -> None:
    forge(warm(launcher, isolated_home))
    assert get(launcher) == FORGED
    assert get(launcher, HOST + "\n") == "minted-secret"  # another spelling: another fingerprint
    for name, value in (("AWS_PROFILE", "other"), ("GOOGLE_APPLICATION_CREDENTIALS", "/x"),
                        ("AZURE_CLIENT_ID", "c"), ("SWITCHBOARD_STORE", "file"), ("XDG_CONFIG_HOME", "/nowhere"),
                        ("CLOUDSDK_CONFIG", "/elsewhere"), ("IDENTITY_ENDPOINT", "http://127.0.0.1:9")):
        # Python answers each (from its token cache: the route is the same), and records it anew
        assert get(launcher, env=dict(os.environ, **{name: value})) == "minted-secret", name
    assert get(launcher, env=dict(os.environ, UNRELATED_VARIABLE="1", PATH=os.environ["PATH"] + ":/x")) == FORGED


def test_secret_variables_count_by_presence_not_value(launcher: str, token_route: Path,
                                                      isolated_home: Path) -> None:
    env = dict(os.environ, AWS_SECRET_ACCESS_KEY="first", SWITCHBOARD_PASSPHRASE="one")
    assert get(launcher, env=env) == "minted-secret"
    (record,) = records(isolated_home)
    forge(record)
    assert get(launcher, env=dict(env, AWS_SECRET_ACCESS_KEY="second", SWITCHBOARD_PASSPHRASE="two")) == FORGED
    without = {k: v for k, v in env.items() if k != "AWS_SECRET_ACCESS_KEY"}
    assert get(launcher, env=without) == "minted-secret"


def test_a_changed_routes_file_is_a_miss(launcher: str, token_route: Path, isolated_home: Path) -> None:
    forge(warm(launcher, isolated_home))
    token_route.write_text(token_route.read_text() + "\n# edited\n")
    assert get(launcher) == "minted-secret"


def test_a_routes_file_that_appears_is_a_miss(launcher: str, tmp_path: Path, isolated_home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # no routes file: the record depends on its absence ("-"); creating one changes the answer. The default
    # file, not SWITCHBOARD_CONFIG: a file that variable names must exist (issue 11.7b)
    absent = isolated_home / ".config" / "docker-credential-switchboard" / "routes.toml"
    absent.parent.mkdir(parents=True)
    assert call("store", json.dumps({"ServerURL": HOST, "Username": "u", "Secret": "static"})).code == 0
    assert get(launcher) == "static"
    exec_route(absent, "echo from-the-file-route")
    assert get(launcher) == "from-the-file-route"
    (record,) = records(isolated_home)
    assert parse(record)[1][0][1] != "-"
    absent.unlink()
    assert get(launcher) == "static"
    assert records(isolated_home) == []


def test_past_its_serve_until_time_python_answers(launcher: str, token_route: Path, isolated_home: Path) -> None:
    forge(warm(launcher, isolated_home), until=int(time.time()) - 1)
    assert get(launcher) == "minted-secret"


@pytest.mark.parametrize("damage", ["mode", "checksum", "truncated", "padded", "magic", "symlink", "huge"])
def test_a_damaged_or_unsafe_record_is_never_served(launcher: str, token_route: Path, isolated_home: Path,
                                                    tmp_path: Path, damage: str) -> None:
    record = warm(launcher, isolated_home)
    forge(record)
    data = record.read_bytes()
    if damage == "mode":
        record.chmod(0o644)
    elif damage == "checksum":
        record.write_bytes(data[:-3] + b"X\"}\n")
    elif damage == "truncated":
        record.write_bytes(data[:-5])
    elif damage == "padded":
        record.write_bytes(data + b" ")
    elif damage == "magic":
        record.write_bytes(data.replace(b"fast/1", b"fast/9", 1))
    elif damage == "symlink":
        target = tmp_path / "elsewhere"
        target.write_bytes(data)
        target.chmod(0o600)
        record.unlink()
        record.symlink_to(target)
    else:
        record.write_bytes(data + b" " * (70 * 1024))
    assert get(launcher) == "minted-secret"


OFF_SPELLINGS = ("", "0", "false", "False", "FALSE", "fAlSe", "no", "No", "NO", "nO", "off", "Off", "OFF", "oFf")
ON_SPELLINGS = ("1", "true", "True", "yes", "on", "ON", "2", "offf", " off", "nope")


@pytest.mark.parametrize("setting", [*(("SWITCHBOARD_FASTPATH", off) for off in OFF_SPELLINGS),
                                     *(("SWITCHBOARD_DEBUG", on) for on in ON_SPELLINGS),
                                     ("SWITCHBOARD_LOG", "log")], ids="=".join)
def test_switches_that_send_every_get_to_python(launcher: str, token_route: Path, isolated_home: Path,
                                                tmp_path: Path, setting: tuple[str, str]) -> None:
    record = warm(launcher, isolated_home)
    assert record.name == fingerprint(HOST, os.environ)  # the copy below agrees with the launcher
    forge(record)
    name, value = setting
    env = dict(os.environ, **{name: str(tmp_path / value) if name == "SWITCHBOARD_LOG" else value})
    # the switch is fingerprinted too: the forged record, under the name this call's fingerprint gives it,
    # is what a launcher that ignored the switch would serve
    control = dict(os.environ, **{name: {"SWITCHBOARD_FASTPATH": "1", "SWITCHBOARD_DEBUG": "0"}.get(name, "")})
    for each in (env, control):
        copy_record(record, fingerprint(HOST, each))
    assert get(launcher, env=control) == FORGED  # the control: a switch left on serves the copy
    result = run_helper("get", HOST, env=env, executable=launcher)
    assert result.code == 0 and result.json()["Secret"] == "minted-secret"


@pytest.mark.parametrize("setting", [*(("SWITCHBOARD_FASTPATH", on) for on in ON_SPELLINGS),
                                     *(("SWITCHBOARD_DEBUG", off) for off in OFF_SPELLINGS)], ids="=".join)
def test_switches_that_leave_the_launcher_on(launcher: str, token_route: Path, isolated_home: Path,
                                             setting: tuple[str, str]) -> None:
    # the same spellings read the other way: the launcher and helper/log.py agree on every one
    name, value = setting
    env = dict(os.environ, **{name: value})
    assert get(launcher, env=env) == "minted-secret"  # its own fingerprint: Python answers and records
    (record,) = records(isolated_home)
    forge(record)
    assert get(launcher, env=env) == FORGED


@pytest.mark.parametrize("value", [None, *OFF_SPELLINGS, *ON_SPELLINGS])
def test_debug_reads_its_value_as_the_launcher_does(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    from helper import log

    if value is None:
        monkeypatch.delenv("SWITCHBOARD_DEBUG", raising=False)
    else:
        monkeypatch.setenv("SWITCHBOARD_DEBUG", value)
    assert log.debug_enabled() is (value in ON_SPELLINGS)
    if value is not None:
        assert log.falsy(value) is (value in OFF_SPELLINGS)


def test_store_and_erase_forget_every_record(launcher: str, token_route: Path, isolated_home: Path) -> None:
    warm(launcher, isolated_home)
    assert call("store", json.dumps({"ServerURL": "other.example", "Username": "u", "Secret": "p"})).code == 0
    assert records(isolated_home) == []
    warm(launcher, isolated_home)
    assert run_helper("erase", "nothing.example", executable=launcher).code == 0
    assert records(isolated_home) == []


def test_a_fingerprint_from_the_environment_is_ignored(launcher: str, token_route: Path, isolated_home: Path,
                                                       tmp_path: Path) -> None:
    # only the launcher sets SWITCHBOARD_FAST_RECORD; one set by anybody else never names a file, and
    # the variable never reaches a route's command
    exec_route(token_route, 'echo "[${SWITCHBOARD_FAST_RECORD:-unset}]"')
    env = dict(os.environ, SWITCHBOARD_FAST_RECORD="../../escape")
    assert get(launcher, env=env) == "[unset]"
    assert [p.name for p in records(isolated_home)] != ["..", "escape"]
    assert not (isolated_home / ".cache/escape").exists()
    assert fastpath.record_id("../../escape") is None
    assert fastpath.record_id("A" * 64) is None
    assert fastpath.record_id("a" * 64) == "a" * 64


def test_a_refreshed_or_deleted_token_cache_ends_the_record(launcher: str, token_route: Path,
                                                            isolated_home: Path) -> None:
    forge(warm(launcher, isolated_home))
    assert get(launcher) == FORGED
    for entry in cache_dir(isolated_home).glob("exec_*.json"):
        entry.unlink()  # as `rm -rf ~/.cache/...` or another process's refresh (a new inode) would
    assert get(launcher) == "minted-secret"  # Python minted again; the forged copy is never served


def test_a_routes_file_changed_during_the_call_leaves_no_record(launcher: str, routes: Path, tmp_path: Path,
                                                               isolated_home: Path) -> None:
    # the command edits the routes file while the helper works: the answer came from the old routes,
    # so no record may claim the new file
    exec_route(routes, f"echo '# edited' >> '{routes}'\necho minted-secret")
    assert get(launcher) == "minted-secret"
    assert records(isolated_home) == []


def test_a_record_copied_under_another_fingerprint_is_never_served(launcher: str, routes: Path, tmp_path: Path,
                                                                  isolated_home: Path) -> None:
    exec_route(routes, 'read host; echo "secret-of-$host"', match="*.corp.example")
    assert get(launcher, "a.corp.example") == "secret-of-a.corp.example"
    (first,) = records(isolated_home)
    assert get(launcher, "b.corp.example") == "secret-of-b.corp.example"
    (second,) = [r for r in records(isolated_home) if r != first]
    second.write_bytes(first.read_bytes())  # a's answer under b's name: it names a's fingerprint inside
    assert get(launcher, "b.corp.example") == "secret-of-b.corp.example"


@pytest.mark.parametrize("trick", ["open-folder", "fifo", "hard-link"])
def test_records_in_the_wrong_place_are_never_served(launcher: str, token_route: Path, isolated_home: Path,
                                                     tmp_path: Path, trick: str) -> None:
    record = warm(launcher, isolated_home)
    forge(record)
    if trick == "open-folder":
        record.parent.chmod(0o777)
    elif trick == "fifo":
        record.unlink()
        os.mkfifo(record, 0o600)
    else:
        os.link(record, tmp_path / "second-name")
    assert get(launcher) == "minted-secret"


def test_secret_named_variables_count_by_presence(launcher: str, token_route: Path, isolated_home: Path) -> None:
    names = ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "GOOGLE_API_KEY", "AZURE_STORAGE_CONNECTION_STRING",
             "AZURE_DEVOPS_EXT_PAT", "IDENTITY_HEADER", "AWS_SESSION_TOKEN")
    env = dict(os.environ, **{name: "one" for name in names})
    assert get(launcher, env=env) == "minted-secret"
    (record,) = records(isolated_home)
    forge(record)
    assert get(launcher, env=dict(env, **{name: "two" for name in names})) == FORGED
    # paths and key ids count by value: the answer depends on them
    for name in ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ACCESS_KEY_ID", "GOOGLE_APPLICATION_CREDENTIALS"):
        assert get(launcher, env=dict(env, **{name: "/one"})) == "minted-secret"
        for each in records(isolated_home):
            forge(each)
        assert get(launcher, env=dict(env, **{name: "/one"})) == FORGED, name
        assert get(launcher, env=dict(env, **{name: "/two"})) == "minted-secret", name


# ---- file systems whose stat() may be stale ---------------------------------------------------------


@pytest.fixture
def fuse_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder on a FUSE file system (fuse-overlayfs over folders in tmp_path), unmounted afterwards."""
    tool = require_tool("fuse-overlayfs")
    base = tmp_path / "fuse"
    for name in ("lower", "upper", "work", "mnt"):
        (base / name).mkdir(parents=True)
    options = f"lowerdir={base / 'lower'},upperdir={base / 'upper'},workdir={base / 'work'}"
    mounted = subprocess.run([tool, "-o", options, str(base / "mnt")], capture_output=True, text=True, timeout=30,
                             check=False)
    if mounted.returncode != 0 or not os.path.ismount(base / "mnt"):
        reason = f"cannot mount a FUSE file system here: {mounted.stderr.strip() or mounted.returncode}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true forbids skipping: the launcher's FUSE refusal must be tested)")
        pytest.skip(reason)
    try:
        yield base / "mnt"
    finally:
        unmount = shutil.which("fusermount3") or shutil.which("fusermount")
        for command in ([unmount, "-u"] if unmount else ["umount"], ["umount", "-l"]):
            if os.path.ismount(base / "mnt"):
                subprocess.run([*command, str(base / "mnt")], capture_output=True, check=False, timeout=30)


def folder_on(where: str, fuse: Path, tmp_path: Path) -> Path:
    folder = fuse if where == "fuse" else tmp_path / "local"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.mark.parametrize("where", ["local", "fuse"])
def test_records_in_a_cache_folder_on_fuse_are_never_served(launcher: str, token_route: Path, tmp_path: Path,
                                                            fuse_folder: Path, monkeypatch: pytest.MonkeyPatch,
                                                            where: str) -> None:
    # FUSE (sshfs, gcsfuse, virtiofs, ...) and network file systems answer stat() from a client-side cache
    # that another machine's change does not reach: the launcher hands such records to Python
    cache = folder_on(where, fuse_folder, tmp_path) / "cache"
    monkeypatch.setenv("SWITCHBOARD_CACHE_DIR", str(cache))
    assert get(launcher) == "minted-secret"
    (record,) = sorted((cache / "fast").iterdir())  # Python wrote it, wherever the cache is
    forge(record)
    assert get(launcher) == (FORGED if where == "local" else "minted-secret")


@pytest.mark.parametrize("where", ["local", "fuse"])
def test_a_routes_file_on_fuse_is_never_trusted(launcher: str, tmp_path: Path, isolated_home: Path,
                                                fuse_folder: Path, monkeypatch: pytest.MonkeyPatch,
                                                where: str) -> None:
    routes = exec_route(folder_on(where, fuse_folder, tmp_path) / "routes.toml", "echo minted-secret")
    monkeypatch.setenv("SWITCHBOARD_CONFIG", str(routes))
    forge(warm(launcher, isolated_home))  # the cache is local: only the pinned routes file is on FUSE
    assert get(launcher) == (FORGED if where == "local" else "minted-secret")


@pytest.mark.parametrize("where", ["local", "fuse"])
def test_an_absent_pinned_file_on_fuse_is_never_trusted(launcher: str, token_route: Path, tmp_path: Path,
                                                        isolated_home: Path, fuse_folder: Path, where: str) -> None:
    # a file the answer depends on by its absence ("-"): its folder's file system decides, since another
    # machine may create it there unseen (a cached negative lookup)
    record = warm(launcher, isolated_home)
    until, deps, answer = parse(record)
    absent = folder_on(where, fuse_folder, tmp_path) / "not-yet" / "identity.json"
    record.write_bytes(fastpath.render(record.name, answer, until, [*deps, (str(absent), "-")]))
    forge(record)
    assert get(launcher) == (FORGED if where == "local" else "minted-secret")


# ---- stdin reaches Python intact --------------------------------------------------------------------


@pytest.mark.parametrize("size", [4095, 4096, 4097, 70_000, 17 * 1024 * 1024])
def test_big_stdin_reaches_python_unchanged(launcher: str, size: int) -> None:
    data = b"h" * size
    direct = run_helper("get", data)
    through = run_helper("get", data, executable=launcher)
    assert (through.code, through.out, through.err) == (direct.code, direct.out, direct.err)
    assert through.code == 1


def test_a_non_blocking_stdin_in_pieces_reaches_python_whole(launcher: str, token_route: Path) -> None:
    data = HOST.encode() + b" " * 9000  # over the launcher's 4 KiB: the feeder replays the rest
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    proc = subprocess.Popen([launcher, "get"], stdin=read_end, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(read_end)
    for start in range(0, len(data), 1000):
        os.write(write_end, data[start:start + 1000])
        time.sleep(0.01)
    os.close(write_end)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (0, b"")
    assert json.loads(out)["Secret"] == "minted-secret"  # the whole input: a host with trailing blanks


def test_other_actions_get_stdin_untouched(launcher: str, isolated_home: Path) -> None:
    secret = "x" * (2 * 1024 * 1024)
    payload = json.dumps({"ServerURL": "big.example", "Username": "u", "Secret": secret})
    assert run_helper("store", payload, executable=launcher).code == 0
    assert run_helper("get", "big.example", executable=launcher).json()["Secret"] == secret
    listed = run_helper("list", None, executable=launcher)
    assert listed.code == 0 and listed.json() == {"big.example": "u"}


def test_closed_stdin_and_empty_stdin_answer_as_python_does(launcher: str) -> None:
    for data in (None, b""):
        direct = run_helper("get", data)
        through = run_helper("get", data, executable=launcher)
        assert (through.code, through.out) == (direct.code, direct.out)
    closed, python = (subprocess.run(["/bin/sh", "-c", 'exec "$0" get <&-', program], capture_output=True,
                                     timeout=30, check=False) for program in (launcher, helper_executable()))
    assert (closed.returncode, closed.stdout) == (python.returncode, python.stdout)


def test_version_and_usage_go_through(launcher: str) -> None:
    assert run_helper("version", None, executable=launcher).out == run_helper("version", None).out
    for argv in ([], ["get", "extra"], ["nonsense"]):
        through = run_helper(argv, b"", executable=launcher)
        direct = run_helper(argv, b"")
        assert (through.code, through.out) == (direct.code, direct.out)


def test_a_missing_core_is_one_line_on_stdout(tmp_path: Path) -> None:
    require_tool("cc")
    alone = tmp_path / "docker-credential-switchboard"
    subprocess.run([str(ROOT / "packaging/launcher/compile"), str(alone)], check=True)
    result = run_helper("version", None, executable=str(alone))
    assert result.code == 1 and result.err == ""
    assert result.out.startswith("docker-credential-switchboard: cannot start the helper: ")
    assert result.out.count("\n") == 1


# ---- the Python side --------------------------------------------------------------------------------


def test_write_refuses_what_the_launcher_could_not_check(isolated_home: Path, tmp_path: Path) -> None:
    record = "b" * 64
    path = Path(fastpath.folder()) / record
    now = time.time()
    routes = tmp_path / "routes.toml"
    fastpath.write(record, "{}\n", now + 600, fastpath.signed((str(routes),)), now=now)
    assert path.exists()
    before = fastpath.signed((str(routes),))
    routes.write_text("# written while the answer was being made\n")
    for until, deps in ((now - 1, ()), (float("nan"), ()), (now + 0.5, ()), (now + 600, (("bad\nname", "-"),)),
                        (now + 600, fastpath.signed((str(tmp_path),) * 17)), (now + 600, before),
                        (now + 600, ((str(tmp_path / "x"), None),))):
        fastpath.write(record, "{}\n", until, deps, now=now)
        assert not path.exists(), (until, deps)
        fastpath.write(record, "{}\n", now + 600, (), now=now)
        assert path.exists()
    fastpath.write(record, "x" * (70 * 1024), now + 600, (), now=now)
    assert not path.exists()


def test_writing_a_record_prunes_the_expired_ones(isolated_home: Path) -> None:
    now = time.time()
    folder = Path(fastpath.folder())
    fastpath.write("a" * 64, "{}\n", now + 600, (), now=now)
    fastpath.write("b" * 64, "{}\n", now + 1200, (), now=now)
    fastpath.write("c" * 64, "{}\n", now + 1800, (), now=now + 900)  # a quarter of an hour later
    assert sorted(p.name for p in folder.iterdir()) == ["b" * 64, "c" * 64]
    (folder / "d").write_bytes(b"not a record")
    stale_temp = folder / f".{'e' * 64}.tmp-1-1"
    stale_temp.write_bytes(b"")
    os.utime(stale_temp, (now - 120, now - 120))
    fastpath.write("c" * 64, "{}\n", now + 1800, (), now=now)
    assert sorted(p.name for p in folder.iterdir()) == ["b" * 64, "c" * 64, "d"]  # "d" is young, kept


def test_a_token_fresh_until_matches_its_state() -> None:
    from helper import tokens

    for lifetime in (60.0, 600.0, 3600.0, 43200.0):
        token = tokens.Token("u", "s", 1000.0 + lifetime, 1000.0)
        until = token.fresh_until()
        assert until is not None
        assert token.state(until - 0.001) == tokens.FRESH
        assert token.state(until) != tokens.FRESH
    assert tokens.Token("u", "s", None, 0.0).fresh_until() is None
