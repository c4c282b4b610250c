"""End to end: the real clients drive the real helper executable against real registries on loopback.

Two `docker-registry` servers (plain HTTP and TLS with a throw-away CA, both behind bcrypt htpasswd) run
for the whole session on random ports of 127.0.0.1, seeded with a tiny hand-written OCI image through
`skopeo copy --dest-creds` (no helper involved). Each test then runs skopeo, podman, buildah, the
docker CLI (no engine: `DOCKER_HOST=unix:///nonexistent`) or docker-py with a private bin folder first
on PATH that holds `docker-credential-switchboard` -> `helper_executable()`, and checks what the
clients did (exit status, what they print, what the registry let them read) and what the helper then
holds (`list`/`get` of the real executable). The helper keeps its secrets in the per-test encrypted file
store (`isolated_home` gives every test its own XDG_DATA_HOME), so tests never see each other's state.

Only the dummy credentials below ever appear in output. Client exit codes and messages are those of the
Debian 12 builds described in ../shared/CLIENTS.md (skopeo 1.9.3, podman 4.3.1, buildah 1.28.2, docker
CLI 28.2.2, docker-py 7.1.0).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest

from tests.conftest import NOT_FOUND, Result, helper_executable, require_tool, run_helper
from tests.registry import (
    TIMEOUT,
    Completed,
    OciImage,
    Registry,
    make_ca_and_leaf,
    make_oci_layout,
    run,
    seed,
    write_htpasswd,
)

pytestmark = pytest.mark.e2e

USER = "testuser"
PASSWORD = "testpass"
WRONG_PASSWORD = "not-the-password"
#: a second registry user whose (dummy) password has what Go's encoder escapes (<>&), JSON's (" \\),
#: non-ASCII, a colon (basic auth splits on the first one) and a space
SPECIAL_USER = "special"
SPECIAL_PASSWORD = 'p<a>&"\\\u00fc:x y'
HELPER = "switchboard"
HUB_DOCKER = "https://index.docker.io/v1/"


# -- session: the registries ---------------------------------------------------------------------------
class Lab:
    """The session's registries and the image they serve."""

    def __init__(self, plain: Registry, tls: Registry, image: OciImage) -> None:
        self.plain = plain
        self.tls = tls
        self.image = image


def write_policy(path: Path) -> Path:
    """A signature policy that accepts anything (not the machine's /etc/containers/policy.json)."""
    path.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    return path


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Plain and TLS registries with htpasswd, seeded with interop/tiny:latest; stopped at the end."""
    for tool in ("docker-registry", "htpasswd", "openssl", "skopeo"):
        require_tool(tool)
    root = tmp_path_factory.mktemp("registries")
    policy = write_policy(root / "policy.json")
    htpasswd = write_htpasswd(root / "htpasswd", {USER: PASSWORD, SPECIAL_USER: SPECIAL_PASSWORD})
    tls = make_ca_and_leaf(root / "tls")
    plain_registry = Registry("plain", root / "plain", htpasswd)
    tls_registry = Registry("tls", root / "tls-registry", htpasswd, tls)
    image = make_oci_layout(root / "oci")
    home = root / "seed-home"
    home.mkdir()
    seed_env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home), "XDG_CONFIG_HOME": str(home)}
    try:
        for registry in (plain_registry, tls_registry):
            registry.start()
            seed(registry, image, USER, PASSWORD, seed_env, policy)
        yield Lab(plain_registry, tls_registry, image)
    finally:
        plain_registry.stop()
        tls_registry.stop()


@pytest.fixture(params=["plain", "tls"])
def registry(request: pytest.FixtureRequest, lab: Lab) -> Registry:
    """Each registry in turn: plain HTTP (`--tls-verify=false`) and TLS (`--cert-dir` with the test CA)."""
    return lab.plain if request.param == "plain" else lab.tls


# -- per test: the clients' environment ----------------------------------------------------------------
class Env:
    """One test's client environment: PATH with the helper first, auth files, and ways to run things."""

    def __init__(self, work: Path, short: Path, registries: list[Registry]) -> None:
        self.work = work
        #: podman refuses a --runroot longer than 50 characters, and pytest's tmp_path is longer
        self.short = short
        self.policy = write_policy(work / "policy.json")
        #: the registries.conf skopeo is given (`--registries-conf`); podman reads CONTAINERS_REGISTRIES_CONF
        self.registries_conf = work / "registries.conf"
        self.registries_conf.write_text("unqualified-search-registries = []\n")
        bin_dir = work / "bin"
        bin_dir.mkdir()
        executable = helper_executable()
        if os.sep not in executable:  # SWITCHBOARD_HELPER may name a program on PATH
            executable = shutil.which(executable) or executable
        (bin_dir / f"docker-credential-{HELPER}").symlink_to(Path(executable).absolute())
        self.path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        self.docker_config = work / "docker"
        self.docker_config.mkdir()
        #: the overrides every client process gets on top of the (isolated) environment
        self.overrides = {
            "PATH": self.path,
            "CONTAINERS_REGISTRIES_CONF": str(self.registries_conf),
            "DOCKER_CONFIG": str(self.docker_config),
            "DOCKER_HOST": "unix:///nonexistent",
            "DOCKER_CLI_HINTS": "false",
            "TMPDIR": str(short),  # podman pull stages layers in $TMPDIR (default /var/tmp)
        }
        #: the containers/image auth file: the session's registries (if the test uses them) go to the helper
        self.authfile = work / "auth.json"
        self.write_authfile({registry.host: HELPER for registry in registries})

    @property
    def env(self) -> dict[str, str]:
        """The full environment of a client process (read when called: isolated_home is in os.environ)."""
        return {**os.environ, **self.overrides}

    def write_authfile(self, cred_helpers: dict[str, str]) -> None:
        self.authfile.write_text(json.dumps({"credHelpers": cred_helpers}))

    def write_docker_config(self, doc: dict[str, object]) -> Path:
        path = self.docker_config / "config.json"
        path.write_text(json.dumps(doc))
        return path

    # the helper, as a client would run it
    def helper(self, action: str, data: str | None = "") -> Result:
        return run_helper(action, data, env=self.env, timeout=TIMEOUT)

    def helper_list(self) -> dict[str, str]:
        done = self.helper("list", None)
        assert done.code == 0, f"list failed: {done.out}"
        listed = json.loads(done.out)
        assert isinstance(listed, dict)
        return listed

    def helper_get(self, key: str) -> dict[str, str] | None:
        """The helper's `get` answer for `key`, or None when it answers exactly not-found."""
        done = self.helper("get", key)
        if done.code != 0:
            assert done.out.strip() == NOT_FOUND, f"get {key!r}: exit {done.code}, {done.out!r}"
            return None
        answer = json.loads(done.out)
        assert isinstance(answer, dict)
        return answer

    def helper_store(self, key: str, username: str, secret: str) -> None:
        done = self.helper("store", json.dumps({"ServerURL": key, "Username": username, "Secret": secret}))
        assert done.code == 0, f"store {key!r} failed: {done.out}"

    # the clients
    def skopeo(self, *args: str) -> Completed:
        return run(["skopeo", "--policy", str(self.policy), "--registries-conf", str(self.registries_conf),
                    *args], env=self.env, cwd=self.work)

    def podman(self, *args: str) -> Completed:
        storage = ["--root", str(self.work / "storage"), "--runroot", str(self.short / "run"),
                   "--storage-driver", "vfs", "--tmpdir", str(self.short / "tmp"),
                   "--events-backend", "file", "--cgroup-manager", "cgroupfs"]
        return run(["podman", *storage, *args], env=self.env, cwd=self.work)

    def buildah(self, *args: str) -> Completed:
        storage = ["--root", str(self.work / "storage"), "--runroot", str(self.short / "run"),
                   "--storage-driver", "vfs"]
        return run(["buildah", *storage, *args], env=self.env, cwd=self.work)

    def docker(self, *args: str, input: str | None = None) -> Completed:
        return run(["docker", *args], env=self.env, input=input, cwd=self.work)


@pytest.fixture
def env(request: pytest.FixtureRequest, isolated_home: Path, tmp_path: Path) -> Iterator[Env]:
    """The clients' environment; the registries are started only for tests that use `lab`/`registry`."""
    registries: list[Registry] = []
    if "lab" in request.fixturenames:
        lab: Lab = request.getfixturevalue("lab")
        registries = [lab.plain, lab.tls]
    work = tmp_path / "clients"
    work.mkdir()
    short = Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        yield Env(work, short, registries)
    finally:
        shutil.rmtree(short, ignore_errors=True)


def login_flags(registry: Registry, env: Env) -> list[str]:
    """`--authfile F` plus the registry's TLS flags, as skopeo/podman/buildah `login`/`logout` take them."""
    return ["--authfile", str(env.authfile), *registry.tls_flags()]


def assert_stored(env: Env, key: str, username: str = USER, secret: str = PASSWORD) -> None:
    """The helper lists `key` and `get` returns exactly these credentials."""
    assert env.helper_list().get(key) == username
    got = env.helper_get(key)
    assert got is not None, f"the helper has nothing for {key}"
    assert (got["Username"], got["Secret"]) == (username, secret)
    assert got.get("ServerURL") == key


def assert_gone(env: Env, key: str) -> None:
    """The helper neither lists nor returns `key`."""
    assert key not in env.helper_list()
    assert env.helper_get(key) is None


def assert_no_plaintext_secret(*places: Path) -> None:
    """No file under `places` holds the dummy password in clear (auth files, docker config, the store)."""
    for place in places:
        files = [place] if place.is_file() else [p for p in place.rglob("*") if p.is_file()]
        for file in files:
            assert PASSWORD.encode() not in file.read_bytes(), f"{file} holds the secret in clear"


def data_dir() -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / "docker-credential-switchboard"


def unauthorized(done: Completed) -> bool:
    text = done.text.lower()
    return "unauthorized" in text or "authentication required" in text or "no basic auth credentials" in text


# -- skopeo --------------------------------------------------------------------------------------------
def test_skopeo_login_stores_through_helper(registry: Registry, env: Env) -> None:
    """`skopeo login -u -p` probes `get` (not found), then `store`s; `--get-login` reads it back."""
    assert env.helper_get(registry.host) is None
    done = env.skopeo("login", *login_flags(registry, env), "-u", USER, "-p", PASSWORD, registry.host)
    assert done.code == 0, done
    assert "Login Succeeded" in done.out
    assert_stored(env, registry.host)
    # the auth file still routes to the helper and received no secret of its own
    auth = json.loads(env.authfile.read_text())
    assert auth["credHelpers"][registry.host] == HELPER
    assert registry.host not in auth.get("auths", {})
    assert_no_plaintext_secret(env.authfile, data_dir())

    done = env.skopeo("login", "--authfile", str(env.authfile), "--get-login", registry.host)
    assert done.code == 0, done
    assert done.out.strip() == USER


def test_skopeo_login_rejected_by_registry_stores_nothing(registry: Registry, env: Env) -> None:
    """A password the registry refuses fails the login and never reaches the helper's store."""
    done = env.skopeo("login", *login_flags(registry, env), "-u", USER, "-p", WRONG_PASSWORD, registry.host)
    assert done.code != 0, done
    assert unauthorized(done) or "invalid username/password" in done.text.lower(), done
    assert env.helper_list() == {}
    assert env.helper_get(registry.host) is None


def test_skopeo_inspect_authenticates_through_helper(registry: Registry, env: Env, lab: Lab) -> None:
    """Anonymous inspect is refused; after `store` through the helper, inspect reads the seeded image."""
    ref = f"docker://{registry.image}"
    anonymous = env.skopeo("inspect", *registry.tls_flags(), "--authfile", str(env.authfile), ref)
    assert anonymous.code != 0 and unauthorized(anonymous), anonymous

    env.helper_store(registry.host, USER, PASSWORD)
    done = env.skopeo("inspect", *registry.tls_flags(), "--authfile", str(env.authfile), ref)
    assert done.code == 0, done
    info = json.loads(done.out)
    assert info["Digest"] == lab.image.manifest_digest
    assert info["Layers"] == [lab.image.layer_digest]
    # REGISTRY_AUTH_FILE instead of --authfile reaches the same helper entry
    env.overrides["REGISTRY_AUTH_FILE"] = str(env.authfile)
    done = env.skopeo("inspect", *registry.tls_flags(), "--raw", ref)
    assert done.code == 0, done
    assert json.loads(done.out)["config"]["digest"] == lab.image.config_digest


def test_skopeo_logout_erases_and_inspect_then_fails(registry: Registry, env: Env) -> None:
    """`skopeo logout` erases through the helper (exit 0); a second logout with nothing stored also exits 0."""
    ref = f"docker://{registry.image}"
    assert env.skopeo("login", *login_flags(registry, env), "-u", USER, "-p", PASSWORD, registry.host).code == 0
    before = env.skopeo("inspect", *registry.tls_flags(), "--authfile", str(env.authfile), ref)
    assert before.code == 0, before

    done = env.skopeo("logout", "--authfile", str(env.authfile), registry.host)
    assert done.code == 0, done
    assert "Removed login credentials" in done.out
    assert_gone(env, registry.host)
    assert json.loads(env.authfile.read_text())["credHelpers"][registry.host] == HELPER

    after = env.skopeo("inspect", *registry.tls_flags(), "--authfile", str(env.authfile), ref)
    assert after.code != 0 and unauthorized(after), after

    # nothing stored now: erase of a missing key must succeed, or c/image 5.23 crashes (stack overflow)
    again = env.skopeo("logout", "--authfile", str(env.authfile), registry.host)
    assert again.code == 0, again
    assert "stack overflow" not in again.text
    get_login = env.skopeo("login", "--authfile", str(env.authfile), "--get-login", registry.host)
    assert get_login.code != 0 and "not logged into" in get_login.text, get_login


def test_skopeo_wrong_password_in_helper_fails_inspect(registry: Registry, env: Env, lab: Lab) -> None:
    """The secret the helper returns is really what the client sends: a wrong one is refused."""
    ref = f"docker://{registry.image}"
    env.helper_store(registry.host, USER, WRONG_PASSWORD)
    done = env.skopeo("inspect", *registry.tls_flags(), "--authfile", str(env.authfile), ref)
    assert done.code != 0, done
    assert unauthorized(done), done
    env.helper_store(registry.host, USER, PASSWORD)  # an upsert: the right secret replaces the wrong one
    done = env.skopeo("inspect", *registry.tls_flags(), "--authfile", str(env.authfile), ref)
    assert done.code == 0, done
    assert json.loads(done.out)["Digest"] == lab.image.manifest_digest


def test_skopeo_tls_registry_is_really_verified(lab: Lab, env: Env) -> None:
    """Without `--cert-dir` the TLS registry's certificate is refused, so the TLS cases do verify it."""
    env.helper_store(lab.tls.host, USER, PASSWORD)
    done = env.skopeo("inspect", "--authfile", str(env.authfile), f"docker://{lab.tls.image}")
    assert done.code != 0, done
    assert "x509" in done.text or "certificate" in done.text, done


# -- podman --------------------------------------------------------------------------------------------
def login_get_login_logout(client: Callable[..., Completed], registry: Registry, env: Env,
                           between: Callable[[], None] | None = None) -> None:
    """podman's and buildah's shared cycle: `login` stores through the helper, `--get-login` reads it,
    `logout` erases it, and a second `logout` with nothing stored still exits 0 (no stack overflow)."""
    done = client("login", *login_flags(registry, env), "-u", USER, "-p", PASSWORD, registry.host)
    assert done.code == 0, done
    assert "Login Succeeded" in done.out
    assert_stored(env, registry.host)
    assert_no_plaintext_secret(env.authfile, data_dir())

    done = client("login", "--authfile", str(env.authfile), "--get-login", registry.host)
    assert done.code == 0, done
    assert done.out.strip() == USER
    if between is not None:
        between()

    done = client("logout", "--authfile", str(env.authfile), registry.host)
    assert done.code == 0, done
    assert_gone(env, registry.host)
    again = client("logout", "--authfile", str(env.authfile), registry.host)
    assert again.code == 0, again
    assert "stack overflow" not in again.text


def test_podman_login_logout(registry: Registry, env: Env) -> None:
    """`podman login` stores through the helper, `--get-login` reads it, `logout` (twice) erases it."""
    require_tool("podman")

    def already_logged_in() -> None:
        # no -u/-p and no TTY: podman checks the stored credentials (helper `get`) instead of prompting
        done = env.podman("login", *login_flags(registry, env), registry.host)
        assert done.code == 0, done
        assert "Already logged in" in done.out

    login_get_login_logout(env.podman, registry, env, between=already_logged_in)
    done = env.podman("login", "--authfile", str(env.authfile), "--get-login", registry.host)
    assert done.code == 125 and "not logged into" in done.text, done


def test_podman_pull_through_helper(registry: Registry, env: Env, lab: Lab) -> None:
    """`podman pull` (root, vfs storage in a scratch folder) gets its credentials from the helper."""
    require_tool("podman")
    pull = ["pull", "--quiet", "--authfile", str(env.authfile), "--signature-policy", str(env.policy),
            *registry.tls_flags(), registry.image]
    anonymous = env.podman(*pull)
    assert anonymous.code != 0 and unauthorized(anonymous), anonymous

    env.helper_store(registry.host, USER, PASSWORD)
    done = env.podman(*pull)
    assert done.code == 0, done
    image_id = done.out.strip()
    assert f"sha256:{image_id}" == lab.image.config_digest
    done = env.podman("image", "inspect", "--format", "{{.Digest}}", registry.image)
    assert done.code == 0, done
    assert done.out.strip() == lab.image.manifest_digest


# -- buildah -------------------------------------------------------------------------------------------
def test_buildah_login_logout(registry: Registry, env: Env) -> None:
    """`buildah login/--get-login/logout` drive get, store and erase like podman."""
    require_tool("buildah")
    login_get_login_logout(env.buildah, registry, env)


# -- docker CLI ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("wiring", ["credsStore", "credHelpers"])
def test_docker_login_manifest_inspect_logout(wiring: str, registry: Registry, env: Env, lab: Lab) -> None:
    """docker CLI (client side, no engine): login stores, manifest inspect gets, logout erases."""
    require_tool("docker")
    if wiring == "credsStore":
        config_path = env.write_docker_config({"credsStore": HELPER})
    else:
        config_path = env.write_docker_config({"credHelpers": {registry.host: HELPER}})
    done = env.docker("login", "-u", USER, "--password-stdin", registry.host, input=PASSWORD + "\n")
    assert done.code == 0, done
    assert "Login Succeeded" in done.out
    assert_stored(env, registry.host)
    config = json.loads(config_path.read_text())
    expected: dict[str, object] = {"credsStore": HELPER} if wiring == "credsStore" else {
        "credHelpers": {registry.host: HELPER}}
    assert config[wiring] == expected[wiring]  # docker kept the wiring
    assert "auth" not in config.get("auths", {}).get(registry.host, {})
    assert_no_plaintext_secret(config_path, data_dir())

    # 127.0.0.0/8 is an insecure registry for the docker CLI; plain HTTP also needs --insecure
    inspect = ["manifest", "inspect", *(["--insecure"] if registry.tls is None else []), registry.image]
    done = env.docker(*inspect)
    assert done.code == 0, done
    manifest = json.loads(done.out)
    assert manifest["config"]["digest"] == lab.image.config_digest
    assert [layer["digest"] for layer in manifest["layers"]] == [lab.image.layer_digest]

    done = env.docker("logout", registry.host)
    assert done.code == 0, done
    assert "could not erase" not in done.text, done
    assert_gone(env, registry.host)
    assert env.helper_list() == {}
    for variant in (f"http://{registry.host}", f"https://{registry.host}"):
        assert env.helper_get(variant) is None

    after = env.docker(*inspect)
    assert after.code != 0 and unauthorized(after), after


def test_docker_wrong_password_in_helper_fails_manifest_inspect(lab: Lab, env: Env) -> None:
    """docker manifest inspect sends what the helper returns: a wrong secret is refused by the registry."""
    require_tool("docker")
    env.write_docker_config({"credsStore": HELPER})
    env.helper_store(lab.tls.host, USER, WRONG_PASSWORD)
    done = env.docker("manifest", "inspect", lab.tls.image)
    # docker 28 reports a refused login here as the misleading `no such manifest` (CLIENTS.md §2)
    assert done.code != 0 and (unauthorized(done) or "no such manifest" in done.text), done
    env.helper_store(lab.tls.host, USER, PASSWORD)
    done = env.docker("manifest", "inspect", lab.tls.image)
    assert done.code == 0, done
    assert json.loads(done.out)["config"]["digest"] == lab.image.config_digest


def test_docker_login_is_read_by_skopeo_and_podman_logout_clears_it(lab: Lab, env: Env) -> None:
    """One entry serves every client: docker stores it, skopeo reads it, podman erases it."""
    require_tool("docker")
    require_tool("podman")
    registry = lab.tls
    env.write_docker_config({"credsStore": HELPER})
    done = env.docker("login", "-u", USER, "--password-stdin", registry.host, input=PASSWORD)
    assert done.code == 0, done

    done = env.skopeo("inspect", *registry.tls_flags(), "--authfile", str(env.authfile),
                      f"docker://{registry.image}")
    assert done.code == 0, done
    assert json.loads(done.out)["Digest"] == lab.image.manifest_digest

    done = env.podman("logout", "--authfile", str(env.authfile), registry.host)
    assert done.code == 0, done
    done = env.docker("manifest", "inspect", registry.image)
    assert done.code != 0 and unauthorized(done), done


def test_docker_hub_key_aliases_podman_docker_io(env: Env) -> None:
    """Docker's Hub key `https://index.docker.io/v1/` and containers/image's `docker.io` are one entry."""
    env.helper_store(HUB_DOCKER, USER, PASSWORD)
    for alias in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        got = env.helper_get(alias)
        assert got is not None, alias
        assert (got["Username"], got["Secret"]) == (USER, PASSWORD)
    assert env.helper_list() == {HUB_DOCKER: USER}
    # exact keys are untouched by aliasing
    assert_stored(env, HUB_DOCKER)

    require_tool("podman")
    env.write_authfile({"docker.io": HELPER})
    done = env.podman("login", "--authfile", str(env.authfile), "--get-login", "docker.io")
    assert done.code == 0, done
    assert done.out.strip() == USER
    done = env.podman("logout", "--authfile", str(env.authfile), "docker.io")
    assert done.code == 0, done
    assert env.helper_get(HUB_DOCKER) is None
    assert env.helper_list() == {}



def test_docker_logout_of_docker_hub(env: Env) -> None:
    """`docker logout` (Hub) asks for `…/v1/refresh-token` (a clean not-found) and erases the Hub key,
    which containers/image's `docker.io` then no longer finds. No network is needed for either."""
    require_tool("docker")
    env.write_docker_config({"credsStore": HELPER, "auths": {HUB_DOCKER: {}}})
    env.helper_store(HUB_DOCKER, USER, PASSWORD)  # what `docker login` to Hub stores
    done = env.docker("logout")
    assert done.code == 0, done
    assert HUB_DOCKER in done.out
    assert "could not erase" not in done.text, done
    assert env.helper_list() == {}
    assert env.helper_get("docker.io") is None
    assert env.helper_get(f"{HUB_DOCKER}refresh-token") is None


def test_legacy_url_key_serves_host_port_clients(lab: Lab, env: Env) -> None:
    """An entry stored under an old-style `https://host:port` key (docker-py, old Docker configs) answers
    skopeo's and podman's bare `host:port`, and their logout removes it."""
    require_tool("podman")
    registry = lab.tls
    env.helper_store(f"https://{registry.host}", USER, PASSWORD)
    done = env.skopeo("inspect", *registry.tls_flags(), "--authfile", str(env.authfile), f"docker://{registry.image}")
    assert done.code == 0, done
    done = env.podman("login", "--authfile", str(env.authfile), "--get-login", registry.host)
    assert done.code == 0 and done.out.strip() == USER, done
    done = env.podman("logout", "--authfile", str(env.authfile), registry.host)
    assert done.code == 0, done
    assert env.helper_list() == {}
    assert env.helper_get(f"https://{registry.host}") is None

# -- several clients, one store ------------------------------------------------------------------------
def test_special_character_password_across_clients(lab: Lab, env: Env) -> None:
    """A password with `<>&"\\`, non-ASCII, `:` and a space: Go's HTML-escaped `store` JSON round-trips
    exactly, so docker, skopeo and docker-py all send the bytes the registry's htpasswd accepts."""
    require_tool("docker")
    registry = lab.tls
    done = env.skopeo("login", *login_flags(registry, env), "-u", SPECIAL_USER, "-p", SPECIAL_PASSWORD,
                      registry.host)
    assert done.code == 0, done
    assert_stored(env, registry.host, SPECIAL_USER, SPECIAL_PASSWORD)
    done = env.skopeo("inspect", *registry.tls_flags(), "--authfile", str(env.authfile),
                      f"docker://{registry.image}")
    assert done.code == 0, done

    env.write_docker_config({"credsStore": HELPER})
    done = env.docker("manifest", "inspect", registry.image)
    assert done.code == 0, done
    assert json.loads(done.out)["config"]["digest"] == lab.image.config_digest
    # and the docker CLI's own store (compact Go JSON) writes the same bytes back
    done = env.docker("login", "-u", SPECIAL_USER, "--password-stdin", lab.plain.host, input=SPECIAL_PASSWORD)
    assert done.code == 0, done
    assert_stored(env, lab.plain.host, SPECIAL_USER, SPECIAL_PASSWORD)
    assert registry.probe(SPECIAL_USER, SPECIAL_PASSWORD) == 200


def test_concurrent_clients_share_the_store(lab: Lab, env: Env) -> None:
    """skopeo, podman, buildah and docker log in at the same moment to four keys: no write is lost."""
    import concurrent.futures

    for tool in ("podman", "buildah", "docker"):
        require_tool(tool)
    env.write_docker_config({"credsStore": HELPER})
    plain_local, tls_local = f"localhost:{lab.plain.port}", f"localhost:{lab.tls.port}"
    env.write_authfile({key: HELPER for key in (lab.plain.host, lab.tls.host, plain_local, tls_local)})
    jobs = {
        lab.plain.host: lambda: env.skopeo("login", *login_flags(lab.plain, env), "-u", USER, "-p", PASSWORD,
                                           lab.plain.host),
        lab.tls.host: lambda: env.podman("login", *login_flags(lab.tls, env), "-u", USER, "-p", PASSWORD,
                                         lab.tls.host),
        plain_local: lambda: env.buildah("login", *login_flags(lab.plain, env), "-u", USER, "-p", PASSWORD,
                                         plain_local),
        tls_local: lambda: env.docker("login", "-u", USER, "--password-stdin", tls_local, input=PASSWORD),
    }
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        results = {key: pool.submit(job) for key, job in jobs.items()}
        for key, future in results.items():
            done = future.result()
            assert done.code == 0, (key, done)
    assert env.helper_list() == dict.fromkeys(jobs, USER)
    for key in jobs:
        assert_stored(env, key)
    assert_no_plaintext_secret(env.authfile, env.docker_config)


def test_global_helper_from_registries_conf_and_logout_all(lab: Lab, env: Env) -> None:
    """`credential-helpers = ["switchboard"]` in registries.conf: login/inspect without any auth file, and
    `logout --all` lists (`list`) then erases every key, Docker's `https://` Hub key included."""
    require_tool("podman")
    conf = env.work / "registries.conf"
    conf.write_text('unqualified-search-registries = []\ncredential-helpers = ["switchboard"]\n')
    env.registries_conf = conf
    env.overrides["CONTAINERS_REGISTRIES_CONF"] = str(conf)
    # no auth file anywhere: with DOCKER_CONFIG set, `skopeo logout` insists its config.json exists
    del env.overrides["DOCKER_CONFIG"]
    env.authfile.unlink()
    env.helper_store(HUB_DOCKER, USER, PASSWORD)

    done = env.skopeo("login", *lab.plain.tls_flags(), "-u", USER, "-p", PASSWORD, lab.plain.host)
    assert done.code == 0, done
    done = env.podman("login", *lab.tls.tls_flags(), "-u", USER, "-p", PASSWORD, lab.tls.host)
    assert done.code == 0, done
    assert env.helper_list() == {HUB_DOCKER: USER, lab.plain.host: USER, lab.tls.host: USER}
    for registry in (lab.plain, lab.tls):
        done = env.skopeo("inspect", *registry.tls_flags(), f"docker://{registry.image}")
        assert done.code == 0, done
        assert json.loads(done.out)["Digest"] == lab.image.manifest_digest
    assert not env.authfile.exists()
    assert_no_plaintext_secret(Path(os.environ["HOME"]))  # no auth.json under HOME or XDG_RUNTIME_DIR either

    done = env.skopeo("logout", "--all")
    assert done.code == 0, done
    assert env.helper_list() == {}
    done = env.skopeo("inspect", *lab.plain.tls_flags(), f"docker://{lab.plain.image}")
    assert done.code != 0 and unauthorized(done), done
    # podman's logout --all over an empty store is fine too
    done = env.podman("logout", "--all")
    assert done.code == 0, done


# -- docker-py -----------------------------------------------------------------------------------------
@contextmanager
def deadline(seconds: float = TIMEOUT) -> Iterator[None]:
    """docker-py runs the helper with no timeout of its own: bound the whole block (SIGALRM)."""
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"docker-py call did not finish in {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def dockerpy_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> Env:
    """docker-py looks the helper up with shutil.which at construction: PATH must be in os.environ."""
    pytest.importorskip("docker")
    monkeypatch.setenv("PATH", env.path)
    return env


def test_dockerpy_store_get_list_erase(dockerpy_env: Env, tmp_path: Path) -> None:
    """docker.credentials.Store round-trips through the helper; misses raise CredentialsNotFound."""
    from docker.credentials import Store
    from docker.credentials.errors import CredentialsNotFound

    data = tmp_path / "dockerpy-data"
    store = Store(HELPER, environment={"SWITCHBOARD_DATA_DIR": str(data)})
    key = "127.0.0.1:5000"
    with deadline():
        with pytest.raises(CredentialsNotFound):
            store.get(key)
        assert store.list() == {}
        store.store(key, USER, PASSWORD)
        assert store.get(key) == {"ServerURL": key, "Username": USER, "Secret": PASSWORD}
        assert store.list() == {key: USER}
        store.store(key, "other-user", "other-pass")  # upsert
        assert store.get(key) == {"ServerURL": key, "Username": "other-user", "Secret": "other-pass"}
        store.erase(key)
        with pytest.raises(CredentialsNotFound):
            store.get(key)
        assert store.list() == {}
        store.erase(key)  # erasing nothing succeeds
        with pytest.raises(CredentialsNotFound):
            store.get("never-stored.example:5000")
    # the environment docker-py passes really picked the helper's data folder
    assert (data / "store.json").is_file()
    assert not data_dir().exists()


def test_dockerpy_identity_token_round_trip(dockerpy_env: Env) -> None:
    """`<token>` entries come back unchanged, and docker.auth turns them into an IdentityToken."""
    import docker.auth
    from docker.credentials import Store

    key = "registry.example:5443"
    config_path = dockerpy_env.write_docker_config({"credHelpers": {key: HELPER}})
    with deadline():
        Store(HELPER).store(key, "<token>", "abcd1234")
        assert Store(HELPER).get(key) == {"ServerURL": key, "Username": "<token>", "Secret": "abcd1234"}
        cfg = docker.auth.load_config(config_path=str(config_path))
        assert docker.auth.resolve_authconfig(cfg, key) == {"ServerAddress": key, "IdentityToken": "abcd1234"}
        # real tokens (ECR, Azure, Hub OAuth JWTs) run to many KB: 48 KB goes through unchanged
        long_token = "eyJ" + "A1b2-C3d4_" * 4800
        Store(HELPER).store(key, "<token>", long_token)
        assert Store(HELPER).get(key)["Secret"] == long_token
        assert docker.auth.resolve_authconfig(cfg, key) == {"ServerAddress": key, "IdentityToken": long_token}


def test_dockerpy_resolve_authconfig_credhelpers(dockerpy_env: Env, lab: Lab) -> None:
    """load_config + resolve_authconfig with credHelpers returns what the helper holds, and it logs in."""
    import docker.auth

    registry = lab.tls
    config_path = dockerpy_env.write_docker_config({"credHelpers": {registry.host: HELPER}})
    dockerpy_env.helper_store(registry.host, USER, PASSWORD)
    with deadline():
        cfg = docker.auth.load_config(config_path=str(config_path))
        auth = docker.auth.resolve_authconfig(cfg, registry.host)
        assert auth == {"ServerAddress": registry.host, "Username": USER, "Password": PASSWORD}
        assert docker.auth.resolve_authconfig(cfg, lab.plain.host) is None  # not routed to the helper
        assert cfg.get_all_credentials()[registry.host] == auth
    # the credentials docker-py resolved are the ones the registry accepts
    assert registry.probe(auth["Username"], auth["Password"]) == 200
    assert registry.probe(USER, WRONG_PASSWORD) == 401


def test_dockerpy_creds_store_hub_and_list(dockerpy_env: Env) -> None:
    """With credsStore, Hub resolves through `https://index.docker.io/v1/`, and get_all lists every entry."""
    import docker.auth

    config_path = dockerpy_env.write_docker_config({"credsStore": HELPER})
    dockerpy_env.helper_store(HUB_DOCKER, USER, PASSWORD)
    dockerpy_env.helper_store("registry.example:5000", "someone", "dummy-secret")
    with deadline():
        cfg = docker.auth.load_config(config_path=str(config_path))
        hub = {"ServerAddress": HUB_DOCKER, "Username": USER, "Password": PASSWORD}
        assert docker.auth.resolve_authconfig(cfg) == hub
        assert docker.auth.resolve_authconfig(cfg, "docker.io") == hub
        assert docker.auth.resolve_authconfig(cfg, "unknown.example") is None
        everything = cfg.get_all_credentials()
    assert everything[HUB_DOCKER] == hub
    assert everything["registry.example:5000"]["Username"] == "someone"
