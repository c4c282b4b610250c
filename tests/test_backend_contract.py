"""One contract every writable backend passes (the shape of keyring's backend tests and
docker-credential-helpers' per-backend tests): store, get, overwrite, erase, list, aliases, big secrets."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from helper import hosts, keychain
from helper.backends.base import Backend, Credentials
from helper.backends.delegate import DelegateBackend
from helper.backends.file_store import EncryptedFileStore
from helper.backends.keyring_store import KeyringStore
from helper.errors import CredentialsNotFound
from tests.conftest import helper_executable


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring standing in for an OS keychain (the real one is tested against gnome-keyring)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


def key(text: str) -> hosts.RegistryKey:
    return hosts.parse(text)


class BackendContract:
    """Subclass and provide `backend`."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        raise NotImplementedError

    def test_get_of_a_missing_key_is_not_found(self, backend: Backend) -> None:
        with pytest.raises(CredentialsNotFound):
            backend.get(key("missing.example"))

    def test_store_then_get(self, backend: Backend) -> None:
        backend.store(key("r.example:5000"), Credentials("u", "s"))
        assert backend.get(key("r.example:5000")) == Credentials("u", "s")

    def test_store_is_an_upsert(self, backend: Backend) -> None:
        backend.store(key("r.example"), Credentials("u1", "s1"))
        backend.store(key("r.example"), Credentials("u2", "s2"))
        assert backend.get(key("r.example")) == Credentials("u2", "s2")
        assert backend.list() == {"r.example": "u2"}

    def test_erase_then_get_is_not_found_and_erase_of_nothing_succeeds(self, backend: Backend) -> None:
        backend.store(key("r.example"), Credentials("u", "s"))
        backend.erase(key("r.example"))
        with pytest.raises(CredentialsNotFound):
            backend.get(key("r.example"))
        backend.erase(key("r.example"))
        backend.erase(key("never.example"))

    def test_list_is_empty_after_erasing_everything(self, backend: Backend) -> None:
        for name in ("a.example", "b.example", "https://index.docker.io/v1/"):
            backend.store(key(name), Credentials("user-" + name, "s"))
        assert backend.list() == {"a.example": "user-a.example", "b.example": "user-b.example",
                                  "https://index.docker.io/v1/": "user-https://index.docker.io/v1/"}
        for name in ("a.example", "b.example", "https://index.docker.io/v1/"):
            backend.erase(key(name))
        assert backend.list() == {}

    def test_identity_tokens_and_big_unicode_secrets_round_trip(self, backend: Backend) -> None:
        secret = "ü<>&\"\\" + "t" * 120_000
        backend.store(key("https://index.docker.io/v1/"), Credentials("<token>", secret))
        assert backend.get(key("https://index.docker.io/v1/")) == Credentials("<token>", secret)

    def test_aliases_reach_the_same_entry(self, backend: Backend) -> None:
        backend.store(key("https://index.docker.io/v1/"), Credentials("hub", "s"))
        assert backend.get(key("docker.io")).username == "hub"


class TestEncryptedFileStore(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return EncryptedFileStore(str(tmp_path / "data"))

    @pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
    def test_files_are_0600_in_a_0700_folder(self, backend: Backend, tmp_path: Path) -> None:
        backend.store(key("r.example"), Credentials("u", "s"))
        folder = tmp_path / "data"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        for name in os.listdir(folder):
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name

    def test_the_file_holds_no_plaintext_secret(self, backend: Backend, tmp_path: Path) -> None:
        backend.store(key("r.example"), Credentials("u", "plaintext-secret-value"))
        for path in (tmp_path / "data").iterdir():
            assert b"plaintext-secret-value" not in path.read_bytes()


class TestKeyringStore(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        self.memory = MemoryKeyring()
        keychain._cached[:] = [keychain.KeyringKeychain(self.memory)]
        return KeyringStore(str(tmp_path / "data"))

    def test_secrets_live_in_the_keychain_and_the_index_holds_none(self, backend: Backend, tmp_path: Path) -> None:
        backend.store(key("r.example"), Credentials("u", "keychain-only-secret"))
        assert any("keychain-only-secret" in v for v in self.memory.items.values())
        index = (tmp_path / "data" / "keyring-index.json").read_text()
        assert "keychain-only-secret" not in index and "r.example" in index

    def test_exact_keys_still_answer_when_the_index_is_lost(self, backend: Backend, tmp_path: Path) -> None:
        backend.store(key("r.example"), Credentials("u", "s"))
        (tmp_path / "data" / "keyring-index.json").unlink()
        assert backend.get(key("r.example")) == Credentials("u", "s")


class TestDelegateBackend(BackendContract):
    """Delegates to a real helper executable (switchboard itself, on a separate data folder)."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        wrapper = tmp_path / "docker-credential-inner"
        wrapper.write_text(f"#!/bin/sh\nSWITCHBOARD_DATA_DIR='{tmp_path}/inner' exec '{helper_executable()}' \"$@\"\n")
        wrapper.chmod(0o755)
        return DelegateBackend(str(wrapper), timeout=20)

    def test_a_hung_delegate_is_cut_off_by_the_timeout(self, tmp_path: Path) -> None:
        import time

        from helper.errors import HelperError

        slow = tmp_path / "docker-credential-slow"
        slow.write_text("#!/bin/sh\nsleep 30 &\nsleep 30\n")
        slow.chmod(0o755)
        started = time.monotonic()
        with pytest.raises(HelperError, match=r"did not answer within 0\.5 s"):
            DelegateBackend(str(slow), timeout=0.5).get(key("r.example"))
        assert time.monotonic() - started < 5

    def test_a_missing_delegate_says_so(self) -> None:
        from helper.errors import HelperError

        with pytest.raises(HelperError, match="docker-credential-nonexistent-xyz is not on PATH"):
            DelegateBackend("nonexistent-xyz").get(key("r.example"))

    def test_pass_style_empty_answer_is_not_found(self, tmp_path: Path) -> None:
        fake = tmp_path / "docker-credential-passlike"
        fake.write_text('#!/bin/sh\necho \'{"ServerURL":"x","Username":"","Secret":""}\'\n')
        fake.chmod(0o755)
        with pytest.raises(CredentialsNotFound):
            DelegateBackend(str(fake)).get(key("r.example"))
