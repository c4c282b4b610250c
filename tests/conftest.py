"""Shared fixtures: an isolated HOME for every test, the helper executable under test, tool checks.

`SWITCHBOARD_HELPER` names the executable the end-to-end tests drive (the pip-installed script by
default; `build/test` also points it at other builds). With `CI=true` a missing tool fails the test
instead of skipping it, so CI never passes by skipping silently.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helper import cli
from tests.fake_aws import FakeEcr

ROOT = Path(__file__).resolve().parent.parent
NOT_FOUND = "credentials not found in native keychain"


def require_tool(name: str) -> str:
    """The path of `name`, or skip (fail under CI=true) when it is not installed."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{name} is not installed, and CI=true forbids skipping: build/test installs it")
    pytest.skip(f"{name} is not installed")


def helper_executable() -> str:
    """The docker-credential-switchboard executable under test."""
    named = os.environ.get("SWITCHBOARD_HELPER")
    if named:
        return named
    venv = Path(sys.executable).parent / "docker-credential-switchboard"
    if venv.exists():
        return str(venv)
    return require_tool("docker-credential-switchboard")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HOME, XDG folders and data folder, and no cloud or keychain variables."""
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith(("SWITCHBOARD_", "AWS_", "GOOGLE_", "AZURE_", "DOCKER_", "REGISTRY_AUTH", "NGC_",
                            "GITHUB_", "CLOUDSDK_")) \
                and name != "SWITCHBOARD_HELPER":
            monkeypatch.delenv(name)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    (home / "run").mkdir(mode=0o700)
    # No test may reach a cloud metadata address: point every SDK's metadata host at a closed loopback port.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(home / ".config/gcloud"))
    for name in ("GCE_METADATA_ROOT", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IMDS_ENDPOINT", "MSI_ENDPOINT",
                 "MSI_SECRET", "HTTPS_PROXY",
                 "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    # the keychain probe is cached per process; tests switch D-Bus on and off
    from helper import keychain

    keychain._cached.clear()
    return home


class Result:
    """What one in-process or subprocess run gave."""

    def __init__(self, code: int, out: str, err: str = "") -> None:
        self.code = code
        self.out = out
        self.err = err

    def json(self) -> Any:
        import json

        return json.loads(self.out)


def call(action: str | list[str], data: str | bytes = b"") -> Result:
    """Run the helper in-process, as a client would with `data` on stdin."""
    argv = [action] if isinstance(action, str) else action
    raw = data.encode("utf-8") if isinstance(data, str) else data
    out = io.StringIO()
    code = cli.main(argv, io.BytesIO(raw), out)
    return Result(code, out.getvalue())


def run_helper(action: str | list[str], data: str | bytes | None = b"", env: dict[str, str] | None = None,
               timeout: float = 30, executable: str | None = None) -> Result:
    """Run the real executable in a subprocess."""
    argv = [executable or helper_executable(), *([action] if isinstance(action, str) else action)]
    raw = data.encode("utf-8") if isinstance(data, str) else data
    proc = subprocess.run(argv, input=raw, capture_output=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL if raw is None else None)
    return Result(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def get_in_fresh_process(host: str, env: dict[str, str] | None = None) -> tuple[int, str, set[str]]:
    """A `get` of `host` in a new interpreter (cli.main in-process there): exit code, answer, and every module
    it imported, to hold the hot path to its imports."""
    probe = ("import io, sys\nfrom helper import cli\nout = io.StringIO()\n"
             "code = cli.main(['get'], io.BytesIO(sys.argv[1].encode()), out)\nmodules = sorted(sys.modules)\n"
             "import json\nprint(json.dumps([code, out.getvalue(), modules]))\n")
    proc = subprocess.run([sys.executable, "-c", probe, host], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    code, out, modules = json.loads(proc.stdout)
    return code, out, set(modules)


@pytest.fixture(scope="session")
def other_user() -> Iterator[int]:
    """The uid of a throw-away system user (useradd, userdel at the end of the session): "another user" who
    owns what she planted. Creating one and handing files to it needs root: skipped with the reason
    otherwise, a failure under CI=true (where the suite runs as root)."""
    if getattr(os, "geteuid", lambda: -1)() != 0:
        reason = "a cross-user attack needs root to create a throw-away user and hand files to it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}, and CI=true forbids skipping: run the suite as root")
        pytest.skip(reason)
    useradd, userdel = require_tool("useradd"), require_tool("userdel")
    import pwd

    name = f"sbhostile{os.getpid()}"
    subprocess.run([useradd, "--system", "--no-create-home", name], check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name).pw_uid
    finally:
        subprocess.run([userdel, name], check=False, capture_output=True)


@pytest.fixture
def fake_ecr() -> Iterator[FakeEcr]:
    """A loopback ECR token endpoint (tests/fake_aws.py), closed after the test."""
    server = FakeEcr()
    yield server
    server.close()


@pytest.fixture
def routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A routes file set in SWITCHBOARD_CONFIG; tests write it. It starts empty (no routes): a file that variable
    names must exist (issue 11.7b)."""
    path = tmp_path / "routes.toml"
    path.write_text("")
    monkeypatch.setenv("SWITCHBOARD_CONFIG", str(path))
    yield path


@pytest.fixture(scope="session")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The launcher under test: the frozen build's, or one compiled in front of the helper under test."""
    named = os.environ.get("SWITCHBOARD_HELPER")
    if named and (Path(named).resolve().parent / "switchboard-core").exists():
        return named
    require_tool("cc")
    folder = tmp_path_factory.mktemp("launcher")
    subprocess.run([str(ROOT / "packaging/launcher/compile"), str(folder / "docker-credential-switchboard")],
                   check=True)
    core = folder / "switchboard-core"
    core.write_text(f'#!/bin/sh\nexec {shlex.quote(helper_executable())} "$@"\n')
    core.chmod(0o755)
    return str(folder / "docker-credential-switchboard")


@pytest.fixture(scope="session")
def private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
