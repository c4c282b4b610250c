"""The encrypted file store under faults: damage, wrong keys, passphrases, parallel writers, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import NOT_FOUND, call, helper_executable, run_helper


def data_dir(home: Path) -> Path:
    return home / ".local/share/docker-credential-switchboard"


def store(key: str, user: str = "u", secret: str = "s") -> int:
    return call("store", json.dumps({"ServerURL": key, "Username": user, "Secret": secret})).code


def test_a_damaged_store_is_reported_and_never_overwritten(isolated_home: Path) -> None:
    assert store("a.example") == 0
    path = data_dir(isolated_home) / "store.json"
    path.write_bytes(b"{ damaged")
    for action, data in (("get", "a.example"), ("store", '{"ServerURL":"b.example","Username":"u","Secret":"s"}'),
                         ("erase", "a.example")):
        result = call(action, data)
        assert result.code == 1 and "is damaged or not a switchboard store; nothing was changed" in result.out
        assert result.out.count("\n") == 1
    assert path.read_bytes() == b"{ damaged"
    assert call("list").out == "{}\n"  # list never fails


def test_one_damaged_entry_hides_nothing_else(isolated_home: Path) -> None:
    store("a.example", "ua")
    store("b.example", "ub")
    path = data_dir(isolated_home) / "store.json"
    doc = json.loads(path.read_text())
    doc["entries"]["a.example"]["secret"] = "AAAA" + doc["entries"]["a.example"]["secret"][4:]
    path.write_text(json.dumps(doc))
    assert call("get", "b.example").json()["Username"] == "ub"
    broken = call("get", "a.example")
    assert broken.code == 1 and broken.out.startswith("cannot decrypt")
    assert set(call("list").json()) == {"a.example", "b.example"}


def test_a_missing_key_file_is_an_error_that_keeps_the_store(isolated_home: Path) -> None:
    store("a.example")
    (data_dir(isolated_home) / "store.key").unlink()
    before = (data_dir(isolated_home) / "store.json").read_bytes()
    for action, data in (("get", "a.example"), ("store", '{"ServerURL":"b.example","Username":"u","Secret":"s"}')):
        result = call(action, data)
        assert result.code == 1 and "store.key is missing or damaged" in result.out
    assert (data_dir(isolated_home) / "store.json").read_bytes() == before


def test_passphrase_store_needs_the_same_passphrase(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_PASSPHRASE", "correct horse")
    assert store("a.example", "u", "pp-secret") == 0
    assert not (data_dir(isolated_home) / "store.key").exists()
    assert call("get", "a.example").json()["Secret"] == "pp-secret"
    monkeypatch.setenv("SWITCHBOARD_PASSPHRASE", "wrong")
    assert call("get", "a.example").out.startswith("cannot decrypt: wrong key")
    result = call("store", '{"ServerURL":"b.example","Username":"u","Secret":"s"}')
    assert result.code == 1 and result.out.startswith("cannot decrypt: wrong key")
    monkeypatch.delenv("SWITCHBOARD_PASSPHRASE")
    assert call("get", "a.example").out == f"the store {data_dir(isolated_home) / 'store.json'} is protected by " \
                                          "a passphrase: set SWITCHBOARD_PASSPHRASE\n"
    assert call("list").json() == {"a.example": "u"}


def test_an_unwritable_data_folder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(blocker / "sub"))
    result = call("store", '{"ServerURL":"a.example","Username":"u","Secret":"s"}')
    assert result.code == 1 and "set SWITCHBOARD_DATA_DIR to a writable folder" in result.out


def test_get_and_list_create_no_files(isolated_home: Path) -> None:
    assert call("get", "a.example").out == NOT_FOUND + "\n"
    call("list")
    call("erase", "a.example")
    assert not data_dir(isolated_home).exists()


def test_32_parallel_processes_storing_different_keys_all_land(isolated_home: Path) -> None:
    def one(n: int) -> int:
        payload = json.dumps({"ServerURL": f"r{n}.example", "Username": f"u{n}", "Secret": f"s{n}"})
        return run_helper("store", payload, env=dict(os.environ)).code

    with ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(one, range(32)))
    assert codes == [0] * 32
    listed = call("list").json()
    assert listed == {f"r{n}.example": f"u{n}" for n in range(32)}
    for n in range(0, 32, 7):
        assert call("get", f"r{n}.example").json()["Secret"] == f"s{n}"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_store_killed_midway_leaves_the_old_or_the_new_value(isolated_home: Path) -> None:
    assert store("victim.example", "old", "old-secret") == 0
    big = "n" * 2_000_000  # a large secret makes the write window wide enough to hit
    outcomes = set()
    for n in range(12):
        proc = subprocess.Popen([helper_executable(), "store"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=dict(os.environ))
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"ServerURL": "victim.example", "Username": f"new{n}", "Secret": big}).encode())
        proc.stdin.close()
        time.sleep(0.03 + 0.02 * n)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        got = call("get", "victim.example")
        assert got.code == 0, got.out
        user = got.json()["Username"]
        assert user == "old" or user.startswith("new")
        outcomes.add("old" if user == "old" else "new")
        assert store("other.example") == 0  # the lock was released by the kill
    assert call("list").json()["other.example"] == "u"
    assert not [p for p in data_dir(isolated_home).iterdir() if ".tmp-" in p.name]
