"""The encrypted store against someone who can write its folder but does not know its passphrase (a
passphrase store on a shared volume), and the passphrase against the helper's own children.

Each attack is performed on the files and shown to fail; each has a control that shows it would have
worked against the previous format or lookup, or that the check which proves the failure can fail.
Format 1 stores are written here exactly as the previous version wrote them (constants copied, not
imported), so that the migration is tested against the real old format.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helper import crypto, hosts, keychain
from helper.backends import file_store
from helper.backends.base import Credentials
from helper.backends.keyring_store import KeyringStore
from helper.errors import CredentialsNotFound, StoreError
from tests.conftest import NOT_FOUND, ROOT, call, run_helper
from tests.fake_aws import ECR_HOST, FakeEcr
from tests.test_backend_contract import MemoryKeyring

PASSPHRASE = "tamper-test passphrase"
V1_FORMAT = "docker-credential-switchboard/store/1"  # the previous version's constants, as it wrote them
V1_CHECK_AAD = b"key-check"
VICTIM_SECRET = "victim-new-secret-Hq83Zt"


def data_dir(home: Path) -> Path:
    return home / ".local/share/docker-credential-switchboard"


def payload(key: str, user: str, secret: str) -> str:
    return json.dumps({"ServerURL": key, "Username": user, "Secret": secret})


def read_doc(home: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((data_dir(home) / "store.json").read_text())
    return doc


def write_doc(home: Path, doc: dict[str, Any]) -> None:
    (data_dir(home) / "store.json").write_text(json.dumps(doc, indent=1, sort_keys=True))


def v1_aad(raw: str, username: str) -> bytes:
    return f"{raw}\0{username}".encode()


def old_find_entry(entries: dict[str, dict[str, Any]], key: hosts.RegistryKey) -> str | None:
    """The previous version's lookup, which trusted each entry's stored `canonical`."""
    if key.raw in entries:
        return key.raw
    for candidate in key.candidates():
        best: tuple[float, str] | None = None
        for raw, entry in entries.items():
            if isinstance(entry, dict) and entry.get("canonical") == candidate:
                rank = (float(entry.get("stored", 0.0)), raw)
                best = rank if best is None or rank > best else best
        if best is not None:
            return best[1]
    return None


def write_v1_store(folder: Path, key: bytes, header: dict[str, object],
                   entries: dict[str, tuple[str, str]]) -> None:
    """A format 1 store, as the previous version's EncryptedFileStore.store wrote it."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    doc = {"format": V1_FORMAT, "key": header, "check": crypto.seal(key, crypto.CHECK_PLAINTEXT, V1_CHECK_AAD),
           "entries": {raw: {"username": user, "secret": crypto.seal(key, secret.encode(), v1_aad(raw, user)),
                             "canonical": hosts.parse(raw).canonical, "stored": time.time() + n}
                       for n, (raw, (user, secret)) in enumerate(entries.items())}}
    path = folder / "store.json"
    path.write_text(json.dumps(doc, indent=1, sort_keys=True))
    path.chmod(0o600)


def passphrase_header(salt: bytes) -> dict[str, object]:
    return {"source": "passphrase", "kdf": "scrypt", "salt": crypto.b64(salt), "n": crypto.SCRYPT_N,
            "r": crypto.SCRYPT_R, "p": crypto.SCRYPT_P}


def plaintexts_under(key: bytes, doc: dict[str, Any]) -> list[bytes]:
    """Everything in the store's entries that `key` opens, under either format's associated data."""
    found = []
    for raw, entry in doc["entries"].items():
        user, sealed = entry.get("username"), entry.get("secret")
        for aad in (v1_aad(raw, user), file_store.entry_aad(file_store.FORMAT, doc["key"], raw, user)):
            try:
                found.append(crypto.open_sealed(key, sealed, aad))
            except StoreError:
                pass
    return found


def one_line_refusal(result: Any) -> None:
    assert result.code == 1 and result.out.count("\n") == 1, result.out
    assert VICTIM_SECRET not in result.out and "ghcr-secret" not in result.out


@pytest.fixture
def victim(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A passphrase store holding the ghcr.io secret, the passphrase set in this process."""
    monkeypatch.setenv("SWITCHBOARD_PASSPHRASE", PASSPHRASE)
    assert call("store", payload("ghcr.io", "octocat", "ghcr-secret")).code == 0
    assert read_doc(isolated_home)["format"] == file_store.FORMAT
    return isolated_home


# -- (a) a swapped key source ------------------------------------------------------------------------------

def swap_key_source(home: Path, doc_format: str) -> bytes:
    """The attack: her key source in the header, her check, her store.key; the victim's entries kept."""
    attacker_key = crypto.new_key()
    doc = read_doc(home)
    header: dict[str, object] = {"source": "keyfile"}
    aad = V1_CHECK_AAD if doc_format == V1_FORMAT else file_store.check_aad(doc_format, header)
    doc.update({"format": doc_format, "key": header, "check": crypto.seal(attacker_key, crypto.CHECK_PLAINTEXT, aad)})
    write_doc(home, doc)
    key_file = data_dir(home) / "store.key"
    key_file.write_bytes(attacker_key)
    key_file.chmod(0o600)
    return attacker_key


@pytest.mark.parametrize("doc_format", [V1_FORMAT, file_store.FORMAT], ids=["format-1", "format-2"])
def test_a_swapped_key_source_is_refused_and_nothing_is_sealed_under_her_key(
        victim: Path, monkeypatch: pytest.MonkeyPatch, doc_format: str) -> None:
    attacker_key = swap_key_source(victim, doc_format)
    before = (data_dir(victim) / "store.json").read_bytes()
    result = call("store", payload("new.example", "me", VICTIM_SECRET))
    one_line_refusal(result)
    assert result.out.startswith("SWITCHBOARD_PASSPHRASE is set but the store ") and "refused" in result.out
    # the real executable, a fresh process (the passphrase taken out of its environment at start): the same
    env = dict(os.environ, SWITCHBOARD_PASSPHRASE=PASSPHRASE)
    one_line_refusal(run_helper("store", payload("new.example", "me", VICTIM_SECRET), env=env))
    one_line_refusal(run_helper("get", "ghcr.io", env=env))
    one_line_refusal(call("erase", "ghcr.io"))
    assert call("list").out == "{}\n"
    assert (data_dir(victim) / "store.json").read_bytes() == before
    assert not any(VICTIM_SECRET.encode() in plain for plain in plaintexts_under(attacker_key, read_doc(victim)))

    # control: without a passphrase to insist on, her files are a valid key-file store, the victim's secret is
    # sealed under her key, and decrypting with it finds it: the proof above can fail
    monkeypatch.delenv("SWITCHBOARD_PASSPHRASE")
    assert call("store", payload("new.example", "me", VICTIM_SECRET)).code == 0
    assert VICTIM_SECRET.encode() in plaintexts_under(attacker_key, read_doc(victim))


def test_a_keyring_header_is_refused_too(victim: Path) -> None:
    doc = read_doc(victim)
    doc["key"] = {"source": "keyring", "item": file_store.KEYRING_ITEM_PREFIX + "00ff00ff00ff00ff"}
    write_doc(victim, doc)
    before = (data_dir(victim) / "store.json").read_bytes()
    result = call("store", payload("new.example", "me", VICTIM_SECRET))
    one_line_refusal(result)
    assert "its header names 'keyring'" in result.out
    assert (data_dir(victim) / "store.json").read_bytes() == before


# -- (b) an edited canonical spelling ----------------------------------------------------------------------

def test_an_edited_canonical_never_serves_ghcr_to_another_host(victim: Path) -> None:
    doc = read_doc(victim)
    doc["entries"]["ghcr.io"]["canonical"] = "attacker.example"
    write_doc(victim, doc)
    attacker = hosts.parse("attacker.example")
    assert old_find_entry(doc["entries"], attacker) == "ghcr.io"  # control: the previous lookup served it
    assert call("get", "attacker.example").out == NOT_FOUND + "\n"
    assert call("get", "ghcr.io").json()["Secret"] == "ghcr-secret"
    assert call("erase", "attacker.example").code == 0
    assert call("get", "ghcr.io").json()["Secret"] == "ghcr-secret"


def test_an_entry_moved_to_another_key_does_not_open(victim: Path) -> None:
    doc = read_doc(victim)
    doc["entries"]["attacker.example"] = doc["entries"]["ghcr.io"]
    write_doc(victim, doc)
    result = call("get", "attacker.example")
    one_line_refusal(result)
    assert result.out.startswith("cannot decrypt")
    assert call("get", "ghcr.io").json()["Secret"] == "ghcr-secret"


def test_an_edited_canonical_in_an_old_format_store_is_not_trusted_either(isolated_home: Path) -> None:
    key = crypto.new_key()
    folder = data_dir(isolated_home)
    write_v1_store(folder, key, {"source": "keyfile"}, {"ghcr.io": ("octocat", "ghcr-secret")})
    (folder / "store.key").write_bytes(key)
    (folder / "store.key").chmod(0o600)
    doc = read_doc(isolated_home)
    doc["entries"]["ghcr.io"]["canonical"] = "attacker.example"
    write_doc(isolated_home, doc)
    assert old_find_entry(doc["entries"], hosts.parse("attacker.example")) == "ghcr.io"  # control
    assert call("get", "attacker.example").out == NOT_FOUND + "\n"
    assert call("get", "ghcr.io").json()["Secret"] == "ghcr-secret"


# -- (c) an edited header ----------------------------------------------------------------------------------

@pytest.mark.parametrize("edit", [
    {"n": 2**10}, {"n": 2**30}, {"r": 1}, {"p": 2}, {"p": True}, {"salt": crypto.b64(b"\x01" * 16)},
    {"kdf": "none"}, {"note": "an added field"}, {"format": V1_FORMAT},
], ids=["n-low", "n-huge", "r", "p", "p-bool", "salt", "kdf", "added-field", "format-downgrade"])
def test_an_edited_header_is_refused_and_never_overwritten(victim: Path, edit: dict[str, object]) -> None:
    original = (data_dir(victim) / "store.json").read_bytes()
    doc = read_doc(victim)
    for name, value in edit.items():
        (doc if name == "format" else doc["key"])[name] = value
    write_doc(victim, doc)
    tampered = (data_dir(victim) / "store.json").read_bytes()
    started = time.monotonic()
    for action, data in (("store", payload("new.example", "me", VICTIM_SECRET)), ("get", "ghcr.io")):
        one_line_refusal(call(action, data))
    assert time.monotonic() - started < 10, "a header must not make the KDF arbitrarily slow"
    assert (data_dir(victim) / "store.json").read_bytes() == tampered
    # control: the same store, unedited, opens and takes the write
    (data_dir(victim) / "store.json").write_bytes(original)
    assert call("get", "ghcr.io").json()["Secret"] == "ghcr-secret"
    assert call("store", payload("new.example", "me", VICTIM_SECRET)).code == 0


# -- (d) old stores keep working, and migrate -------------------------------------------------------------

OLD_ENTRIES = {"ghcr.io": ("octocat", "ghcr-secret"), "https://index.docker.io/v1/": ("hubber", "hub-secret"),
               "registry.example:5000": ("robot", "registry-secret")}


@pytest.mark.parametrize("source", ["passphrase", "keyfile"])
def test_an_old_format_store_reads_and_the_next_store_migrates_it(isolated_home: Path, source: str) -> None:
    folder = data_dir(isolated_home)
    env = dict(os.environ)
    if source == "passphrase":
        salt = os.urandom(16)
        key = crypto.derive_key(PASSPHRASE, salt)
        header = passphrase_header(salt)
        env["SWITCHBOARD_PASSPHRASE"] = PASSPHRASE
    else:
        key, header = crypto.new_key(), {"source": "keyfile"}
        folder.mkdir(mode=0o700, parents=True)
        (folder / "store.key").write_bytes(key)
        (folder / "store.key").chmod(0o600)
    write_v1_store(folder, key, header, OLD_ENTRIES)
    doc = read_doc(isolated_home)
    doc["entries"]["damaged.example"] = {"username": "d", "secret": "AAAA" + doc["entries"]["ghcr.io"]["secret"][4:],
                                         "canonical": "damaged.example", "stored": 1.0}
    write_doc(isolated_home, doc)

    def get(key: str) -> dict[str, str]:
        result = run_helper("get", key, env=env)
        assert result.code == 0, result.out
        answer: dict[str, str] = result.json()
        return answer

    # reads as it is, aliases included, and a read writes nothing
    assert get("ghcr.io")["Secret"] == "ghcr-secret" and get("docker.io")["Secret"] == "hub-secret"
    assert read_doc(isolated_home)["format"] == V1_FORMAT
    # control: format 1 does not authenticate its header: an added field changes nothing for it
    doc["key"]["note"] = "unauthenticated"
    write_doc(isolated_home, doc)
    assert get("ghcr.io")["Secret"] == "ghcr-secret"
    del doc["key"]["note"]
    write_doc(isolated_home, doc)

    assert run_helper("store", payload("new.example", "me", VICTIM_SECRET), env=env).code == 0
    migrated = read_doc(isolated_home)
    assert migrated["format"] == file_store.FORMAT and migrated["key"] == header  # the same key, the same salt
    assert crypto.open_sealed(key, migrated["check"], file_store.check_aad(file_store.FORMAT, header)) == \
        crypto.CHECK_PLAINTEXT
    for raw, (user, secret) in OLD_ENTRIES.items():
        entry = migrated["entries"][raw]
        assert "canonical" not in entry
        assert crypto.open_sealed(key, entry["secret"], file_store.entry_aad(file_store.FORMAT, header, raw, user)) \
            == secret.encode()
        with pytest.raises(StoreError):  # sealed again: the old associated data no longer opens it
            crypto.open_sealed(key, entry["secret"], v1_aad(raw, user))
        assert get(raw) == {"ServerURL": raw, "Username": user, "Secret": secret}
    assert get("docker.io")["Secret"] == "hub-secret" and get("new.example")["Secret"] == VICTIM_SECRET
    assert migrated["entries"]["damaged.example"] == doc["entries"]["damaged.example"]  # kept, byte for byte
    # and now the header is authenticated
    migrated["key"]["note"] = "added"
    write_doc(isolated_home, migrated)
    assert run_helper("get", "ghcr.io", env=env).out.startswith("cannot decrypt")


def test_an_old_format_store_that_does_not_authenticate_is_never_migrated(
        isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    salt = os.urandom(16)
    write_v1_store(data_dir(isolated_home), crypto.derive_key(PASSPHRASE, salt), passphrase_header(salt),
                   OLD_ENTRIES)
    before = (data_dir(isolated_home) / "store.json").read_bytes()
    monkeypatch.setenv("SWITCHBOARD_PASSPHRASE", "not the passphrase")
    one_line_refusal(call("store", payload("new.example", "me", VICTIM_SECRET)))
    assert (data_dir(isolated_home) / "store.json").read_bytes() == before
    monkeypatch.setenv("SWITCHBOARD_PASSPHRASE", PASSPHRASE)  # control: the right one migrates it
    assert call("store", payload("new.example", "me", VICTIM_SECRET)).code == 0
    assert read_doc(isolated_home)["format"] == file_store.FORMAT


# -- (e) the keychain store's index ------------------------------------------------------------------------

def test_an_edited_canonical_in_the_keyring_index_is_not_trusted(tmp_path: Path) -> None:
    memory = MemoryKeyring()
    keychain._cached[:] = [keychain.KeyringKeychain(memory)]
    store = KeyringStore(str(tmp_path / "data"))
    store.store(hosts.parse("ghcr.io"), Credentials("octocat", "ghcr-secret"))
    index_path = tmp_path / "data" / "keyring-index.json"
    index = json.loads(index_path.read_text())
    index["ghcr.io"]["canonical"] = "attacker.example"
    index_path.write_text(json.dumps(index))
    attacker = hosts.parse("attacker.example")
    assert old_find_entry(index, attacker) == "ghcr.io"  # control: the previous lookup followed it
    with pytest.raises(CredentialsNotFound):
        store.get(attacker)
    assert store.get(hosts.parse("ghcr.io")) == Credentials("octocat", "ghcr-secret")
    store.erase(attacker)
    assert store.get(hosts.parse("ghcr.io")) == Credentials("octocat", "ghcr-secret")
    assert any("ghcr-secret" in value for value in memory.items.values())


# -- (f) the passphrase never reaches botocore's credential_process ------------------------------------------

RECORDING_PROCESS = """#!{python}
import json, os
with open({record!r}, "a") as out:
    out.write(json.dumps(dict(os.environ)) + "\\n")
print(json.dumps({{"Version": 1, "AccessKeyId": "AKIAPROCESS", "SecretAccessKey": "s"}}))
"""

IN_ONE_PROCESS = """
import io, json, sys
from helper import cli

def run(action, data):
    out = io.StringIO()
    code = cli.main([action], io.BytesIO(data.encode()), out)
    return [code, out.getvalue()]

print(json.dumps([run("store", sys.argv[1]), run("get", sys.argv[2]), run("get", "ghcr.io")]))
"""


def test_the_passphrase_never_reaches_a_credential_process(isolated_home: Path, fake_ecr: FakeEcr,
                                                            tmp_path: Path) -> None:
    record = tmp_path / "process-environments.jsonl"
    script = tmp_path / "credential-process"
    script.write_text(RECORDING_PROCESS.format(python=sys.executable, record=str(record)))
    script.chmod(0o755)
    (isolated_home / ".aws").mkdir()
    (isolated_home / ".aws/config").write_text(f"[default]\ncredential_process = {script}\n")
    env = dict(os.environ, SWITCHBOARD_PASSPHRASE=PASSPHRASE, AWS_ENDPOINT_URL=fake_ecr.url, AWS_REGION="us-east-1",
               AWS_ECR_DISABLE_CACHE="1", TAMPER_CANARY="inherited")

    # across processes, the real executable: store, an ECR get through credential_process, the stored secret
    assert run_helper("store", payload("ghcr.io", "octocat", "ghcr-secret"), env=env).code == 0
    ecr = run_helper("get", ECR_HOST, env=env)
    assert ecr.code == 0 and ecr.json()["Username"] == "AWS", ecr.out
    assert run_helper("get", "ghcr.io", env=env).json()["Secret"] == "ghcr-secret"
    # and in one process: a store, an ECR get, and a get that still needs the passphrase
    proc = subprocess.run([sys.executable, "-c", IN_ONE_PROCESS, payload("ghcr.io", "octocat", "ghcr-secret-2"),
                           ECR_HOST], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    stored, got_ecr, got_store = json.loads(proc.stdout)
    assert stored[0] == 0 and got_ecr[0] == 0 and json.loads(got_ecr[1])["Username"] == "AWS"
    assert got_store[0] == 0 and json.loads(got_store[1])["Secret"] == "ghcr-secret-2"
    assert fake_ecr.key_ids == ["AKIAPROCESS", "AKIAPROCESS"]

    seen = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(seen) == 2
    for environment in seen:
        assert environment.get("TAMPER_CANARY") == "inherited"  # control: the record holds what the child inherited
        assert "SWITCHBOARD_PASSPHRASE" not in environment
        assert PASSPHRASE not in json.dumps(environment)
