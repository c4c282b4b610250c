"""Throw-away `docker-registry` servers on 127.0.0.1 for the end-to-end tests, and a tiny OCI image.

Everything here runs offline: the TLS material is a one-off CA made with `openssl` in a scratch folder,
the htpasswd file is bcrypt (`htpasswd -Bbn`, the only scheme registry 2.8 accepts) and the seeded image
is an OCI layout written byte by byte (`make_oci_layout`), copied in with `skopeo copy --dest-creds`,
which bypasses every credential helper, so seeding never depends on the helper under test.
"""

from __future__ import annotations

import atexit
import gzip
import hashlib
import io
import json
import os
import platform
import signal
import socket
import ssl
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

#: every subprocess the tests start is bounded by this many seconds
TIMEOUT = 60.0
REPO = "interop/tiny"
TAG = "latest"


class Completed:
    """What one bounded subprocess run gave (text, decoded leniently)."""

    def __init__(self, argv: list[str], code: int, out: str, err: str) -> None:
        self.argv = argv
        self.code = code
        self.out = out
        self.err = err

    def __repr__(self) -> str:
        # The tests only ever feed dummy credentials to clients, so showing their output is safe.
        return (f"<{' '.join(self.argv[:3])}... exit {self.code}\nstdout: {self.out[-1500:]}\n"
                f"stderr: {self.err[-1500:]}>")

    @property
    def text(self) -> str:
        """stdout and stderr together."""
        return self.out + self.err


def run(argv: list[str], env: dict[str, str] | None = None, input: str | None = None,
        timeout: float = TIMEOUT, cwd: str | Path | None = None) -> Completed:
    """Run `argv` in its own process group; on timeout kill the whole group (client and helper alike)."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd, start_new_session=True, text=True,
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        raise AssertionError(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} did not finish in {timeout:.0f} s; "
                             f"stdout: {out[-1000:]!r} stderr: {err[-1000:]!r}") from None
    return Completed(argv, proc.returncode, out, err)


def check(argv: list[str], env: dict[str, str] | None = None, input: str | None = None,
          cwd: str | Path | None = None) -> Completed:
    """`run`, and fail with the output when the exit status is not 0."""
    done = run(argv, env=env, input=input, cwd=cwd)
    if done.code != 0:
        raise AssertionError(f"command failed: {done!r}")
    return done


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- TLS and htpasswd --------------------------------------------------------------------------------
def make_ca_and_leaf(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for IP:127.0.0.1 and DNS:localhost: (ca.crt, crt, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    key, csr, crt, ext = folder / "server.key", folder / "server.csr", folder / "server.crt", folder / "ext.cnf"
    check(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=switchboard test CA",
           "-keyout", str(ca_key), "-out", str(ca_crt),
           "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    check(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
           "-keyout", str(key), "-out", str(csr)])
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    check(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
           "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt)])
    return ca_crt, crt, key


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """A bcrypt htpasswd file for `users`."""
    lines = [check(["htpasswd", "-Bbn", user, password]).out.strip() for user, password in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# -- the registry ------------------------------------------------------------------------------------
class Registry:
    """One `docker-registry serve` on 127.0.0.1:<random port>, plain HTTP or TLS, behind htpasswd."""

    def __init__(self, name: str, folder: Path, htpasswd: Path, tls: tuple[Path, Path, Path] | None = None) -> None:
        self.name = name
        self.folder = folder
        self.htpasswd = htpasswd
        self.tls = tls
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = folder / "registry.log"
        #: a folder holding `ca.crt`, for `--cert-dir` (None for plain HTTP)
        self.cert_dir: Path | None = None
        if tls is not None:
            self.cert_dir = folder / "certs.d"
            self.cert_dir.mkdir(parents=True, exist_ok=True)
            (self.cert_dir / "ca.crt").write_bytes(tls[0].read_bytes())

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the key every client sends to the helper."""
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def image(self) -> str:
        """`127.0.0.1:PORT/interop/tiny:latest`"""
        return f"{self.host}/{REPO}:{TAG}"

    def tls_flags(self, prefix: str = "") -> list[str]:
        """containers/image flags: `--cert-dir DIR` for TLS, `--tls-verify=false` for plain HTTP."""
        if self.cert_dir is not None:
            return [f"--{prefix}cert-dir", str(self.cert_dir)]
        return [f"--{prefix}tls-verify=false"]

    def _config(self) -> Path:
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        http: dict[str, object] = {"addr": self.host, "secret": "not-a-secret"}
        if self.tls is not None:
            http["tls"] = {"certificate": str(self.tls[1]), "key": str(self.tls[2])}
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(data)}, "delete": {"enabled": True}},
            "http": http,
            "auth": {"htpasswd": {"realm": "interop", "path": str(self.htpasswd)}},
        }
        path = self.folder / "config.yml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML; absolute paths throughout
        return path

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        return ssl.create_default_context(cafile=str(self.tls[0]))

    def probe(self, user: str | None = None, password: str | None = None) -> int:
        """The HTTP status of GET /v2/ (with basic auth when given)."""
        request = urllib.request.Request(f"{self.scheme}://{self.host}/v2/")  # noqa: S310 (http/https only)
        if user is not None:
            import base64

            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        # no proxy from the environment: the registry is on loopback
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=self._ssl_context()))
        try:
            with opener.open(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def start(self, deadline_s: float = 30.0) -> None:
        """Start the server and wait until GET /v2/ answers 401 (authentication required)."""
        atexit.register(self.stop)  # also on an interrupted session
        config = self._config()
        for _attempt in range(3):  # the port was free when chosen; retry with another if it is taken now
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            end = time.monotonic() + deadline_s
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    break
                try:
                    if self.probe() == 401:
                        return
                except (OSError, ssl.SSLError):
                    pass
                time.sleep(0.1)
            self.stop()
            if "address already in use" not in self.log_path.read_text(errors="replace"):
                break
            self.port = free_port()
            config = self._config()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"registry {self.name} did not answer 401 on /v2/; its log:\n{tail}")

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 10 s)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# -- a tiny OCI image, written by hand -----------------------------------------------------------------
def _goarch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


class OciImage:
    """What `make_oci_layout` wrote: digests a test can compare with what clients report."""

    def __init__(self, layout: Path, manifest_digest: str, config_digest: str, layer_digest: str) -> None:
        self.layout = layout
        self.manifest_digest = manifest_digest
        self.config_digest = config_digest
        self.layer_digest = layer_digest


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def make_oci_layout(layout: Path, tag: str = TAG) -> OciImage:
    """An OCI image layout with one small gzipped tar layer (`/hello.txt`), deterministic bytes."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        payload = b"hello from docker-credential-switchboard's end-to-end tests\n"
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime, info.mode = len(payload), 1_700_000_000, 0o644
        tar.addfile(info, io.BytesIO(payload))
    raw_layer = tar_bytes.getvalue()
    layer_digest, layer_size = _blob(layout, gzip.compress(raw_layer, mtime=0))
    config = {
        "created": "2023-11-14T22:13:20Z",
        "architecture": _goarch(),
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(raw_layer).hexdigest()}"]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "tests/registry.py"}],
    }
    config_digest, config_size = _blob(layout, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                    "size": layer_size}],
    }
    manifest_digest, manifest_size = _blob(layout, json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                       "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return OciImage(layout, manifest_digest, config_digest, layer_digest)


def seed(registry: Registry, image: OciImage, user: str, password: str, env: dict[str, str],
         policy: Path) -> None:
    """Push `image` to `registry` as REPO:TAG with `skopeo copy --dest-creds` (no helper involved)."""
    check(["skopeo", "--policy", str(policy), "copy", "--quiet", "--dest-creds", f"{user}:{password}",
           *registry.tls_flags("dest-"), f"oci:{image.layout}:{TAG}", f"docker://{registry.image}"], env=env)


# -- token authentication: a registry with `auth: token` and a small token server ----------------------------
def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def libtrust_key_id(der_public_key: bytes) -> str:
    """The `kid` distribution matches against its rootcertbundle: libtrust's KeyID of a public key (base32 of the
    first 240 bits of the SHA-256 of its DER SubjectPublicKeyInfo, in 12 groups of 4 joined by ':')."""
    import base64

    encoded = base64.b32encode(hashlib.sha256(der_public_key).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(encoded[i:i + 4] for i in range(0, len(encoded), 4))


class TokenServer:
    """A loopback http token service (distribution's token spec): `GET /token?service=S&scope=...&account=U` with
    Basic credentials answers `{"token": JWT}` (RS256, `access` for the requested scopes), 401 otherwise.

    Its signing key and a self-signed certificate for it (the registry's `rootcertbundle`) are made with
    `cryptography`. `requests` records (path, query, had Authorization) of every request."""

    SERVICE = "switchboard-test-registry"
    ISSUER = "switchboard-test-issuer"

    def __init__(self, folder: Path, users: dict[str, str]) -> None:
        import datetime
        import http.server
        import threading

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        from cryptography.x509.oid import NameOID

        folder.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "switchboard test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self.bundle = folder / "token-signer.crt"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        kid = libtrust_key_id(key.public_key().public_bytes(serialization.Encoding.DER,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo))
        self.requests: list[tuple[str, dict[str, list[str]], bool]] = []
        server_self = self

        def sign(claims: dict[str, object]) -> str:
            header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
            body = _b64url(json.dumps(claims).encode())
            signature = key.sign(f"{header}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
            return f"{header}.{body}.{_b64url(signature)}"

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                import base64
                import urllib.parse

                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                header = self.headers.get("Authorization", "")
                server_self.requests.append((url.path, query, bool(header)))
                user = None
                if header.startswith("Basic "):
                    try:
                        name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    except ValueError:
                        name, password = "", ""
                    if users.get(name) == password and name:
                        user = name
                if url.path != "/token" or user is None or query.get("service") != [TokenServer.SERVICE]:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                access = []
                for scope in query.get("scope", []):
                    kind, _, rest = scope.partition(":")
                    repo, _, actions = rest.rpartition(":")
                    access.append({"type": kind, "name": repo, "actions": actions.split(",")})
                issued = int(time.time())
                token = sign({"iss": TokenServer.ISSUER, "sub": user, "aud": TokenServer.SERVICE,
                              "exp": issued + 300, "nbf": issued - 10, "iat": issued,
                              "jti": hashlib.sha256(os.urandom(16)).hexdigest(), "access": access})
                body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class TokenRegistry(Registry):
    """A `docker-registry` whose `auth:` is `token` (realm, service, issuer, rootcertbundle of `server`)."""

    def __init__(self, name: str, folder: Path, server: TokenServer,
                 tls: tuple[Path, Path, Path] | None = None) -> None:
        super().__init__(name, folder, folder / "unused-htpasswd", tls)
        self.server = server

    def _config(self) -> Path:
        path = super()._config()
        config = json.loads(path.read_text())
        config["auth"] = {"token": {"realm": self.server.realm, "service": TokenServer.SERVICE,
                                    "issuer": TokenServer.ISSUER, "rootcertbundle": str(self.server.bundle)}}
        path.write_text(json.dumps(config, indent=1))
        return path
