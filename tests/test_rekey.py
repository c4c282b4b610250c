"""`rekey`: every entry of the encrypted file store sealed again under the key source the environment names,
atomically, nothing lost; a failure before the rename, a wrong old passphrase or an unreadable entry changes
nothing; no secret is ever printed. Driven through the real executable (a fresh process takes the passphrase
out of its environment at start), except for the injected failures, which run in-process."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from helper import crypto, fsutil
from tests.conftest import call, run_helper

PASSPHRASE = "rekey-test passphrase 7Qw"
OLD_PASSPHRASE = "the old passphrase Lk2"
ENTRIES = {"ghcr.io": ("octocat", "ghcr-secret-Zr81"), "127.0.0.1:5000": ("alice", "local-secret-Pq55"),
           "https://index.docker.io/v1/": ("bob", "hub-secret-Mn02")}
REAL_ATOMIC_WRITE = fsutil.atomic_write
SECRETS = [secret for _, secret in ENTRIES.values()] + [PASSPHRASE, OLD_PASSPHRASE]


def folder(home: Path) -> Path:
    return home / ".local/share/docker-credential-switchboard"


def env(passphrase: str | None = None, **extra: str) -> dict[str, str]:
    made = {name: value for name, value in os.environ.items() if name != "SWITCHBOARD_PASSPHRASE"}
    if passphrase is not None:
        made["SWITCHBOARD_PASSPHRASE"] = passphrase
    made["SWITCHBOARD_STORE"] = "file"
    return made | extra


def fill(passphrase: str | None = None) -> None:
    for key, (user, secret) in ENTRIES.items():
        stored = run_helper("store", json.dumps({"ServerURL": key, "Username": user, "Secret": secret}),
                            env=env(passphrase))
        assert stored.code == 0, stored.out


def header(home: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((folder(home) / "store.json").read_text())
    return dict(doc["key"])


def snapshot(home: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder(home).iterdir() if path.name != "store.lock"}


def assert_all_read_back(passphrase: str | None) -> None:
    for key, (user, secret) in ENTRIES.items():
        got = run_helper("get", key, env=env(passphrase))
        assert got.code == 0 and json.loads(got.out) == {"ServerURL": key, "Username": user, "Secret": secret}, got.out


def assert_clean(*results: Any) -> None:
    for result in results:
        for secret in SECRETS:
            assert secret not in result.out and secret not in result.err


def test_keyfile_to_passphrase_reseals_every_entry_and_only_the_passphrase_opens_it(isolated_home: Path) -> None:
    fill()
    assert header(isolated_home) == {"source": "keyfile"} and (folder(isolated_home) / "store.key").exists()
    dry = run_helper(["rekey", "--dry-run"], env=env(PASSPHRASE))
    assert dry.code == 0 and dry.out.startswith("Would re-seal 3 entries") and "nothing changed" in dry.out, dry.out
    assert header(isolated_home) == {"source": "keyfile"}
    done = run_helper("rekey", env=env(PASSPHRASE))
    assert done.code == 0 and done.out.startswith("Re-sealed 3 entries"), done.out
    assert "(keyfile) -> a passphrase (passphrase)" in done.out
    assert_clean(dry, done)
    assert header(isolated_home)["source"] == "passphrase"
    assert not (folder(isolated_home) / "store.key").exists()  # removed once the new store was in place
    assert_all_read_back(PASSPHRASE)
    for key in ENTRIES:  # none without it, none with another one
        without = run_helper("get", key, env=env())
        assert without.code == 1 and "protected by a passphrase" in without.out, without.out
        wrong = run_helper("get", key, env=env("not the passphrase"))
        assert wrong.code == 1 and "cannot decrypt" in wrong.out, wrong.out
        assert_clean(without, wrong)
    # a second run re-salts under the same passphrase and loses nothing
    salt = header(isolated_home)["salt"]
    again = run_helper("rekey", env=env(PASSPHRASE))
    assert again.code == 0 and "Re-sealed 3 entries" in again.out and header(isolated_home)["salt"] != salt
    assert_all_read_back(PASSPHRASE)


def test_passphrase_to_keyfile_with_the_old_passphrase_on_stdin(isolated_home: Path) -> None:
    fill(OLD_PASSPHRASE)
    assert header(isolated_home)["source"] == "passphrase"
    done = run_helper(["rekey", "--old-passphrase-stdin"], OLD_PASSPHRASE + "\n", env=env())
    assert done.code == 0 and "a passphrase (passphrase) -> the key file (keyfile)" in done.out, done.out
    assert_clean(done)
    assert header(isolated_home) == {"source": "keyfile"}
    assert len((folder(isolated_home) / "store.key").read_bytes()) == crypto.KEY_BYTES
    assert_all_read_back(None)
    refused = run_helper("get", "ghcr.io", env=env(OLD_PASSPHRASE))  # a passphrase no longer protects it
    assert refused.code == 1 and "not protected by a passphrase" in refused.out


def test_changing_the_passphrase(isolated_home: Path) -> None:
    fill(OLD_PASSPHRASE)
    done = run_helper(["rekey", "--old-passphrase-stdin"], OLD_PASSPHRASE, env=env(PASSPHRASE))
    assert done.code == 0 and "Re-sealed 3 entries" in done.out, done.out
    assert_all_read_back(PASSPHRASE)
    assert run_helper("get", "ghcr.io", env=env(OLD_PASSPHRASE)).code == 1


@pytest.mark.parametrize("given", ["wrong", "none"])
def test_a_wrong_or_missing_old_passphrase_changes_nothing(isolated_home: Path, given: str) -> None:
    fill(OLD_PASSPHRASE)
    before = snapshot(isolated_home)
    if given == "wrong":
        result = run_helper(["rekey", "--old-passphrase-stdin"], "not it", env=env())
        assert "does not open" in result.out
    else:  # no stdin flag, no terminal, no SWITCHBOARD_PASSPHRASE
        result = run_helper("rekey", None, env=env())
        assert "--old-passphrase-stdin" in result.out
    assert result.code == 1 and result.out.count("\n") == 1, result.out
    assert_clean(result)
    assert snapshot(isolated_home) == before
    assert_all_read_back(OLD_PASSPHRASE)


def test_an_unreadable_entry_refuses_the_rekey_unless_dropped(isolated_home: Path) -> None:
    fill()
    doc = json.loads((folder(isolated_home) / "store.json").read_text())
    doc["entries"]["ghcr.io"]["username"] = "mallory"  # bound to its username: no longer opens
    (folder(isolated_home) / "store.json").write_text(json.dumps(doc))
    before = snapshot(isolated_home)
    refused = run_helper("rekey", env=env(PASSPHRASE))
    assert refused.code == 1 and refused.out.count("\n") == 1 and "ghcr.io" in refused.out, refused.out
    assert "--drop-unreadable" in refused.out and snapshot(isolated_home) == before
    dropped = run_helper(["rekey", "--drop-unreadable"], env=env(PASSPHRASE))
    assert dropped.code == 0 and "Re-sealed 2 entries" in dropped.out and "Dropped 1 unreadable: ghcr.io" in dropped.out
    assert_clean(refused, dropped)
    for key in ("127.0.0.1:5000", "https://index.docker.io/v1/"):
        assert json.loads(run_helper("get", key, env=env(PASSPHRASE)).out)["Secret"] == ENTRIES[key][1]
    assert "ghcr.io" not in json.loads((folder(isolated_home) / "store.json").read_text())["entries"]


def test_nothing_to_do_no_store_and_the_keyring_store(isolated_home: Path) -> None:
    nothing = run_helper("rekey", env=env(PASSPHRASE))
    assert nothing.code == 0 and nothing.out.startswith("Nothing to rekey"), nothing.out
    assert not (folder(isolated_home) / "store.json").exists()
    fill()
    before = snapshot(isolated_home)
    same = run_helper("rekey", env=env())
    assert same.code == 0 and "already under the key file" in same.out and snapshot(isolated_home) == before
    keyring = run_helper("rekey", env=env(PASSPHRASE, SWITCHBOARD_STORE="keyring"))
    assert keyring.code == 1 and keyring.out.count("\n") == 1 and "file store only" in keyring.out, keyring.out
    assert snapshot(isolated_home) == before


# -- a failure before the rename, in-process ---------------------------------------------------------------------

def fail_on_store_json(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the write of store.json fail (the rename never happens); the key file is still written."""
    real = REAL_ATOMIC_WRITE
    seen: list[str] = []

    def failing(path: str, data: bytes, durable: bool = True) -> None:
        seen.append(os.path.basename(path))
        if path.endswith("store.json"):
            raise OSError(28, "No space left on device")
        real(path, data, durable)

    monkeypatch.setattr(fsutil, "atomic_write", failing)
    return seen


def test_a_failure_before_the_rename_leaves_the_keyfile_store_whole(isolated_home: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_STORE", "file")
    fill()
    before = snapshot(isolated_home)
    seen = fail_on_store_json(monkeypatch)
    monkeypatch.setenv("SWITCHBOARD_PASSPHRASE", PASSPHRASE)
    failed = call("rekey")
    assert failed.code == 1 and "cannot write the store" in failed.out and seen == ["store.json"], failed.out
    assert_clean(failed)
    assert snapshot(isolated_home) == before  # store.json and store.key as they were
    assert_all_read_back(None)
    # control: the same rekey without the failure does change the store
    monkeypatch.setattr(fsutil, "atomic_write", REAL_ATOMIC_WRITE)
    assert call("rekey").code == 0 and snapshot(isolated_home) != before
    assert_all_read_back(PASSPHRASE)


def test_a_failure_before_the_rename_leaves_the_passphrase_store_whole(isolated_home: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_STORE", "file")
    fill(OLD_PASSPHRASE)
    before = snapshot(isolated_home)
    seen = fail_on_store_json(monkeypatch)
    failed = call(["rekey", "--old-passphrase-stdin"], OLD_PASSPHRASE)
    assert failed.code == 1 and seen == ["store.key", "store.json"], (failed.out, seen)
    assert snapshot(isolated_home) == before  # the new key file taken back; the old store untouched
    assert_all_read_back(OLD_PASSPHRASE)
