"""Host leaks: lookalike registry hosts never reach a cloud backend, and a token goes only to its host.

The table holds suffix tricks, userinfo (`https://a.azurecr.io@evil.example`), trailing dots, capitals,
Unicode confusables (Cyrillic U+0430 for a, fullwidth dots, a zero-width space) and their punycode, bad and odd
ports, whitespace and paths. For each one:

* in-process: `helper.router.route_for` chooses the static store, and a `get` opens no socket at all;
* through the real executable, with every cloud pointed at loopback servers that count what they
  receive (AWS_ENDPOINT_URL at tests/fake_aws.FakeEcr; AZURE_AUTHORITY_HOST with a client secret, and
  GCE_METADATA_HOST, at a counting server; an exec route whose command leaves a mark): not one request,
  not one run, and the exact not-found;
* then, once the genuine hosts have fetched their tokens (the controls, which prove the servers are
  reachable), the lookalikes still get not-found, never a cached token, and `list` names only the
  hosts the tokens were requested for.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helper import hosts
from helper.config import Config
from helper.router import route_for
from tests.conftest import NOT_FOUND, call, run_helper
from tests.fake_aws import ECR_HOST, FakeEcr
from tests.loopback import Loopback, QuietHandler
from tests.soak import figures

ECR = ECR_HOST
CYRILLIC_A = "\u0430"  # looks like a Latin a
EMPTY = Config(None, [], None)


def punycode(host: str) -> str:
    """The ASCII (IDNA) spelling of a host with non-ASCII labels: what a browser would send."""
    return ".".join(label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
                    for label in host.split("."))


CONFUSABLES = [("a", "\u0430"), ("e", "\u0435"), ("o", "\u043e"), ("c", "\u0441")]  # Cyrillic look-alikes


def spoofs(genuine: str, brand: str) -> list[str]:
    """Tricks that work on any host; Unicode confusables go into `brand`, a label a route spells literally
    (a confusable in a wildcard label, such as the ECR region, is still the cloud's own host)."""
    confused = [genuine.replace(brand, brand.replace(latin, cyrillic, 1), 1)
                for latin, cyrillic in CONFUSABLES if latin in brand]
    return [
        f"{genuine}.evil.example", f"{genuine}evil.example", f"evil.example.{genuine}.",
        f"{genuine}@evil.example", f"https://{genuine}@evil.example", f"https://{genuine}:443@evil.example",
        f"user:pass@{genuine}", f"https://evil.example@{genuine}", f"{genuine}\\@evil.example",
        f"evil.example/{genuine}", f"https://evil.example/{genuine}", f"http://evil.example/v2/{genuine}",
        f"{genuine}.", f"{genuine}..", f".{genuine}", genuine.upper(), genuine.replace(brand, brand.capitalize()),
        f"{genuine}:0", f"{genuine}:99999", f"{genuine}:abc", f"{genuine}:", f"{genuine}:443:443",
        f"{genuine} evil.example", f"{genuine}\tx", f"{genuine}%2eevil.example", f"{genuine};evil.example",
        f"{genuine}#evil.example", f"{genuine}?evil.example", f"{genuine},evil.example",
        genuine.replace(".", "\uff0e"), genuine.replace(".", "\u3002"), genuine.replace(".", "..", 1),
        genuine.replace(brand, brand[:2] + "\u200b" + brand[2:]), f"[{genuine}]",
        *confused, *(punycode(host) for host in confused),
    ]


# Amazon's own names whose first label is no 12-digit account: the ECR route claims them (the host is
# Amazon's), and the backend refuses them before any request
ECR_REFUSED = ["12345678901.dkr.ecr.us-east-1.amazonaws.com", "evilevilevil.dkr.ecr.us-east-1.amazonaws.com",
               f"evil-{ECR}", f"xn--{ECR}", f"{ECR.replace('1', 'l', 1)}"]
ECR_LOOKALIKES = [*spoofs(ECR, "amazonaws"), *spoofs("public.ecr.aws", "ecr"), *ECR_REFUSED,
                  "dkr.ecr.us-east-1.amazonaws.com", "a.123456789012.dkr.ecr.us-east-1.amazonaws.com",
                  "123456789012.dkr.ecr.us-east-1.amazonaws.co", "123456789012.dkr.ecr.us-east-1.amazonaws.com.cn.evil",
                  "123456789012-dkr.ecr.us-east-1.amazonaws.com", "123456789012.dkr.ecr..amazonaws.com",
                  "ecr-public.aws.com.evil.example", "public-ecr.aws", "evilpublic.ecr.aws"]
ACR_LOOKALIKES = [*spoofs("a.azurecr.io", "azurecr"), "azurecr.io", "aazurecr.io", "a.b.azurecr.io", "a.azurecr.com",
                  "a.azurecr.io.cn", "a.azurecr.cn.evil.example", "a-azurecr.io", "a.azurecr.us.evil.example"]
GCP_LOOKALIKES = [*spoofs("gcr.io", "gcr"), *spoofs("us-docker.pkg.dev", "docker"),
                  *spoofs("docker.us-central1.rep.pkg.dev", "rep"),
                  "evilgcr.io", "a.b.gcr.io", "docker.pkg.dev", "-docker.pkg.dev", "us-docker.pkg.dev.evil.example",
                  "\u0261cr.io", "g\u0441r.io", punycode("g\u0441r.io"), "docker.rep.pkg.dev", "docker.a.b.rep.pkg.dev"]
EXEC_LOOKALIKES = [*spoofs("x.corp.example", "corp"), "corp.example", "a.b.corp.example", "x.corp.example.evil"]
LOOKALIKES = sorted(set(ECR_LOOKALIKES + ACR_LOOKALIKES + GCP_LOOKALIKES + EXEC_LOOKALIKES)
                    - {ECR, "public.ecr.aws", "a.azurecr.io", "gcr.io", "us-docker.pkg.dev", "x.corp.example"})

GENUINE = {  # key -> backend: the controls, and proof that the table is not vacuous
    ECR: "ecr", f"{ECR}:443": "ecr", f"https://{ECR}": "ecr", f"https://{ECR}/v2/": "ecr",
    "public.ecr.aws": "ecr-public",
    "a.azurecr.io": "acr", "a.azurecr.io:443": "acr", "b.azurecr.cn": "acr",
    "gcr.io": "gcp", "eu.gcr.io": "gcp", "us-docker.pkg.dev": "gcp", "docker.us-central1.rep.pkg.dev": "gcp",
}


def test_the_lookalike_table_is_what_it_claims() -> None:
    assert len(LOOKALIKES) > 200
    assert "https://a.azurecr.io@evil.example" in LOOKALIKES and "a.\u0430zurecr.io" in LOOKALIKES
    assert punycode("a.\u0430zurecr.io") == "a.\u0430zurecr.io".encode("idna").decode() == "a.xn--zurecr-2nf.io"
    assert "a.xn--zurecr-2nf.io" in LOOKALIKES
    for genuine, backend in GENUINE.items():
        assert route_for(hosts.parse(genuine), EMPTY).backend == backend, genuine


@pytest.mark.parametrize("key", LOOKALIKES)
def test_a_lookalike_routes_to_the_static_store(key: str) -> None:
    route = route_for(hosts.parse(key.strip()), EMPTY)
    assert route.backend == ("ecr" if key in ECR_REFUSED else "store"), route.backend


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every socket connection attempt in this process is recorded and refused."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise ConnectionRefusedError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_lookalikes_open_no_socket_in_process(no_sockets: list[object]) -> None:
    for key in LOOKALIKES:
        result = call("get", key)
        assert result.code == 1, key
        assert result.out in (NOT_FOUND + "\n", "the server URL must be a single line without NUL bytes\n"), key
    assert no_sockets == []


class Counter(Loopback):
    """A loopback HTTP server that answers 400 to everything and remembers what it was asked."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        counter = self

        class Handler(QuietHandler):
            def _answer(self) -> None:
                counter.requests.append(f"{self.command} {self.path}")
                self.send(400, b'{"error": "invalid_request", "error_description": "counted"}')

            do_GET = do_POST = do_PUT = _answer

        super().__init__(Handler)
        self.hostport = self.address


@pytest.fixture
def clouds(tmp_path: Path, routes: Path) -> Iterator[tuple[dict[str, str], FakeEcr, Counter, Path]]:
    fake, counter = FakeEcr(), Counter()
    mark = tmp_path / "exec-ran"
    command = tmp_path / "token.sh"
    command.write_text(f"#!/bin/sh\nread key\necho \"$key\" >> '{mark}'\necho exec-token\n")
    command.chmod(0o755)
    routes.write_text(f'[[route]]\nmatch = "*.corp.example"\nbackend = "exec"\ncommand = ["{command}"]\n'
                      'username = "robot"\nttl = 600\n')
    env = dict(os.environ, AWS_ENDPOINT_URL=fake.url, AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
               AWS_SECRET_ACCESS_KEY="aws-secret-never-sent", AWS_REGION="us-east-1",
               AZURE_CLIENT_ID="client-id", AZURE_CLIENT_SECRET="azure-secret-never-sent", AZURE_TENANT_ID="tenant",
               AZURE_AUTHORITY_HOST=f"http://{counter.hostport}", GCE_METADATA_HOST=counter.hostport,
               GCE_METADATA_IP=counter.hostport)
    yield env, fake, counter, mark
    fake.close()
    counter.close()


def get_all(keys: list[str], env: dict[str, str]) -> list[tuple[str, int, str, str]]:
    def one(key: str) -> tuple[str, int, str, str]:
        result = run_helper("get", key, env=env, timeout=60)
        return key, result.code, result.out, result.err

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, keys))


def test_lookalikes_never_reach_a_cloud_and_tokens_go_only_to_their_host(
        clouds: tuple[dict[str, str], FakeEcr, Counter, Path]) -> None:
    env, fake, counter, mark = clouds
    bad = NOT_FOUND + "\n", "the server URL must be a single line without NUL bytes\n"
    for key, code, out, err in get_all(LOOKALIKES, env):
        assert (code, err) == (1, "") and out in bad, (key, out, err)
    assert fake.count() == 0, fake.requests
    assert counter.requests == []
    assert not mark.exists()

    # the controls: the genuine hosts do reach their endpoints (so the zeros above mean something)
    ecr = run_helper("get", ECR, env=env, timeout=60)
    assert ecr.code == 0 and json.loads(ecr.out) == {"ServerURL": ECR, "Username": "AWS", "Secret": "token-1"}
    assert run_helper("get", "x.corp.example", env=env).out.count("exec-token") == 1
    assert mark.read_text() == "x.corp.example\n"
    assert run_helper("get", "a.azurecr.io", env=env, timeout=60).out == NOT_FOUND + "\n"  # Entra said 400
    assert any(request.startswith("POST /tenant/oauth2/v2.0/token") for request in counter.requests)
    entra = len(counter.requests)
    assert run_helper("get", "gcr.io", env=env, timeout=60).out == NOT_FOUND + "\n"
    assert len(counter.requests) > entra, "the metadata server was never asked: the GCP control is broken"
    asked = list(counter.requests)

    # with tokens cached for the genuine hosts, the lookalikes still get nothing of them
    for key, code, out, _ in get_all(LOOKALIKES, env):
        assert code == 1 and out in bad and "token-1" not in out and "exec-token" not in out, (key, out)
    assert fake.count() == 1 and counter.requests == asked and mark.read_text() == "x.corp.example\n"
    listed = json.loads(run_helper("list", None, env=env).out)
    assert listed == {ECR: "AWS", "x.corp.example": "robot"}
    figures("host leaks", lookalikes=len(LOOKALIKES), executable_runs=2 * len(LOOKALIKES) + 5,
            cloud_requests_from_lookalikes=0)
