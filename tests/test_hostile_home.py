"""Hostile homes: files and folders another user planted where the helper keeps its own (issue 10, items 1, 5c
and 5e). Each attack is performed and shown to fail, most with a control that shows it could have worked.

The cross-user attacks run as root with a throw-away user (`other_user`) who owns what she planted, as in
`sudo -E docker pull` or a root CI step whose HOME an earlier unprivileged step could write.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helper import cache, fsutil, tokens
from helper.cache import TokenCache, get_token
from tests.conftest import NOT_FOUND, Result, call, run_helper

APP = "docker-credential-switchboard"
HOST = "corp.example"
PAYLOAD = json.dumps({"ServerURL": "registry.example", "Username": "u", "Secret": "stored-secret"})


def data_dir(home: Path) -> Path:
    return home / ".local/share" / APP


def cache_dir(home: Path) -> Path:
    return home / ".cache" / APP


def one_line_error(result: Result, *words: str) -> str:
    """The one line a failed call printed, checked: exit 1, one line on stdout, naming each of `words`."""
    code, out = result.code, result.out
    assert code == 1, out
    assert out.endswith("\n") and "\n" not in out[:-1], out
    for word in words:
        assert word in out, f"{word!r} not in {out!r}"
    return out


def exec_route(routes: Path, tmp_path: Path, marker: Path | None = None) -> Path:
    """An exec route for HOST whose command counts its runs, prints `fresh-<n>`, and touches `marker`."""
    counter = tmp_path / "calls"
    script = tmp_path / "creds.sh"
    touch = f"touch '{marker}'\n" if marker else ""
    script.write_text(f"#!/bin/sh\n{touch}echo x >> '{counter}'\necho \"fresh-$(wc -l < '{counter}' | tr -d ' ')\"\n")
    script.chmod(0o755)
    routes.write_text(f'[[route]]\nmatch = "{HOST}"\nbackend = "exec"\ncommand = ["{script}"]\n'
                      'username = "robot"\nttl = 3600\n')
    return counter


def secret(result: Result) -> str:
    assert result.code == 0, result.out
    return str(result.json()["Secret"])


def only_entry(folder: Path) -> Path:
    entries = [p for p in folder.iterdir() if p.name.endswith(".json")]
    assert len(entries) == 1, entries
    return entries[0]


def plant_secret(entry: Path, value: str) -> None:
    """Rewrite a cache entry's secret in place (same file, same owner): a planted answer."""
    doc = json.loads(entry.read_bytes())
    doc["secret"] = value
    entry.write_text(json.dumps(doc))


# -- planted lock files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("plant", ["symlink", "hardlink"])
def test_a_planted_store_lock_never_writes_into_what_it_points_at(isolated_home: Path, tmp_path: Path,
                                                                  plant: str) -> None:
    """Today's attack: `store.lock` -> /etc/something was opened, locked and written to (truncated)."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    before = victim.stat()
    folder = data_dir(isolated_home)
    folder.mkdir(parents=True, mode=0o700)
    lock = folder / "store.lock"
    if plant == "symlink":
        lock.symlink_to(victim)
    else:
        os.link(victim, lock)
    env = {**os.environ, "SWITCHBOARD_STORE": "file"}
    out = one_line_error(run_helper("store", PAYLOAD, env=env), str(lock), "SWITCHBOARD_DATA_DIR")
    assert ("symbolic link" if plant == "symlink" else "2 hard links") in out
    assert victim.read_bytes() == b"precious\n"
    assert victim.stat().st_mtime_ns == before.st_mtime_ns
    assert not (folder / "store.json").exists()
    # control: the same store with a genuine lock file works, and the lock names its last holder
    lock.unlink()
    assert run_helper("store", PAYLOAD, env=env).code == 0
    assert lock.read_text().split()[0].isdigit()
    assert victim.read_bytes() == b"precious\n"


def test_a_planted_lock_in_a_loose_root_folder_of_hers_is_refused(isolated_home: Path, tmp_path: Path,
                                                                  other_user: int) -> None:
    """Root's data folder, left 0777 by an older helper under umask 000: she plants `store.lock` -> a root file."""
    victim = tmp_path / "root-file"
    victim.write_bytes(b"root's\n")
    folder = data_dir(isolated_home)
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    lock = folder / "store.lock"
    lock.symlink_to(victim)
    os.lchown(lock, other_user, -1)
    env = {**os.environ, "SWITCHBOARD_STORE": "file"}
    one_line_error(run_helper("store", PAYLOAD, env=env), str(lock), "symbolic link")
    assert victim.read_bytes() == b"root's\n"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # tightened before anything else


def test_a_planted_cache_lock_link_is_not_written_and_the_get_still_answers(
        isolated_home: Path, routes: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    counter = exec_route(routes, tmp_path)
    assert secret(call("get", HOST)) == "fresh-1"
    entry = only_entry(cache_dir(isolated_home))
    entry.unlink()
    lock = entry.with_suffix(".lock")
    lock.unlink()
    lock.symlink_to(victim)
    assert secret(run_helper("get", HOST)) == "fresh-2"  # refreshed unlocked: the cache is an optimisation
    assert victim.read_bytes() == b"precious\n"
    assert lock.is_symlink() and counter.read_text().count("x") == 2


# -- planted folders ----------------------------------------------------------------------------------------


def test_a_planted_cache_folder_link_is_refused_and_nothing_is_written_through_it(
        isolated_home: Path, routes: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    elsewhere.chmod(0o755)
    counter = exec_route(routes, tmp_path)
    cache_dir(isolated_home).parent.mkdir(parents=True)
    cache_dir(isolated_home).symlink_to(elsewhere)
    log = tmp_path / "log"
    env = {**os.environ, "SWITCHBOARD_LOG": str(log)}
    assert secret(run_helper("get", HOST, env=env)) == "fresh-1"
    assert secret(run_helper("get", HOST, env=env)) == "fresh-2"  # nothing cached: asked again
    assert list(elsewhere.iterdir()) == []
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o755  # not chmodded to 0700 either
    said = log.read_text()
    assert "symbolic link" in said and "SWITCHBOARD_CACHE_DIR" in said
    # control: a real folder caches
    cache_dir(isolated_home).unlink()
    assert secret(run_helper("get", HOST)) == "fresh-3"
    assert secret(run_helper("get", HOST)) == "fresh-3"
    assert counter.read_text().count("x") == 3
    assert stat.S_IMODE(cache_dir(isolated_home).stat().st_mode) == 0o700


def test_a_planted_data_folder_link_is_refused_in_one_line(isolated_home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    elsewhere.chmod(0o755)
    data_dir(isolated_home).parent.mkdir(parents=True)
    data_dir(isolated_home).symlink_to(elsewhere)
    env = {**os.environ, "SWITCHBOARD_STORE": "file"}
    one_line_error(run_helper("store", PAYLOAD, env=env), str(data_dir(isolated_home)), "symbolic link",
                   "SWITCHBOARD_DATA_DIR")
    assert list(elsewhere.iterdir()) == []
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o755
    data_dir(isolated_home).unlink()  # control
    assert run_helper("store", PAYLOAD, env=env).code == 0


def test_a_fast_folder_link_never_lets_a_store_delete_what_it_lists(isolated_home: Path, tmp_path: Path) -> None:
    """`store` and `erase` delete every fast record: through a planted `fast` link, every file it lists."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_text("x")
    cache_dir(isolated_home).mkdir(parents=True, mode=0o700)
    (cache_dir(isolated_home) / "fast").symlink_to(elsewhere)
    assert run_helper("store", PAYLOAD, env={**os.environ, "SWITCHBOARD_STORE": "file"}).code == 0
    assert (elsewhere / "precious").exists()


# -- planted cache entries ----------------------------------------------------------------------------------


def test_a_hard_linked_cache_entry_is_not_served(isolated_home: Path, routes: Path, tmp_path: Path) -> None:
    exec_route(routes, tmp_path)
    assert secret(call("get", HOST)) == "fresh-1"
    entry = only_entry(cache_dir(isolated_home))
    plant_secret(entry, "planted")
    assert secret(run_helper("get", HOST)) == "planted"  # control: the entry is what a get serves
    os.link(entry, tmp_path / "second-name")
    assert secret(run_helper("get", HOST)) == "fresh-2"
    assert only_entry(cache_dir(isolated_home)).stat().st_nlink == 1  # replaced, not written through
    assert "planted" in (tmp_path / "second-name").read_text()


def test_a_symlinked_cache_entry_is_not_served(isolated_home: Path, routes: Path, tmp_path: Path) -> None:
    exec_route(routes, tmp_path)
    assert secret(call("get", HOST)) == "fresh-1"
    entry = only_entry(cache_dir(isolated_home))
    plant_secret(entry, "planted")
    entry.rename(tmp_path / "planted.json")
    entry.symlink_to(tmp_path / "planted.json")
    assert secret(run_helper("get", HOST)) == "fresh-2"


def test_a_cache_entry_another_user_owns_is_not_served(isolated_home: Path, routes: Path, tmp_path: Path,
                                                        other_user: int) -> None:
    exec_route(routes, tmp_path)
    assert secret(call("get", HOST)) == "fresh-1"
    entry = only_entry(cache_dir(isolated_home))
    plant_secret(entry, "planted")
    assert secret(run_helper("get", HOST)) == "planted"  # control: root's own entry is served
    os.chown(entry, other_user, -1)
    assert secret(run_helper("get", HOST)) == "fresh-2"
    assert only_entry(cache_dir(isolated_home)).stat().st_uid == 0  # replaced by root's own
    assert secret(run_helper("get", HOST)) == "fresh-2"


# -- root with somebody else's HOME ------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ["her file", "world-writable", "in her folder"])
def test_root_never_runs_the_exec_command_of_a_routes_file_she_could_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_user: int, attack: str) -> None:
    folder = tmp_path / "cfg"
    folder.mkdir()
    routes = folder / "routes.toml"
    monkeypatch.setenv("SWITCHBOARD_CONFIG", str(routes))
    marker = tmp_path / "ran-as-root"
    exec_route(routes, tmp_path, marker)
    assert secret(run_helper("get", HOST)) == "fresh-1"  # control: root's own routes file runs
    marker.unlink()
    if attack == "her file":
        os.chown(routes, other_user, -1)
    elif attack == "world-writable":
        routes.chmod(0o666)
    else:
        # her folder from the start, holding a copy (a record the standalone launcher wrote for root's own
        # folder pins the file, not the folders above it: a folder handed to her afterwards, which only root
        # can do, is not seen by the launcher; the README says so)
        theirs = tmp_path / "hers"
        theirs.mkdir()
        (theirs / "routes.toml").write_bytes(routes.read_bytes())
        os.chown(theirs, other_user, -1)
        routes = theirs / "routes.toml"
        monkeypatch.setenv("SWITCHBOARD_CONFIG", str(routes))
    out = one_line_error(run_helper("get", HOST), str(routes), "SWITCHBOARD_CONFIG", "sudo -H")
    assert ("is owned by uid" if attack != "world-writable" else "writable by other users") in out
    assert not marker.exists()


def test_root_with_her_home_refuses_her_folders_and_still_answers(
        isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_user: int) -> None:
    """`sudo -E`: HOME is hers. Her routes file, her store and her cache are refused; a get still answers."""
    marker = tmp_path / "ran-as-root"
    her_routes = isolated_home / ".config" / APP / "routes.toml"
    her_routes.parent.mkdir(parents=True)
    exec_route(her_routes, tmp_path, marker)
    for path in [isolated_home, *isolated_home.rglob("*")]:
        os.lchown(path, other_user, -1)
    # her routes file: one line, and her exec command never runs as root
    one_line_error(run_helper("get", HOST), str(her_routes), "SWITCHBOARD_CONFIG")
    assert not marker.exists()
    her_routes.unlink()
    # nothing stored: still the exact not-found (no error for a pull of a public image)
    result = run_helper("get", "registry.example")
    assert (result.code, result.out.strip()) == (1, NOT_FOUND)
    # a store goes nowhere near her folders
    env = {**os.environ, "SWITCHBOARD_STORE": "file"}
    one_line_error(run_helper("store", PAYLOAD, env=env), str(data_dir(isolated_home)), "SWITCHBOARD_DATA_DIR",
                   "sudo -H")
    assert not (isolated_home / ".local").exists()
    # a token route in root's own routes file answers, uncached: nothing is created in her HOME
    routes = tmp_path / "root-routes.toml"
    monkeypatch.setenv("SWITCHBOARD_CONFIG", str(routes))
    exec_route(routes, tmp_path)
    assert secret(run_helper("get", HOST)) == "fresh-1"
    assert not (isolated_home / ".cache").exists()
    # control: with root's own folders named, everything works as usual
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path / "root-data"))
    monkeypatch.setenv("SWITCHBOARD_CACHE_DIR", str(tmp_path / "root-cache"))
    assert run_helper("store", PAYLOAD, env={**os.environ, "SWITCHBOARD_STORE": "file"}).code == 0
    assert secret(run_helper("get", "registry.example")) == "stored-secret"
    assert secret(run_helper("get", HOST)) == "fresh-2"
    assert secret(run_helper("get", HOST)) == "fresh-2"


def test_root_refuses_a_data_folder_she_owns_for_reads_and_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  other_user: int) -> None:
    mine = tmp_path / "root-data"
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(mine))
    env = {**os.environ, "SWITCHBOARD_STORE": "file"}
    assert run_helper("store", PAYLOAD, env=env).code == 0
    assert secret(run_helper("get", "registry.example")) == "stored-secret"  # control
    for path in [mine, *mine.iterdir()]:
        os.chown(path, other_user, -1)  # her folder now (she replaced it with one holding her store)
    out = one_line_error(run_helper("get", "registry.example"), str(mine), "SWITCHBOARD_DATA_DIR")
    assert "stored-secret" not in out
    names = sorted(p.name for p in mine.iterdir())
    one_line_error(run_helper("store", PAYLOAD, env=env), str(mine), "owned by uid")
    assert sorted(p.name for p in mine.iterdir()) == names


# -- umask 000 -----------------------------------------------------------------------------------------------


def test_under_umask_000_every_folder_the_helper_creates_is_0700(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 routes: Path) -> None:
    """os.makedirs gave the parents 0777 under umask 000: another user could swap the store folder."""
    base = tmp_path / "fresh"
    monkeypatch.setenv("XDG_DATA_HOME", str(base / "data" / "deep"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "cache" / "deep"))
    exec_route(routes, tmp_path)  # written under the usual umask: root refuses a world-writable routes file
    old = os.umask(0)
    try:
        assert run_helper("store", PAYLOAD, env={**os.environ, "SWITCHBOARD_STORE": "file"}).code == 0
        assert secret(run_helper("get", HOST)) == "fresh-1"
    finally:
        os.umask(old)
    made = [p for p in base.rglob("*") if p.is_dir()] + [base]
    assert len(made) >= 7  # fresh, data, deep, app; cache, deep, app
    assert {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in made} == {str(p): "0o700" for p in made}
    files = [p for p in base.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)


# -- the refresh lock: its wait and its holder --------------------------------------------------------------

HOLD = r"""
import os, sys, time
from helper import fsutil
lock = fsutil.FileLock(sys.argv[1])
lock.acquire()
if sys.argv[2] == "orphan":  # a child keeps the descriptor, the recorded holder exits
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    os._exit(0)
print(os.getpid(), flush=True)
time.sleep(60)
"""


Holder = Callable[[str, str], int]


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Holder]:
    """Start a process that holds a lock: `holder(path, "alive" | "orphan")` -> the pid that keeps it."""
    alive: list[subprocess.Popen[str]] = []
    orphans: list[int] = []

    def start(lock: str, how: str) -> int:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, lock, how], stdout=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parent.parent)
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        proc.stdout.close()
        if how == "orphan":
            proc.wait(10)  # reaped: the recorded holder's pid is gone; its child keeps the lock
            orphans.append(pid)
        else:
            alive.append(proc)
        return pid

    yield start
    for proc in alive:
        proc.kill()
        proc.wait(10)
    for pid in orphans:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def token_cache(tmp_path: Path) -> tuple[TokenCache, str]:
    store = TokenCache(str(tmp_path / "cache"))
    fsutil.ensure_private_dir(store.folder)
    return store, store.path("k")[:-5] + ".lock"


def fetch() -> tokens.Token:
    return tokens.Token("u", "fetched", time.time() + 3600, time.time())


def test_the_lock_records_its_holder_pid(tmp_path: Path, holder: Holder) -> None:
    _, lock = token_cache(tmp_path)
    pid = holder(lock, "alive")
    assert Path(lock).read_text().split()[0] == str(pid)


def test_a_waiter_waits_for_the_route_deadline_plus_a_margin(tmp_path: Path, holder: Holder,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store, lock = token_cache(tmp_path)
    holder(lock, "alive")
    monkeypatch.setattr(cache, "LOCK_MARGIN_S", 0.3)
    for deadline in (0.2, 1.5):
        began = time.monotonic()
        assert get_token(store, "k", "s", fetch, fetch_deadline=deadline).secret == "fetched"
        waited = time.monotonic() - began
        assert deadline + 0.3 <= waited < deadline + 0.3 + 1.5, (deadline, waited)
        Path(store.path("k")).unlink()


def test_a_waiter_stops_early_when_the_recorded_holder_is_gone(tmp_path: Path, holder: Holder,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store, lock = token_cache(tmp_path)
    recorded = Path(lock)
    holder(lock, "orphan")
    gone = int(recorded.read_text().split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(gone, 0)
    log = tmp_path / "log"
    monkeypatch.setenv("SWITCHBOARD_LOG", str(log))
    began = time.monotonic()
    assert get_token(store, "k", "s", fetch, fetch_deadline=60).secret == "fetched"
    assert time.monotonic() - began < 5
    assert f"pid {gone}" in log.read_text()
    # control: a live holder, however slow, is waited for until the deadline
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    slow = TokenCache(str(other))
    holder(slow.path("k")[:-5] + ".lock", "alive")
    monkeypatch.setattr(cache, "LOCK_MARGIN_S", 0.0)
    began = time.monotonic()
    assert get_token(slow, "k", "s", fetch, fetch_deadline=2.5).secret == "fetched"
    assert time.monotonic() - began >= 2.5


def test_a_token_route_waits_by_its_own_deadline(routes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helper.backends import token_base

    seen: list[float | None] = []

    def spy(*args: object, fetch_deadline: float | None = None) -> tokens.Token:
        seen.append(args[4] if len(args) > 4 else fetch_deadline)  # type: ignore[arg-type]
        return fetch()

    monkeypatch.setattr(token_base, "get_token", spy)
    exec_route(routes, tmp_path)
    routes.write_text(routes.read_text() + "timeout = 250\n")
    assert secret(call("get", HOST)) == "fetched"
    assert seen == [255.0]  # the exec command's timeout + 5: far above the old fixed 60 s
