"""The PyInstaller build (build/binary): what only a frozen executable can get wrong.

These tests run when SWITCHBOARD_HELPER names a frozen onedir build (an `_internal/` folder next to the
executable) and skip otherwise; the rest of the suite covers everything else against that executable.

- Child processes (exec routes, delegated helpers, credential_process, gcloud) get the user's environment:
  not the bootloader's LD_LIBRARY_PATH (our bundled libssl/libcrypto/libz) nor its `_PYI_*` variables.
- HTTPS: botocore (ECR) and google-auth + requests (GCR, an RSA-signed JWT: cryptography) verify with the
  bundled certifi file, and trust what their own variables name.
- urllib (ACR) on a Linux whose OpenSSL paths are not the build machine's: the runtime hook points
  SSL_CERT_FILE at the system's CA bundle, else at the bundled certifi file, and never overrides the user.
  These run the executable in a private mount namespace (`unshare -m`, or `unshare -rm` unprivileged)
  where /usr/lib/ssl (Debian's OPENSSLDIR) is hidden.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import test_acr
from tests.conftest import helper_executable, run_helper
from tests.fake_aws import ECR_HOST, aws_env
from tests.loopback import Loopback, QuietHandler
from tests.test_acr import REGISTRY, ZERO_GUID, Servers, make_ca

# test_acr's stand-ins (Entra ID, a CONNECT proxy, the registry over TLS) and their fixtures, reused
servers = test_acr.servers
azure = test_acr.azure
client_secret = test_acr.client_secret
no_real_identity_endpoint = test_acr.no_real_identity_endpoint

PROBE_HOST = "probe.example"
OPENSSL_DIR = "/usr/lib/ssl"  # the build machine's (Debian) OPENSSLDIR, baked into the bundled libcrypto


def frozen_internal() -> Path | None:
    """The `_internal/` folder of the executable under test, or None when it is not a PyInstaller onedir."""
    named = os.environ.get("SWITCHBOARD_HELPER")
    if not named:
        return None
    internal = Path(named).resolve().parent / "_internal"
    return internal if internal.is_dir() else None


pytestmark = pytest.mark.skipif(frozen_internal() is None,
                                reason="SWITCHBOARD_HELPER does not name a frozen build (build/binary)")


def probe_route(routes: Path, variables: str) -> None:
    """An exec route whose secret is the child's view of the environment variables matching `variables`."""
    script = f"env | grep -E '^({variables})=' | sort | tr '\\n' ' '; echo end"
    routes.write_text(f'[[route]]\nmatch = "{PROBE_HOST}"\nbackend = "exec"\nusername = "probe"\n'
                      f"command = {json.dumps(['/bin/sh', '-c', script])}\n")


def child_sees(env: dict[str, str] | None = None) -> str:
    result = run_helper("get", PROBE_HOST, env=env)
    assert result.code == 0, result.out + result.err
    secret: str = result.json()["Secret"]
    return secret


# ---- the environment of child processes ------------------------------------------------------------------


def test_children_get_the_users_library_path_and_no_bootloader_variables(routes: Path) -> None:
    probe_route(routes, "LD_LIBRARY_PATH|LIBPATH|_PYI_[A-Z_]*|LD_LIBRARY_PATH_ORIG")
    assert child_sees(dict(os.environ, LD_LIBRARY_PATH="/opt/vendor/lib")) == "LD_LIBRARY_PATH=/opt/vendor/lib end"
    without = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    assert child_sees(without) == "end"


def test_the_executable_runs_itself_as_a_child(routes: Path) -> None:
    """A nested copy of the executable must start normally (no inherited `_PYI_*` state)."""
    routes.write_text(f'[[route]]\nmatch = "{PROBE_HOST}"\nbackend = "exec"\nusername = "probe"\n'
                      f'command = {json.dumps([helper_executable(), "version"])}\n')
    assert child_sees().startswith("docker-credential-switchboard (docker-credential-switchboard) ")


def test_the_build_carries_the_notices_of_what_it_bundles() -> None:
    internal = frozen_internal()
    assert internal is not None
    notices = (internal.parent / "THIRD-PARTY-NOTICES.txt").read_text(encoding="utf-8")
    for needle in ("Python Software Foundation", "botocore", "Apache License", "cryptography", "google-auth",
                   "keyring", "certifi", "Mozilla Public License", "PyInstaller bootloader"):
        assert needle in notices, needle
    for library in (p.name for p in internal.glob("lib*.so*") if not p.name.startswith("libpython")):
        assert library in notices, library


# ---- HTTPS through botocore and google-auth ----------------------------------------------------------------


class CloudHandler(QuietHandler):
    """Google's token endpoint (/token) and ECR's GetAuthorizationToken (anything else)."""

    def do_POST(self) -> None:
        self.body()
        body: dict[str, object]
        if self.path.startswith("/token"):
            body, kind = {"access_token": "gcp-token", "expires_in": 3600, "token_type": "Bearer"}, "application/json"
        else:
            token = base64.b64encode(b"AWS:ecr-token").decode()
            body = {"authorizationData": [{"authorizationToken": token, "expiresAt": time.time() + 3600}]}
            kind = "application/x-amz-json-1.1"
        self.send(200, json.dumps(body).encode(), kind)


@pytest.fixture(scope="module")
def tls_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(https://localhost:port, the CA file) of a loopback TLS server with a throw-away CA."""
    ca, cert, key = make_ca(tmp_path_factory.mktemp("ca"), ["localhost"])
    server = Loopback(CloudHandler, tls=(cert, key))
    yield f"https://localhost:{server.port}", ca
    server.close()


CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE")


def no_ca_variables(**extra: str) -> dict[str, str]:
    return dict({k: v for k, v in os.environ.items() if k not in CA_VARIABLES}, **extra)




def rejected_for_trust(err: str) -> bool:
    """The SDK loaded a CA bundle and the throw-away CA is not in it (not: no bundle found at all)."""
    return "CERTIFICATE_VERIFY_FAILED" in err or "certificate verify failed" in err


def test_botocore_trusts_aws_ca_bundle(tls_cloud: tuple[str, Path]) -> None:
    url, ca = tls_cloud
    result = run_helper("get", ECR_HOST, env=aws_env(url, no_ca_variables(), AWS_ECR_DISABLE_CACHE="1",
                                                     AWS_CA_BUNDLE=str(ca)))
    assert (result.code, result.err) == (0, ""), result.out
    assert result.json()["Secret"] == "ecr-token"


def test_botocore_verifies_against_its_bundled_certificates(tls_cloud: tuple[str, Path]) -> None:
    result = run_helper("get", ECR_HOST, env=aws_env(tls_cloud[0], no_ca_variables(), AWS_ECR_DISABLE_CACHE="1",
                                                             SWITCHBOARD_DEBUG="1"))
    assert result.code == 1 and rejected_for_trust(result.err), result.err


@pytest.fixture
def service_account(tmp_path: Path, tls_cloud: tuple[str, Path]) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({"type": "service_account", "project_id": "p", "private_key_id": "0123",
                                "private_key": pem, "client_email": "sa@p.iam.gserviceaccount.com",
                                "client_id": "1", "token_uri": f"{tls_cloud[0]}/token"}))
    return path


def test_google_auth_trusts_requests_ca_bundle(tls_cloud: tuple[str, Path], service_account: Path) -> None:
    env = no_ca_variables(GOOGLE_APPLICATION_CREDENTIALS=str(service_account), REQUESTS_CA_BUNDLE=str(tls_cloud[1]))
    result = run_helper("get", "gcr.io", env=env)
    assert (result.code, result.err) == (0, ""), result.out
    assert result.json() == {"ServerURL": "gcr.io", "Username": "oauth2accesstoken", "Secret": "gcp-token"}


def test_google_auth_verifies_against_its_bundled_certificates(service_account: Path) -> None:
    env = no_ca_variables(GOOGLE_APPLICATION_CREDENTIALS=str(service_account), SWITCHBOARD_DEBUG="1")
    result = run_helper("get", "gcr.io", env=env)
    assert result.code == 1 and rejected_for_trust(result.err), result.err


# ---- urllib (ACR) on another distribution: the certificate runtime hook -------------------------------------


def unshare_prefix() -> list[str]:
    """How to run a command in a private mount namespace here, or skip."""
    if not os.path.isdir(OPENSSL_DIR):
        pytest.skip(f"{OPENSSL_DIR} does not exist: this is not a Debian-built executable on Debian")
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is not installed")
    prefix = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    probe = subprocess.run([*prefix, "sh", "-c", f"mount -t tmpfs none {OPENSSL_DIR}"], capture_output=True,
                           timeout=30, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.decode(errors='replace').strip()}")
    return prefix


def in_namespace(mounts: list[str], action: str, data: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the executable after `mounts` (shell commands) in a private mount namespace."""
    script = " && ".join([*mounts, 'exec "$@"'])
    argv = [*unshare_prefix(), "sh", "-c", script, "sh", helper_executable(), action]
    return subprocess.run(argv, input=data, env=env, capture_output=True, text=True, timeout=60, check=False)


HIDE_OPENSSL_DIR = f"mount -t tmpfs none {OPENSSL_DIR}"


def test_on_the_build_distribution_the_hook_changes_nothing(routes: Path) -> None:
    probe_route(routes, "SSL_CERT_FILE|SSL_CERT_DIR")
    assert child_sees(no_ca_variables()) == "end"


def test_the_hook_never_overrides_the_user(routes: Path) -> None:
    probe_route(routes, "SSL_CERT_FILE|SSL_CERT_DIR")
    done = in_namespace([HIDE_OPENSSL_DIR], "get", PROBE_HOST, no_ca_variables(SSL_CERT_DIR="/nowhere"))
    assert '"Secret":"SSL_CERT_DIR=/nowhere end"' in done.stdout, done.stdout + done.stderr


def test_elsewhere_acr_trusts_the_system_ca_bundle(client_secret: Servers) -> None:
    # The throw-away CA plays the system bundle of a distribution without /usr/lib/ssl.
    mounts = [HIDE_OPENSSL_DIR, f"mount --bind {client_secret.ca} /etc/ssl/certs/ca-certificates.crt"]
    # Control first (a success would be cached): with the hook held off by a user setting, nothing is trusted.
    control = in_namespace(mounts, "get", REGISTRY, no_ca_variables(SSL_CERT_DIR="/nowhere", SWITCHBOARD_DEBUG="1"))
    assert control.returncode == 1 and rejected_for_trust(control.stderr), control.stdout + control.stderr
    done = in_namespace(mounts, "get", REGISTRY, no_ca_variables())
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["Username"] == ZERO_GUID


def test_with_no_system_bundle_the_bundled_certifi_file_is_used(routes: Path) -> None:
    probe_route(routes, "SSL_CERT_FILE|SSL_CERT_DIR")
    done = in_namespace([HIDE_OPENSSL_DIR, "mount -t tmpfs none /etc/ssl"], "get", PROBE_HOST, no_ca_variables())
    bundled = frozen_internal() / "certifi" / "cacert.pem"  # type: ignore[operator]
    assert f'"Secret":"SSL_CERT_FILE={bundled} end"' in done.stdout, done.stdout + done.stderr
