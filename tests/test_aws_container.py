"""Container credentials (ECS, CodeBuild, EKS Pod Identity) on the botocore-free cold path (aws_container).

Every comparison is with botocore itself, against the same loopback container endpoint and FakeEcr: which path a
set-up takes (confirmed by botocore's `get_credentials().method`), the request the endpoint sees (URL, Accept,
Authorization from the token file), the keys the ECR request is signed with, and the not-found reason when the
endpoint fails. The relative URI's address (169.254.170.2) is never contacted: its URL is checked, not fetched.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helper.backends import aws_container, aws_fast
from tests.conftest import NOT_FOUND, get_in_fresh_process
from tests.fake_aws import ECR_HOST, FakeEcr
from tests.loopback import Loopback, QuietHandler
from tests.test_aws_fast import KEYS, both, fake  # noqa: F401 - fake: the FakeEcr fixture, shared

POD_TOKEN = "eyJhbGciOi.pod-identity-token.sig"  # what the token file holds


class ContainerEndpoint(Loopback):
    """The ECS / EKS Pod Identity agent's credentials endpoint: `mode` ok, 500, garbage or missing; records each
    request's path and headers."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.seen: list[tuple[str, dict[str, str]]] = []
        endpoint = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                endpoint.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if endpoint.mode == "500":
                    self.send(500, b"agent unavailable", "text/plain")
                elif endpoint.mode == "garbage":
                    self.send(200, b"<html>not json</html>", "text/html")
                else:
                    doc = {"AccessKeyId": "ASIACONTAINER", "SecretAccessKey": "container-secret",
                           "Token": "container-session", "Expiration": "2099-01-01T00:00:00Z",
                           "AccountId": "123456789012"}
                    if endpoint.mode == "missing":
                        del doc["Token"]
                    elif endpoint.mode == "no-expiry":
                        del doc["Expiration"]
                    elif endpoint.mode == "expiring":  # inside botocore's 15 min refresh window
                        doc["Expiration"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 300))
                    elif endpoint.mode == "odd-expiry":
                        doc["Expiration"] = "tomorrow"
                    self.send(200, json.dumps(doc).encode())

        super().__init__(Handler)


@pytest.fixture
def agent(fake: FakeEcr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ContainerEndpoint]:  # noqa: F811
    """FakeEcr for the token, the container endpoint for the keys (EKS Pod Identity's way: full URI, token file)."""
    for name in KEYS:
        monkeypatch.delenv(name)
    server = ContainerEndpoint()
    (tmp_path / "pod-token").write_text(POD_TOKEN)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{server.url}/v1/credentials")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(tmp_path / "pod-token"))
    yield server
    server.close()


def test_the_container_endpoint_is_asked_as_botocore_asks_and_ecr_signed_with_its_keys(
        agent: ContainerEndpoint, fake: FakeEcr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    assert aws_fast.credential_source({}, None) == "container"
    fast, slow = both(monkeypatch, tmp_path)
    assert fast[0] == slow[0] == 0
    assert [json.loads(run[1])["Secret"] for run in (fast, slow)] == ["token-1", "token-2"]
    assert fake.key_ids == ["ASIACONTAINER", "ASIACONTAINER"]
    assert fake.requests[0] == fake.requests[1]
    (ours_path, ours), (their_path, theirs) = agent.seen
    assert ours_path == their_path == "/v1/credentials"
    for name in ("accept", "authorization"):
        assert ours[name] == theirs[name], name
    assert ours["authorization"] == POD_TOKEN
    import botocore.session

    creds = botocore.session.Session().get_credentials()
    assert creds is not None and creds.method == "container-role"  # botocore's chain chose the same source


@pytest.mark.parametrize(("mode", "reason"), [
    ("500", "Received non 200 response 500 from container metadata: agent unavailable"),
    ("garbage", "Unable to parse JSON returned from container metadata services"),
    ("missing", "KeyError: 'Token'"),
])
def test_a_failing_endpoint_is_the_same_not_found_with_botocores_reason(
        agent: ContainerEndpoint, mode: str, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent.mode = mode
    fast, slow = both(monkeypatch, tmp_path)
    assert fast[:2] == slow[:2] == (1, NOT_FOUND + "\n")
    reasons = [[line.split("] ", 1)[-1] for line in run[2] if "failed:" in line][-1] for run in (fast, slow)]
    assert reasons[0] == reasons[1]
    assert reason in reasons[0]
    assert len(agent.seen) == (2 if mode == "missing" else 6)  # three attempts each, a 1 s sleep after each
    assert "container-secret" not in "\n".join(fast[2] + slow[2])


def test_keys_near_their_expiry_or_without_a_readable_one_are_botocores_to_refresh_or_refuse(
        agent: ContainerEndpoint, fake: FakeEcr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    agent.mode = "expiring"  # botocore asks again at once, then signs with the new keys
    fast, slow = both(monkeypatch, tmp_path)
    assert fast[0] == slow[0] == 0
    assert any("refresh window" in line for line in fast[2])  # the fast path handed the fetch to botocore
    assert fake.key_ids == ["ASIACONTAINER", "ASIACONTAINER"]
    for mode in ("no-expiry", "odd-expiry"):  # botocore's KeyError, or its dateutil's refusal: the same
        agent.mode = mode
        fast, slow = both(monkeypatch, tmp_path)
        reasons = [[line.split("] ", 1)[-1] for line in run[2] if "failed:" in line][-1] for run in (fast, slow)]
        assert fast[:2] == slow[:2] == (1, NOT_FOUND + "\n")
        assert reasons[0] == reasons[1], mode


def test_a_closed_port_and_a_token_file_with_a_newline_fail_as_botocore_fails(
        agent: ContainerEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pod-token").write_text(POD_TOKEN + "\n")
    fast, slow = both(monkeypatch, tmp_path)
    reasons = [[line.split("] ", 1)[-1] for line in run[2] if "failed:" in line][-1] for run in (fast, slow)]
    assert reasons[0] == reasons[1] and "ValueError: Auth token value is not a legal header value" in reasons[0]
    assert agent.seen == []  # nothing was asked with a broken header
    (tmp_path / "pod-token").write_text(POD_TOKEN)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/v1/credentials")
    fast, slow = both(monkeypatch, tmp_path)
    reasons = [[line.split("] ", 1)[-1] for line in run[2] if "failed:" in line][-1] for run in (fast, slow)]
    assert reasons[0] == reasons[1]
    assert 'Could not connect to the endpoint URL: "http://127.0.0.1:9/v1/credentials"' in reasons[0]
    assert POD_TOKEN not in "\n".join(fast[2] + slow[2])


def test_a_cold_container_get_imports_no_botocore(agent: ContainerEndpoint) -> None:
    code, out, modules = get_in_fresh_process(ECR_HOST, dict(os.environ))
    assert code == 0 and json.loads(out)["Secret"] == "token-1"
    assert not [name for name in modules if name.startswith(("botocore", "boto3", "urllib3"))]
    assert agent.seen[0][1]["authorization"] == POD_TOKEN


@pytest.mark.parametrize(("env", "boto_file", "expected", "botocore_method"), [
    ({}, None, "container", "container-role"),
    ({"AWS_CONTAINER_AUTHORIZATION_TOKEN": "static-token"}, None, "container", "container-role"),
    ({"BOTO_CONFIG": "BOTO_FILE"}, "[Credentials]\naws_access_key_id = AKIABOTO\naws_secret_access_key = s\n",
     "botocore", "boto-config"),
    ({"BOTO_CONFIG": "BOTO_FILE"}, "[Boto]\ndebug = 0\n", "botocore", "container-role"),
    ({}, "HOME_BOTO", "botocore", "boto-config"),
    ({"AWS_CREDENTIAL_FILE": "/nonexistent/aws-credential-file"}, None, "botocore", None),
    ({**KEYS}, None, "env", "env"),  # the environment's keys come first
])
def test_which_path_a_container_set_up_takes_is_botocores_choice(
        agent: ContainerEndpoint, env: dict[str, str], boto_file: str | None, expected: str,
        botocore_method: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    boto_keys = "[Credentials]\naws_access_key_id = AKIABOTO\naws_secret_access_key = s\n"
    if boto_file == "HOME_BOTO":
        Path(os.environ["HOME"], ".boto").write_text(boto_keys)
    elif boto_file is not None:
        (tmp_path / "boto.cfg").write_text(boto_file)
    for name, value in env.items():
        monkeypatch.setenv(name, str(tmp_path / "boto.cfg") if value == "BOTO_FILE" else value)
    if "AWS_CONTAINER_AUTHORIZATION_TOKEN" in env:
        monkeypatch.delenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    assert aws_fast.credential_source({}, None).split(":")[0] == expected
    if botocore_method is None:
        return
    import botocore.session

    creds = botocore.session.Session().get_credentials()
    assert creds is not None and creds.method == botocore_method


@pytest.mark.parametrize(("env", "url"), [
    ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc"}, "http://169.254.170.2/v2/credentials/abc"),
    ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/x", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://localhost/y"},
     "http://169.254.170.2/v2/x"),  # the relative URI wins, as in botocore
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials"},
     "http://169.254.170.23/v1/credentials"),  # EKS Pod Identity
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://[fd00:ec2::23]/v1/credentials"},
     "http://[fd00:ec2::23]/v1/credentials"),
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://localhost:51679/creds"}, "http://localhost:51679/creds"),
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.2:8080/creds"}, "http://127.0.0.2:8080/creds"),
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "https://creds.example/v1"}, None),  # botocore's own CA bundle
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.0.0.5/creds"}, None),  # botocore refuses the host
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://user@localhost/creds"}, None),
    ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "v2/no-slash"}, None),
    ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/a b"}, None),  # urllib3 percent-encodes: botocore's to send
    ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/\u20ac"}, None),
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://localhost/x\r\nX-Injected: 1"}, None),
])
def test_the_container_url_is_botocores_or_botocore_decides(env: dict[str, str], url: str | None,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.credentials import ContainerMetadataFetcher, ContainerProvider

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert aws_container.container_url() == url
    if url is None:
        return
    provider = ContainerProvider()
    theirs = (ContainerMetadataFetcher().full_url(os.environ["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"])
              if provider._provided_relative_uri() else os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"])
    assert theirs == url
    ContainerMetadataFetcher()._validate_allowed_url(url)  # botocore accepts it (raises otherwise)
