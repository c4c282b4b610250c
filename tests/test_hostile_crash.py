"""Crash safety: `store`, `erase` and a token refresh SIGKILLed at random points, and at the worst one.

After every kill: store.json parses, the victim entry reads back with its old or its new value, the
other entries are intact, the lock is free (the kernel drops a dead holder's flock) and the next write
is immediate; the token cache reads back the old or the new token; temp files do not pile up.

Random kills land anywhere in the process's life (start-up, parsing, waiting, writing); the kill-at
tests (tests/soak.py `KILL_AT`) stop the process exactly between the fsync of the temp file and the
rename, or just after the rename with the lock still held.

CI: 30 random kills of each kind plus 10 of a first store (`SWITCHBOARD_SOAK` multiplies them).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helper.cache import TokenCache
from tests.conftest import NOT_FOUND, call, helper_executable, run_helper
from tests.fake_aws import ECR_HOST, FakeEcr, aws_env
from tests.soak import cache_dir, data_dir, figures, lock_is_free, run_killed_at, scaled, temp_files

BIG = 1_000_000  # a 1 MB secret makes every rewrite of the store long enough for random kills to land in it
SENTINELS = {f"sentinel{n}.crash.example": f"sentinel-secret-{n}" for n in range(3)}
VICTIM = "victim.crash.example"


def payload(key: str, user: str, size: int = 64) -> bytes:
    return json.dumps({"ServerURL": key, "Username": user, "Secret": f"{user}:" + "x" * size}).encode()


def stored_user(key: str) -> str | None:
    """The victim's user as `get` answers it (its secret must belong to that user), or None."""
    result = call("get", key)
    if result.code == 1:
        assert result.out == NOT_FOUND + "\n", result.out
        return None
    got = result.json()
    assert got["Secret"].startswith(got["Username"] + ":"), "a secret from another store"
    return str(got["Username"])


def put_sentinels() -> None:
    for key, secret in SENTINELS.items():
        assert call("store", json.dumps({"ServerURL": key, "Username": "s", "Secret": secret})).code == 0


def check_sentinels_and_store(folder: Path) -> None:
    doc = json.loads((folder / "store.json").read_bytes())  # the file itself always parses
    assert doc["format"] == "docker-credential-switchboard/store/2"
    for key, secret in SENTINELS.items():
        assert call("get", key).json()["Secret"] == secret
    assert lock_is_free(folder / "store.lock"), "a killed writer left the store lock held"


def timed(argv: list[str], data: bytes, env: dict[str, str]) -> float:
    started = time.monotonic()
    result = run_helper(argv, data, env=env)
    assert result.code in (0, 1), result.out
    return time.monotonic() - started


def kill_after(argv: list[str], data: bytes, env: dict[str, str], delay: float) -> int:
    """Start the real executable, SIGKILL it after `delay` s (if still running); its exit status."""
    proc = subprocess.Popen([helper_executable(), *argv], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, bufsize=0)
    stdin = proc.stdin
    assert stdin is not None

    def feed() -> None:  # from a thread, so that the kill can land before the helper has read its input
        try:
            stdin.write(data)
        except BrokenPipeError:
            pass  # killed before reading everything
        try:
            stdin.close()
        except BrokenPipeError:
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    status = proc.wait(timeout=30)
    feeder.join(10)
    return status


def test_a_store_killed_at_random_points_leaves_the_old_or_the_new_value(isolated_home: Path) -> None:
    env, folder, rng = dict(os.environ), data_dir(isolated_home), random.Random()
    put_sentinels()
    assert call("store", payload(VICTIM, "old", BIG)).code == 0
    window = max(timed(["store"], payload(VICTIM, "old", BIG), env) for _ in range(2))
    last, outcomes, killed, temps_seen = "old", {"old": 0, "new": 0}, 0, 0
    for n in range(scaled(30)):
        status = kill_after(["store"], payload(VICTIM, f"new{n}", BIG), env, rng.uniform(0, window * 1.3))
        killed += status == -signal.SIGKILL
        check_sentinels_and_store(folder)
        temps = temp_files(folder)
        assert len(temps) <= 1, f"temp files pile up: {temps}"
        temps_seen += len(temps)
        user = stored_user(VICTIM)
        assert user in (last, f"new{n}"), f"after kill {n}: {user!r}, expected {last!r} or 'new{n}'"
        outcomes["new" if user == f"new{n}" else "old"] += 1
        last = user
    assert call("store", payload("after.crash.example", "u")).code == 0
    assert temp_files(folder) == []  # the next write removed what killed writers left
    figures("store kills", kills=scaled(30), killed_mid_run=killed, read_back_old=outcomes["old"],
            read_back_new=outcomes["new"], temp_files_left_by_kills=temps_seen, window_s=round(window, 3))


def test_an_erase_killed_at_random_points_leaves_the_entry_or_nothing(isolated_home: Path) -> None:
    env, folder, rng = dict(os.environ), data_dir(isolated_home), random.Random()
    put_sentinels()
    assert call("store", payload("ballast.crash.example", "b", BIG)).code == 0  # a big file to rewrite
    assert call("store", payload(VICTIM, "v", 10)).code == 0
    window = max(timed(["erase"], VICTIM.encode(), env) for _ in range(2))
    outcomes, killed = {"kept": 0, "erased": 0}, 0
    for n in range(scaled(30)):
        assert call("store", payload(VICTIM, f"v{n}", 10)).code == 0
        status = kill_after(["erase"], VICTIM.encode(), env, rng.uniform(0, window * 1.3))
        killed += status == -signal.SIGKILL
        check_sentinels_and_store(folder)
        assert len(temp_files(folder)) <= 1
        user = stored_user(VICTIM)
        assert user in (f"v{n}", None)
        outcomes["kept" if user else "erased"] += 1
        assert stored_user("ballast.crash.example") == "b"
    figures("erase kills", kills=scaled(30), killed_mid_run=killed, **outcomes, window_s=round(window, 3))


def test_the_first_store_killed_at_random_points_never_blocks_the_next(isolated_home: Path) -> None:
    env, folder, rng = dict(os.environ), data_dir(isolated_home), random.Random()
    window = max(timed(["store"], payload(VICTIM, "first"), env) for _ in range(2))
    for n in range(scaled(10)):
        shutil.rmtree(folder, ignore_errors=True)
        kill_after(["store"], payload(VICTIM, f"first{n}"), env, rng.uniform(0, window * 1.3))
        if (folder / "store.json").exists():
            json.loads((folder / "store.json").read_bytes())
        assert stored_user(VICTIM) in (f"first{n}", None)
        started = time.monotonic()
        assert call("store", payload("next.crash.example", "next")).code == 0
        assert time.monotonic() - started < 2
        assert stored_user("next.crash.example") == "next"
        assert stored_user(VICTIM) in (f"first{n}", None)
        # (a killed key-file write is the known leak: test_a_killed_first_store_leaves_no_temp_key_file)
        assert [t for t in temp_files(folder) if not t.startswith(".store.key.tmp-")] == []


# -- the token cache ------------------------------------------------------------------------------------



def age_entry(entry: Path, left: float = 60.0) -> str:
    """Put the cached token into its mandatory refresh window (`left` s to live); returns its secret."""
    doc = json.loads(entry.read_bytes())
    doc["expires_at"], doc["obtained_at"] = time.time() + left, time.time() - 12 * 3600 + left
    entry.write_text(json.dumps(doc))
    return str(doc["secret"])


def test_a_token_refresh_killed_at_random_points_leaves_the_old_or_the_new_token(
        isolated_home: Path, fake_ecr: FakeEcr) -> None:
    fake_ecr.delay = 0.3  # the refresh holds the per-key lock across a slow request
    env, folder, rng = aws_env(fake_ecr.url), cache_dir(isolated_home), random.Random()
    assert run_helper("get", ECR_HOST, env=env).code == 0
    entry = next(folder.glob("ecr*.json"))
    key = json.loads(entry.read_bytes())["key"]
    age_entry(entry)
    window = timed(["get"], ECR_HOST.encode(), env)
    outcomes, killed, temps = {"old": 0, "new": 0}, 0, 0
    for n in range(scaled(30)):
        old = age_entry(entry)
        status = kill_after(["get"], ECR_HOST.encode(), env, rng.uniform(0, window * 1.3))
        killed += status == -signal.SIGKILL
        json.loads(entry.read_bytes())  # never torn
        token = TokenCache(str(folder)).read(key)
        assert token is not None, "the cache entry became unreadable"
        if token.secret == old:
            outcomes["old"] += 1
        else:
            assert token.secret.startswith("token-") and int(token.secret[6:]) <= fake_ecr.count()
            assert token.expires_at is not None and token.expires_at > time.time() + 11 * 3600
            outcomes["new"] += 1
        assert lock_is_free(Path(TokenCache(str(folder)).path(key)[:-5] + ".lock")), "a killed refresher kept the lock"
        temps = len(temp_files(folder))
        if n % 5 == 4:  # the next client is served at once
            started = time.monotonic()
            result = run_helper("get", ECR_HOST, env=env)
            assert result.code == 0 and json.loads(result.out)["Secret"].startswith("token-")
            assert time.monotonic() - started < 5
    figures("token refresh kills", kills=scaled(30), killed_mid_run=killed, cache_read_back_old=outcomes["old"],
            cache_read_back_new=outcomes["new"], token_requests=fake_ecr.count(), cache_temp_files_left=temps,
            window_s=round(window, 3))


# -- kills at the worst point: after the temp file's fsync, before or after the rename --------------------

@pytest.mark.parametrize("action, point", [("store", "before-rename"), ("store", "after-rename"),
                                           ("erase", "before-rename"), ("erase", "after-rename")])
def test_a_write_killed_at_the_rename_keeps_the_store_whole(isolated_home: Path, action: str, point: str) -> None:
    folder = data_dir(isolated_home)
    put_sentinels()
    assert call("store", payload(VICTIM, "old")).code == 0
    data = payload(VICTIM, "new") if action == "store" else VICTIM.encode()
    proc = run_killed_at(point, "store.json", [action], data, dict(os.environ))
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    check_sentinels_and_store(folder)
    expected = {("store", "before-rename"): "old", ("store", "after-rename"): "new",
                ("erase", "before-rename"): "old", ("erase", "after-rename"): None}[(action, point)]
    assert stored_user(VICTIM) == expected
    assert len(temp_files(folder)) == (1 if point == "before-rename" else 0)
    started = time.monotonic()
    assert call("store", payload("next.crash.example", "next")).code == 0
    assert time.monotonic() - started < 2, "the dead holder's lock delayed the next store"
    assert temp_files(folder) == []


def test_a_killed_first_store_leaves_no_temp_key_file(isolated_home: Path) -> None:
    folder = data_dir(isolated_home)
    for n in range(3):
        proc = run_killed_at("before-rename", "store.key", ["store"], payload(VICTIM, f"first{n}"),
                             dict(os.environ))
        assert proc.returncode == -signal.SIGKILL
        assert not (folder / "store.json").exists() and not (folder / "store.key").exists()
    assert call("store", payload(VICTIM, "ok")).code == 0
    assert stored_user(VICTIM) == "ok"
    assert temp_files(folder) == []


def test_a_refresh_killed_at_the_rename_keeps_the_old_token_and_frees_the_lock(
        isolated_home: Path, fake_ecr: FakeEcr) -> None:
    env, folder = aws_env(fake_ecr.url), cache_dir(isolated_home)
    assert run_helper("get", ECR_HOST, env=env).code == 0
    entry = next(folder.glob("ecr*.json"))
    old = age_entry(entry)
    proc = run_killed_at("before-rename", "ecr", ["get"], ECR_HOST.encode(), env)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert json.loads(entry.read_bytes())["secret"] == old
    started = time.monotonic()
    result = run_helper("get", ECR_HOST, env=env)
    assert result.code == 0 and json.loads(result.out)["Secret"] == f"token-{fake_ecr.count()}"
    assert time.monotonic() - started < 5, "the killed refresher's lock delayed the next get"


def test_refreshes_killed_at_the_rename_leave_no_temp_files(isolated_home: Path, fake_ecr: FakeEcr) -> None:
    env, folder = aws_env(fake_ecr.url), cache_dir(isolated_home)
    assert run_helper("get", ECR_HOST, env=env).code == 0
    entry = next(folder.glob("ecr*.json"))
    for _ in range(3):
        age_entry(entry)
        assert run_killed_at("before-rename", "ecr", ["get"], ECR_HOST.encode(), env).returncode == -signal.SIGKILL
    for _ in range(2):  # later refreshes, under the same per-key lock, should clean up
        age_entry(entry)
        assert run_helper("get", ECR_HOST, env=env).code == 0
    assert temp_files(folder) == []
