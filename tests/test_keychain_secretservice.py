"""The static store against a real Secret Service: gnome-keyring in a private D-Bus session.

A module-scoped fixture starts its own `dbus-daemon` (socket in a tmp folder) and a
`gnome-keyring-daemon --unlock --components=secrets` in it, with HOME and XDG_DATA_HOME in a tmp folder so
it creates a fresh login keyring unlocked by a throw-away password. Nothing touches the user's session:
DBUS_SESSION_BUS_ADDRESS is set only per test (after conftest's autouse fixture has unset it), and what
the helper wrote to the keychain is checked independently with `secretstorage`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import NOT_FOUND, call, get_in_fresh_process, require_tool, run_helper

pytestmark = pytest.mark.keychain

SERVICE = "docker-credential-switchboard"
HUB = "https://index.docker.io/v1/"


@dataclass
class SecretService:
    """A running private session bus with gnome-keyring's Secret Service on it."""

    address: str
    root: Path


def _wait_for_name(address: str, name: str, deadline: float) -> bool:
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    bus = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus")
    with open_dbus_connection(address) as conn:
        while time.monotonic() < deadline:
            reply = conn.send_and_get_reply(new_method_call(bus, "NameHasOwner", "s", (name,)), timeout=5)
            if reply.body[0]:
                return True
            time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def private_secret_service(root: Path) -> Iterator[SecretService]:
    """dbus-daemon + gnome-keyring-daemon (fresh, unlocked login keyring) under `root`; both killed on exit."""
    dbus_daemon = require_tool("dbus-daemon")
    keyring_daemon = require_tool("gnome-keyring-daemon")
    home, run = root / "home", root / "run"
    home.mkdir()
    run.mkdir(mode=0o700)
    socket = root / "bus"
    listen = f"unix:path={socket}" if len(str(socket)) < 100 else "unix:tmpdir=/tmp"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
           "XDG_DATA_HOME": str(home / ".local/share"), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_RUNTIME_DIR": str(run)}
    # --nofork (rather than --fork --print-pid) keeps the bus our child, so it is killed and reaped for sure
    bus = subprocess.Popen([dbus_daemon, "--session", "--nofork", "--nopidfile", f"--address={listen}",
                            "--print-address=1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    keyring: subprocess.Popen[bytes] | None = None
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().decode().strip()
        if not address:
            pytest.fail(f"dbus-daemon printed no address (exit {bus.poll()})")
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        # --unlock reads the password on stdin; on a fresh XDG_DATA_HOME it creates the login keyring with it.
        # (--start cannot be combined with --unlock; --foreground keeps the daemon our child to kill it.)
        keyring = subprocess.Popen([keyring_daemon, "--foreground", "--unlock", "--components=secrets"],
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   env=env)
        assert keyring.stdin is not None
        keyring.stdin.write(b"switchboard-test-password")
        keyring.stdin.close()
        if not _wait_for_name(address, "org.freedesktop.secrets", time.monotonic() + 15):
            _stop(keyring)
            err = keyring.stderr.read().decode("utf-8", "replace") if keyring.stderr else ""
            pytest.fail(f"gnome-keyring-daemon did not take org.freedesktop.secrets (exit {keyring.poll()}): {err}")
        yield SecretService(address, root)
    finally:
        if keyring is not None:
            _stop(keyring)
        _stop(bus)


@pytest.fixture(scope="module")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretService]:
    """One private Secret Service for the module's tests."""
    with private_secret_service(tmp_path_factory.mktemp("secret-service")) as service:
        yield service


@contextlib.contextmanager
def _connection(address: str) -> Iterator[Any]:
    from jeepney.io.blocking import open_dbus_connection

    conn = open_dbus_connection(address)
    try:
        yield conn
    finally:
        conn.close()


def keychain_items(address: str) -> dict[str, str]:
    """Our items in the Secret Service, independently of the helper: keyring's `username` attribute -> secret."""
    import secretstorage

    with _connection(address) as conn:
        found: dict[str, str] = {}
        for item in secretstorage.search_items(conn, {"service": SERVICE}):
            found[item.get_attributes()["username"]] = item.get_secret().decode("utf-8")
        return found


@pytest.fixture
def bus(secret_service: SecretService, isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The private bus address set in this test's environment; our keychain items are removed afterwards."""
    import secretstorage

    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", secret_service.address)
    yield secret_service.address
    with _connection(secret_service.address) as conn:
        for item in list(secretstorage.search_items(conn, {"service": SERVICE})):
            item.delete()


def data_dir(home: Path) -> Path:
    return home / ".local/share" / SERVICE


def with_bus(address: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    env.update(extra)
    return env


def without_bus(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    env.update(extra)
    return env


def store_payload(server: str, username: str, secret: str) -> str:
    return json.dumps({"ServerURL": server, "Username": username, "Secret": secret})


def test_store_get_list_erase_use_the_secret_service(bus: str, isolated_home: Path) -> None:
    env = with_bus(bus)
    assert "SWITCHBOARD_STORE" not in env
    res = run_helper("store", store_payload("127.0.0.1:5077", "alice", "s3cr\u00e9t <&>"), env=env)
    assert (res.code, res.out) == (0, ""), res.err

    items = keychain_items(bus)
    assert set(items) == {"127.0.0.1:5077"}
    assert json.loads(items["127.0.0.1:5077"]) == {"Username": "alice", "Secret": "s3cr\u00e9t <&>"}
    folder = data_dir(isolated_home)
    assert not (folder / "store.json").exists(), "the keychain store must not create the encrypted file"
    assert not (folder / "store.key").exists()
    index = json.loads((folder / "keyring-index.json").read_text())
    assert "s3cr" not in json.dumps(index), "the index holds no secret"

    res = run_helper("get", "127.0.0.1:5077", env=env)
    assert res.code == 0, res.out
    assert res.json() == {"ServerURL": "127.0.0.1:5077", "Username": "alice", "Secret": "s3cr\u00e9t <&>"}
    res = run_helper("list", None, env=env)
    assert (res.code, res.json()) == (0, {"127.0.0.1:5077": "alice"})

    res = run_helper("erase", "127.0.0.1:5077", env=env)
    assert (res.code, res.out) == (0, ""), res.err
    assert keychain_items(bus) == {}
    res = run_helper("get", "127.0.0.1:5077", env=env)
    assert (res.code, res.out.strip()) == (1, NOT_FOUND)
    assert run_helper("list", None, env=env).json() == {}
    assert not (folder / "store.json").exists()


def test_store_replaces_the_keychain_item(bus: str) -> None:
    env = with_bus(bus)
    assert run_helper("store", store_payload("ghcr.io", "u1", "one"), env=env).code == 0
    assert run_helper("store", store_payload("ghcr.io", "u2", "two"), env=env).code == 0
    items = {k: json.loads(v) for k, v in keychain_items(bus).items()}
    assert items == {"ghcr.io": {"Username": "u2", "Secret": "two"}}
    assert run_helper("get", "ghcr.io", env=env).json() == {"ServerURL": "ghcr.io", "Username": "u2",
                                                             "Secret": "two"}


def test_hub_alias_is_found_in_the_keychain(bus: str) -> None:
    env = with_bus(bus)
    assert run_helper("store", store_payload(HUB, "hubuser", "hubpass"), env=env).code == 0
    assert set(keychain_items(bus)) == {HUB}
    for alias in ("docker.io", "index.docker.io", "registry-1.docker.io", HUB):
        res = run_helper("get", alias, env=env)
        assert res.code == 0, (alias, res.out)
        assert res.json() == {"ServerURL": alias, "Username": "hubuser", "Secret": "hubpass"}
    # an exact-only key under the Hub (Docker's OAuth tokens) is not an alias
    res = run_helper("get", HUB + "access-token", env=env)
    assert (res.code, res.out.strip()) == (1, NOT_FOUND)


def test_erase_by_alias_removes_the_keychain_item(bus: str) -> None:
    env = with_bus(bus)
    assert run_helper("store", store_payload(HUB, "hubuser", "hubpass"), env=env).code == 0
    assert run_helper("store", store_payload("quay.io", "q", "qq"), env=env).code == 0
    res = run_helper("erase", "docker.io", env=env)
    assert (res.code, res.out) == (0, ""), res.err
    assert set(keychain_items(bus)) == {"quay.io"}
    assert (run_helper("get", HUB, env=env).out.strip()) == NOT_FOUND
    assert run_helper("list", None, env=env).json() == {"quay.io": "q"}


def test_erase_of_a_missing_key_succeeds(bus: str) -> None:
    res = run_helper("erase", "never-stored.example", env=with_bus(bus))
    assert (res.code, res.out) == (0, "")


def test_exact_key_answers_without_the_index(bus: str, isolated_home: Path) -> None:
    env = with_bus(bus)
    assert run_helper("store", store_payload("registry.example:5000", "u", "p"), env=env).code == 0
    (data_dir(isolated_home) / "keyring-index.json").unlink()
    res = run_helper("get", "registry.example:5000", env=env)
    assert (res.code, res.json()) == (0, {"ServerURL": "registry.example:5000", "Username": "u", "Secret": "p"})


def test_in_process_calls_use_the_same_keychain(bus: str) -> None:
    from helper import keychain

    assert type(keychain.backend()).__module__ == "helper.secretservice"
    assert call("store", store_payload("in-process.example", "ip", "ips")).code == 0
    assert set(keychain_items(bus)) == {"in-process.example"}
    res = run_helper("get", "in-process.example", env=with_bus(bus))
    assert (res.code, res.json()) == (0, {"ServerURL": "in-process.example", "Username": "ip", "Secret": "ips"})


def test_items_are_keyrings_own_both_ways(bus: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # helper/secretservice.py writes what keyring's SecretService backend writes, and reads what it wrote:
    # a store made by an earlier version (through keyring) still answers, and keyring tools see ours
    import keyring.backends.SecretService

    theirs = keyring.backends.SecretService.Keyring()  # type: ignore[no-untyped-call]
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus)
    theirs.set_password(SERVICE, "written-by-keyring.example",  # type: ignore[no-untyped-call]
                        '{"Username": "k", "Secret": "by-keyring"}')
    res = run_helper("get", "written-by-keyring.example", env=with_bus(bus))
    assert (res.code, res.json()["Secret"]) == (0, "by-keyring")
    assert run_helper("store", store_payload("written-by-us.example", "u", "by-us"), env=with_bus(bus)).code == 0
    assert json.loads(theirs.get_password(SERVICE, "written-by-us.example"))["Secret"] == "by-us"  # type: ignore[no-untyped-call]
    import secretstorage

    with _connection(bus) as conn:
        (item,) = secretstorage.search_items(conn, {"service": SERVICE, "username": "written-by-us.example"})
        assert item.get_label() == f"Password for 'written-by-us.example' on '{SERVICE}'"
        assert item.get_attributes()["application"] == "Python keyring library"
    assert run_helper("erase", "written-by-keyring.example", env=with_bus(bus)).code == 0
    assert theirs.get_password(SERVICE, "written-by-keyring.example") is None  # type: ignore[no-untyped-call]


def test_forced_file_store_keeps_its_key_in_the_keychain(bus: str, isolated_home: Path) -> None:
    env = with_bus(bus, SWITCHBOARD_STORE="file")
    assert run_helper("store", store_payload("ghcr.io", "octo", "ghp_secret"), env=env).code == 0

    folder = data_dir(isolated_home)
    doc = json.loads((folder / "store.json").read_text())
    assert doc["key"]["source"] == "keyring"
    assert not (folder / "store.key").exists(), "the key must not be written beside the store"
    assert "ghp_secret" not in (folder / "store.json").read_text()
    items = keychain_items(bus)
    item = doc["key"]["item"]
    assert set(items) == {item} and item.startswith("file-store-key-"), \
        "only the file key goes to the keychain, not the registry secret"
    assert len(bytes.fromhex(items[item])) == 32

    res = run_helper("get", "ghcr.io", env=env)
    assert (res.code, res.json()) == (0, {"ServerURL": "ghcr.io", "Username": "octo", "Secret": "ghp_secret"})
    # auto mode with the bus present reads the same file through its fallback
    res = run_helper("get", "ghcr.io", env=with_bus(bus))
    assert (res.code, res.json()) == (0, {"ServerURL": "ghcr.io", "Username": "octo", "Secret": "ghp_secret"})
    # without the keychain the file cannot be opened: an error, never a false not-found or a new key
    res = run_helper("get", "ghcr.io", env=without_bus(SWITCHBOARD_STORE="file"))
    assert res.code == 1 and res.out.strip() != NOT_FOUND and "keychain" in res.out, res.out
    assert not (folder / "store.key").exists()


def test_file_store_secret_saved_without_bus_is_found_with_bus(bus: str, isolated_home: Path) -> None:
    res = run_helper("store", store_payload("registry.gitlab.com", "gl", "glpat"), env=without_bus())
    assert res.code == 0, res.out
    folder = data_dir(isolated_home)
    assert json.loads((folder / "store.json").read_text())["key"]["source"] == "keyfile"
    assert keychain_items(bus) == {}

    env = with_bus(bus)
    res = run_helper("get", "registry.gitlab.com", env=env)
    assert (res.code, res.json()) == (0, {"ServerURL": "registry.gitlab.com", "Username": "gl", "Secret": "glpat"})
    assert run_helper("list", None, env=env).json() == {"registry.gitlab.com": "gl"}
    # a new store with the bus present goes to the keychain; both are listed
    assert run_helper("store", store_payload("quay.io", "q", "qq"), env=env).code == 0
    assert set(keychain_items(bus)) == {"quay.io"}
    assert run_helper("list", None, env=env).json() == {"registry.gitlab.com": "gl", "quay.io": "q"}
    # erase with the bus present also removes the fallback copy
    assert run_helper("erase", "registry.gitlab.com", env=env).code == 0
    assert run_helper("get", "registry.gitlab.com", env=env).out.strip() == NOT_FOUND
    assert run_helper("get", "registry.gitlab.com", env=without_bus()).out.strip() == NOT_FOUND


def test_keyring_store_refuses_without_bus(bus: str) -> None:
    res = run_helper("get", "ghcr.io", env=without_bus(SWITCHBOARD_STORE="keyring"))
    assert res.code == 1 and "no keychain" in res.out, res.out


@pytest.fixture
def locked_bus(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Secret Service of its own whose login keyring holds one of our items and is then locked.

    Headless, gnome-keyring cannot show an unlock prompt, so it dismisses it at once; a locked keyring
    must give a prompt one-line error, never a hang (PROTOCOL.md §7: clients set no timeout).
    """
    import secretstorage

    with private_secret_service(tmp_path_factory.mktemp("locked-secret-service")) as service:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", service.address)
        assert run_helper("store", store_payload("ghcr.io", "octo", "before-lock"), env=dict(os.environ)).code == 0
        with _connection(service.address) as conn:
            collection = secretstorage.get_default_collection(conn)
            collection.lock()
            assert collection.is_locked()
        yield service.address


def _timed(action: str, data: str | None, env: dict[str, str]) -> tuple[float, int, str]:
    started = time.monotonic()
    res = run_helper(action, data, env=env, timeout=20)
    return time.monotonic() - started, res.code, res.out


def test_locked_keychain_fails_fast_with_one_line(locked_bus: str) -> None:
    env = with_bus(locked_bus)
    elapsed, code, out = _timed("get", "ghcr.io", env)
    assert code == 1 and elapsed < 10
    assert out.count("\n") == 1 and "unlock" in out and out.strip() != NOT_FOUND, out
    elapsed, code, out = _timed("erase", "ghcr.io", env)
    assert code == 1 and elapsed < 10 and out.count("\n") == 1, out
    elapsed, code, out = _timed("store", store_payload("ghcr.io", "octo", "after"), env)
    assert code == 1 and elapsed < 10 and out.count("\n") == 1, out
    # list needs no secret: it answers from the index even while the keychain is locked
    elapsed, code, out = _timed("list", None, env)
    assert (code, json.loads(out)) == (0, {"ghcr.io": "octo"}) and elapsed < 10


# -- regressions: helper bugs these tests found, now fixed ------------------------------------------------


def test_two_data_folders_keep_their_own_file_keys(bus: str, tmp_path: Path) -> None:
    first = with_bus(bus, SWITCHBOARD_STORE="file", SWITCHBOARD_DATA_DIR=str(tmp_path / "first"))
    second = with_bus(bus, SWITCHBOARD_STORE="file", SWITCHBOARD_DATA_DIR=str(tmp_path / "second"))
    assert run_helper("store", store_payload("ghcr.io", "one", "first-secret"), env=first).code == 0
    assert run_helper("store", store_payload("ghcr.io", "two", "second-secret"), env=second).code == 0
    assert run_helper("get", "ghcr.io", env=second).json()["Secret"] == "second-secret"
    res = run_helper("get", "ghcr.io", env=first)  # was: "cannot decrypt: wrong key ...", for good
    assert (res.code, res.out) == (0, json.dumps({"ServerURL": "ghcr.io", "Username": "one",
                                                  "Secret": "first-secret"}, separators=(",", ":")) + "\n")


def test_exact_key_in_fallback_beats_alias_in_keychain(bus: str) -> None:
    # podman login on an SSH session (no bus): exact key docker.io goes to the file
    assert run_helper("store", store_payload("docker.io", "podman-user", "A"), env=without_bus()).code == 0
    # docker login on the desktop: Hub's other spelling goes to the keychain
    assert run_helper("store", store_payload(HUB, "docker-user", "B"), env=with_bus(bus)).code == 0
    # the file store alone answers the exact key ...
    file_only = run_helper("get", "docker.io", env=with_bus(bus, SWITCHBOARD_STORE="file"))
    assert file_only.json() == {"ServerURL": "docker.io", "Username": "podman-user", "Secret": "A"}
    # ... and so does auto mode, where the keychain holds only an alias
    res = run_helper("get", "docker.io", env=with_bus(bus))
    assert res.json() == {"ServerURL": "docker.io", "Username": "podman-user", "Secret": "A"}


def test_locked_keychain_file_store_creation_gives_a_store_error(locked_bus: str) -> None:
    elapsed, code, out = _timed("store", store_payload("quay.io", "q", "qq"), with_bus(locked_bus,
                                                                                     SWITCHBOARD_STORE="file"))
    assert code == 1 and elapsed < 10
    assert "internal error" not in out and "unlock" in out, out


def test_locked_keychain_store_message_says_unlock(locked_bus: str) -> None:
    elapsed, code, out = _timed("store", store_payload("ghcr.io", "octo", "after"), with_bus(locked_bus))
    assert code == 1 and elapsed < 10
    assert "Windows" not in out and "unlock" in out, out


def test_keyring_store_get_skips_keyring_core_imports(bus: str) -> None:
    # `import keyring.backends.SecretService` runs keyring/__init__.py: keyring.core -> jaraco.context ->
    # urllib.request/http.client/email, ~120 ms per call; helper/secretservice.py uses secretstorage alone
    assert run_helper("store", store_payload("ghcr.io", "octo", "x"), env=with_bus(bus)).code == 0
    code, out, modules = get_in_fresh_process("ghcr.io", with_bus(bus))
    assert code == 0 and "octo" in out, out
    imported = [m for m in ("keyring.core", "jaraco.context", "urllib.request") if m in modules]
    assert imported == [], f"a keyring-store get imported: {imported}"


# -- the fast read path (helper/dbuswire.py, helper/dhsession.py) ----------------------------------------------


def test_keychain_get_imports_no_cryptography_jeepney_or_socket(bus: str) -> None:
    # importing secretstorage/jeepney (~23 ms), cryptography (~9 ms) and `socket` (~6 ms) was most of a get
    assert run_helper("store", store_payload("ghcr.io", "octo", "fast"), env=with_bus(bus)).code == 0
    code, out, modules = get_in_fresh_process("ghcr.io", with_bus(bus))
    assert code == 0 and json.loads(out)["Secret"] == "fast", out
    assert "helper.dhsession" in modules, "control: the get went through the Secret Service"
    heavy = sorted(m for m in modules if m.split(".")[0] in ("cryptography", "jeepney", "secretstorage", "socket",
                                                            "typing", "hashlib"))
    assert heavy == [], f"a keychain get imported: {heavy}"


def test_secret_tool_reads_our_items_and_we_read_its_items(bus: str) -> None:
    secret_tool = require_tool("secret-tool")
    env = with_bus(bus)
    assert run_helper("store", store_payload("ours.example", "u", "by-us \u00e9"), env=env).code == 0
    found = subprocess.run([secret_tool, "lookup", "service", SERVICE, "username", "ours.example"], env=env,
                           capture_output=True, timeout=20)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout.decode("utf-8")) == {"Username": "u", "Secret": "by-us \u00e9"}
    value = json.dumps({"Username": "l", "Secret": "by-libsecret"}).encode()
    stored = subprocess.run([secret_tool, "store", "--label=x", "service", SERVICE, "username", "libsecret.example"],
                            env=env, input=value, capture_output=True, timeout=20)
    assert stored.returncode == 0, stored.stderr
    res = run_helper("get", "libsecret.example", env=env)
    assert (res.code, res.json()["Secret"]) == (0, "by-libsecret"), res.out


def test_the_secret_crosses_the_bus_encrypted(bus: str) -> None:
    # dbus-monitor (any process of the user may become a monitor) records every message on the bus
    monitor_tool = require_tool("dbus-monitor")
    secret = "never-on-the-bus-in-clear-7f3a"
    env = with_bus(bus)
    assert run_helper("store", store_payload("ghcr.io", "octo", secret), env=env).code == 0
    capture = subprocess.Popen([monitor_tool, "--address", bus, "--binary"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # let it become a monitor
        res = run_helper("get", "ghcr.io", env=env)
        assert (res.code, res.json()["Secret"]) == (0, secret)
        time.sleep(0.5)
    finally:
        _stop(capture)
    assert capture.stdout is not None
    seen = capture.stdout.read()
    assert b"GetSecret" in seen and b"dh-ietf1024-sha256-aes128-cbc-pkcs7" in seen, \
        "control: the monitor saw the get's calls"
    assert secret.encode() not in seen


def test_unsupported_bus_addresses_are_skipped_for_the_unix_one() -> None:
    from helper import dbuswire

    assert dbuswire.parse_address("tcp:host=localhost,port=1;unix:path=/run/user/1/b%2cus,guid=00") \
        == "/run/user/1/b,us"
    assert dbuswire.parse_address("unix:abstract=/tmp/dbus-x") == "\0/tmp/dbus-x"
    with pytest.raises(dbuswire.Unsupported):
        dbuswire.parse_address("tcp:host=localhost,port=1")


def test_a_bus_address_the_fast_path_cannot_use_still_reads_through_secretstorage(
        bus: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from helper import dbuswire
    from helper.secretservice import SecretServiceKeychain

    assert run_helper("store", store_payload("ghcr.io", "octo", "slow"), env=with_bus(bus)).code == 0

    def unsupported(address: str) -> str:
        raise dbuswire.Unsupported("test")

    monkeypatch.setattr(dbuswire, "parse_address", unsupported)
    keychain = SecretServiceKeychain.probe()
    assert keychain is not None
    assert json.loads(keychain.get_password(SERVICE, "ghcr.io") or "")["Secret"] == "slow"


def test_aes_decryption_matches_cryptography() -> None:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from helper import dhsession

    # FIPS-197 appendix C.1
    keys = dhsession._round_keys(bytes(range(16)))
    plain = bytes(dhsession._decrypt_block(bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a"), keys))
    assert plain.hex() == "00112233445566778899aabbccddeeff"
    for length in range(70):
        key, iv, message = os.urandom(16), os.urandom(16), os.urandom(length)
        padder = padding.PKCS7(128).padder()
        encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(padder.update(message) + padder.finalize()) + encryptor.finalize()
        assert dhsession.decrypt(key, iv, ciphertext) == message
    with pytest.raises(ValueError):
        dhsession.decrypt(key, iv, ciphertext[:-1])
    corrupt = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    with pytest.raises(ValueError):  # a last block that is not PKCS#7 padding
        dhsession.decrypt(key, iv, corrupt.update(b"\x00" * 16) + corrupt.finalize())


def test_the_session_key_is_the_one_secretstorage_derives() -> None:
    from secretstorage.dhcrypto import DH_PRIME_1024, Session

    from helper import dhsession

    assert dhsession.PRIME == DH_PRIME_1024
    ours, theirs = dhsession.Session(), Session()
    theirs.set_server_public_key(int.from_bytes(ours.public, "big"))
    assert ours.key(theirs.my_public_key.to_bytes(128, "big")) == theirs.aes_key
    with pytest.raises(ValueError):
        ours.key((1).to_bytes(128, "big"))
