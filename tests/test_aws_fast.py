"""The botocore-free cold ECR fetch (helper/backends/aws_fast.py) gives botocore's answer, or leaves the fetch to it.

Every comparison is with the installed botocore itself: its signature for the same request and time, its
`client.meta.endpoint_url`, its credential chain's choice, its answer and its failure reasons against the
same loopback endpoints (tests/fake_aws.py FakeEcr, moto in server mode)."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import pytest

from helper.backends import aws_client, aws_endpoints, aws_fast, aws_sigv4
from tests.conftest import NOT_FOUND, call, get_in_fresh_process, run_helper
from tests.fake_aws import ECR_HOST, FakeEcr, aws_env
from tests.loopback import ConnectProxy
from tests.test_ecr_moto import moto_url  # noqa: F401 - the moto server fixture, shared

SIGNED_AT = 1_790_000_000  # 2026-09-21T...Z: a fixed signing time for both signers
ECR_BODY = b'{"registryIds":["123456789012"]}'
STS_BODY = b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr"
# the way to send a fetch to botocore without changing what botocore does: legacy is its default mode
BOTOCORE = {"AWS_DEFAULTS_MODE": "legacy"}


# ---- signatures ------------------------------------------------------------------------------------------------

def botocore_signature(url: str, headers: dict[str, str], body: bytes, region: str, service: str,
                       token: str | None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from botocore import auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fixed = datetime.datetime.fromtimestamp(SIGNED_AT, datetime.timezone.utc).replace(tzinfo=None)
    monkeypatch.setattr(auth, "get_current_datetime", lambda: fixed)
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    auth.SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token), service,
                   region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEBYaDH//session+token="])
@pytest.mark.parametrize(("url", "headers", "body", "region", "service"), [
    ("https://api.ecr.eu-west-1.amazonaws.com/", {"Host": "api.ecr.eu-west-1.amazonaws.com",
     "X-Amz-Target": aws_fast.TARGETS["ecr"], "Content-Type": "application/x-amz-json-1.1"}, ECR_BODY,
     "eu-west-1", "ecr"),
    ("https://api.ecr-public.us-east-1.amazonaws.com/", {"Host": "api.ecr-public.us-east-1.amazonaws.com",
     "X-Amz-Target": aws_fast.TARGETS["ecr-public"], "Content-Type": "application/x-amz-json-1.1"}, b"{}",
     "us-east-1", "ecr-public"),
    ("https://sts.us-gov-west-1.amazonaws.com/", {"Host": "sts.us-gov-west-1.amazonaws.com",
     "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, STS_BODY, "us-gov-west-1", "sts"),
    ("http://127.0.0.1:8443/", {"Host": "127.0.0.1:8443", "X-Amz-Target": aws_fast.TARGETS["ecr"],
     "Content-Type": "application/x-amz-json-1.1", "User-Agent": "not signed"}, ECR_BODY, "cn-north-1", "ecr"),
])
def test_the_signature_is_botocores_for_the_same_request_and_time(
        url: str, headers: dict[str, str], body: bytes, region: str, service: str, token: str | None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ours = aws_sigv4.sign(headers, body, region=region, service=service, access_key="AKIDEXAMPLE",
                          secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token=token, epoch=SIGNED_AT)
    theirs = botocore_signature(url, headers, body, region, service, token, monkeypatch)
    assert ours == theirs
    assert ("X-Amz-Security-Token" in ours) == bool(token)


@pytest.mark.parametrize("account", [None, "123456789012", "0\"\u00e9"])
def test_the_request_body_is_the_one_botocore_serializes(account: str | None) -> None:
    import botocore.session
    from botocore.serialize import create_serializer

    client = botocore.session.Session().create_client("ecr", region_name="us-east-1", aws_access_key_id="a",
                                                      aws_secret_access_key="b")
    params = {"registryIds": [account]} if account else {}
    model = client.meta.service_model.operation_model("GetAuthorizationToken")
    theirs = create_serializer("json").serialize_to_request(params, model)["body"]
    assert aws_fast.request_body(account) == theirs


def test_a_different_secret_gives_a_different_signature() -> None:
    """Control: the comparison above would see a wrong key."""
    one, two = (aws_sigv4.sign({"Host": "h"}, b"", region="us-east-1", service="ecr", access_key="A", secret_key=key,
                               token=None, epoch=SIGNED_AT) for key in ("one", "two"))
    assert one["Authorization"] != two["Authorization"]


# ---- endpoints -------------------------------------------------------------------------------------------------

def _partitions() -> list[dict[str, object]]:
    import botocore

    path = Path(botocore.__file__).parent / "data" / "partitions.json"
    return json.loads(path.read_text())["partitions"]  # type: ignore[no-any-return]


KNOWN_REGIONS = [region for part in _partitions() for region in part["regions"]  # type: ignore[attr-defined]
                 if not region.endswith("-global")]
UNKNOWN_REGIONS = ["us-east-9", "eu-south-7", "cn-south-7", "us-gov-central-1", "us-iso-south-3", "us-isob-north-2",
                   "eusc-de-west-1", "eu-isoe-north-1", "us-isof-west-4"]


def botocore_url(service: str, region: str, fips: bool = False, dualstack: bool = False) -> str | None:
    import botocore.session
    from botocore.config import Config

    try:
        client = botocore.session.Session().create_client(
            service, region_name=region, aws_access_key_id="a", aws_secret_access_key="b",
            config=Config(use_fips_endpoint=fips, use_dualstack_endpoint=dualstack))
    except Exception:
        return None
    return str(client.meta.endpoint_url)


@pytest.mark.parametrize("region", KNOWN_REGIONS + UNKNOWN_REGIONS)
def test_every_ecr_and_sts_endpoint_is_botocores_in_every_partition_with_fips_and_dual_stack(region: str) -> None:
    for fips in (False, True):
        for dualstack in (False, True):
            ours = aws_endpoints.url_for("ecr", region, fips, dualstack)
            theirs = botocore_url("ecr", region, fips, dualstack)
            assert ours == theirs, (region, fips, dualstack)
    assert aws_endpoints.url_for("sts", region) == botocore_url("sts", region)


def test_the_ecr_public_endpoint_is_botocores() -> None:
    assert aws_endpoints.url_for("ecr-public", "us-east-1") == botocore_url("ecr-public", "us-east-1")


@pytest.mark.parametrize("host", [
    "123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
    "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "123456789012.dkr-ecr.eu-west-1.on.aws",
    "123456789012.dkr-ecr-fips.us-east-2.on.aws", "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
    "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
])
def test_a_builtin_ecr_host_is_sent_where_botocore_sends_it(host: str) -> None:
    from helper.backends.ecr import parse_ecr_host

    target = parse_ecr_host(host)
    assert aws_endpoints.url_for("ecr", target.region, target.fips, target.dualstack) == \
        botocore_url("ecr", target.region, target.fips, target.dualstack)


@pytest.mark.parametrize(("env", "service", "expected"), [
    ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}, "ecr", "http://127.0.0.1:9000"),
    ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000/"}, "ecr", "http://127.0.0.1:9000"),
    ({"AWS_ENDPOINT_URL": "http://a.example", "AWS_ENDPOINT_URL_ECR": "https://b.example:8443"}, "ecr",
     "https://b.example:8443"),
    ({"AWS_ENDPOINT_URL": "http://a.example", "AWS_ENDPOINT_URL_STS": "https://sts.example"}, "sts",
     "https://sts.example"),
    ({"AWS_ENDPOINT_URL_ECR_PUBLIC": "https://pub.example"}, "ecr-public", "https://pub.example"),
    ({"AWS_ENDPOINT_URL_S3": "https://s3.example"}, "ecr", "https://api.ecr.us-east-1.amazonaws.com"),
    ({"AWS_ENDPOINT_URL": "http://a.example", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "ecr",
     "https://api.ecr.us-east-1.amazonaws.com"),
])
def test_the_endpoint_url_variables_pick_botocores_endpoint(env: dict[str, str], service: str, expected: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ours = aws_endpoints.url_for(service, "us-east-1")
    assert ours is not None and ours.rstrip("/") == expected
    assert botocore_url(service, "us-east-1").rstrip("/") == expected  # type: ignore[union-attr]


def test_a_custom_endpoint_with_fips_or_a_path_is_left_to_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert aws_endpoints.url_for("ecr", "us-east-1", fips=True) is None
    assert aws_endpoints.url_for("ecr", "us-east-1") == "http://127.0.0.1:9000"  # control
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/prefix")
    assert aws_endpoints.url_for("ecr", "us-east-1") is None


# ---- which path ------------------------------------------------------------------------------------------------

KEYS = {"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret"}
WEB = {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/ci", "AWS_WEB_IDENTITY_TOKEN_FILE": "TOKEN_FILE"}
CONTAINER = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/creds"}


@pytest.mark.parametrize(("env", "config", "credentials", "params", "expected", "botocore_method"), [
    (KEYS, "", "", {}, "env", "env"),
    ({**KEYS, "AWS_SESSION_TOKEN": "t"}, "", "", {}, "env", "env"),
    ({**KEYS, **WEB}, "", "", {}, "env", "env"),
    (WEB, "", "", {}, "web-identity", "assume-role-with-web-identity"),
    ({**WEB, **CONTAINER}, "", "", {}, "web-identity", "assume-role-with-web-identity"),
    (CONTAINER, "", "", {}, "container", None),  # botocore's choice, asked of a live agent: test_aws_container
    (KEYS, "[default]\nregion = eu-west-1\noutput = json\n[profile other]\nrole_arn = x\n", "", {}, "env", "env"),
    (WEB, "[default]\nregion = eu-west-1\n", "[other]\naws_access_key_id = A\naws_secret_access_key = B\n", {},
     "web-identity", "assume-role-with-web-identity"),
    ({**KEYS, "AWS_PROFILE": "default"}, "", "", {}, "botocore", "env"),
    ({**KEYS, "AWS_DEFAULT_PROFILE": "default"}, "", "", {}, "botocore", "env"),
    ({}, "", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = s\n", {}, "botocore",
     "shared-credentials-file"),
    (WEB, "", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = s\n", {}, "botocore",
     "assume-role-with-web-identity"),
    (WEB, "[default]\ncredential_process = /bin/false\n", "", {}, "botocore", "assume-role-with-web-identity"),
    ({}, "[default]\ncredential_process = /bin/false\n", "", {}, "botocore", None),
    (WEB, "[profile default]\nsso_session = s\nsso_account_id = 1\nsso_role_name = r\n[sso-session s]\n"
     "sso_region = us-east-1\nsso_start_url = https://x.example\n", "", {}, "botocore", None),
    (WEB, "[default]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = other\n[profile other]\n", "", {},
     "botocore", None),
    (KEYS, "[default]\nendpoint_url = http://127.0.0.1:9\n", "", {}, "botocore", "env"),
    (KEYS, "[default]\nca_bundle = /etc/ssl/x.pem\n", "", {}, "botocore", "env"),
    (KEYS, "not an ini file\n", "", {}, "botocore", None),
    (KEYS, "", "", {"profile": "ci"}, "botocore", None),
    (KEYS, "", "", {"role_arn": "arn:aws:iam::1:role/r"}, "botocore", None),
    ({"AWS_ACCESS_KEY_ID": "AKIAENV"}, "", "", {}, "botocore", None),
    ({**KEYS, "AWS_USE_FIPS_ENDPOINT": "true"}, "", "", {}, "botocore", "env"),
    ({**KEYS, "AWS_CREDENTIAL_EXPIRATION": "2099-01-01T00:00:00Z"}, "", "", {}, "botocore", "env"),
    ({}, "", "", {}, "botocore", None),
])
def test_each_credential_source_takes_the_path_botocores_chain_order_allows(
        env: dict[str, str], config: str, credentials: str, params: dict[str, object], expected: str,
        botocore_method: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("jwt")
    (tmp_path / "config").write_text(config)
    (tmp_path / "credentials").write_text(credentials)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for name, value in env.items():
        monkeypatch.setenv(name, str(tmp_path / "token") if value == "TOKEN_FILE" else value)
    source = aws_fast.credential_source(params, None)
    assert source.split(":")[0] == expected, source
    assert aws_fast.eligible(params, None) == (expected != "botocore")
    if expected != "botocore" and botocore_method is not None:  # never disagrees with botocore's choice
        import botocore.session

        creds = botocore.session.Session().get_credentials()
        assert creds is not None and creds.method == botocore_method
    elif botocore_method is not None and not params:
        import botocore.session

        try:
            creds = botocore.session.Session().get_credentials()
        except Exception:
            return
        assert creds is None or creds.method == botocore_method


def test_a_pod_identity_is_always_botocores(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    assert aws_fast.eligible({}, object()) is False  # type: ignore[arg-type]
    assert aws_fast.eligible({}, None) is True  # control


# ---- answers and failures, both ways ---------------------------------------------------------------------------

def _get(host: str, log: Path) -> tuple[int, str, list[str]]:
    log.write_text("")
    result = call("get", host)
    return result.code, result.out, log.read_text().splitlines()


@pytest.fixture
def fake(fake_ecr: FakeEcr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeEcr:
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake_ecr.url)
    monkeypatch.setenv("AWS_ECR_DISABLE_CACHE", "1")
    monkeypatch.setenv("SWITCHBOARD_LOG", str(tmp_path / "log"))
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    return fake_ecr


def both(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str = ECR_HOST) -> list[tuple[int, str, list[str]]]:
    """A get through the fast path, then the same get through botocore."""
    fast = _get(host, tmp_path / "log")
    monkeypatch.setenv("AWS_DEFAULTS_MODE", "legacy")
    slow = _get(host, tmp_path / "log")
    monkeypatch.delenv("AWS_DEFAULTS_MODE")
    assert any("fast path" in line for line in fast[2]), fast[2]
    assert any("AWS_DEFAULTS_MODE is set" in line for line in slow[2]), slow[2]
    return [fast, slow]


@pytest.mark.parametrize("host", [ECR_HOST, "public.ecr.aws"])
def test_the_fast_answer_is_botocores_signed_with_the_same_key(fake: FakeEcr, host: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = both(monkeypatch, tmp_path, host)
    assert fast[0] == slow[0] == 0
    answers = [json.loads(each[1]) for each in (fast, slow)]
    assert [a["Username"] for a in answers] == ["AWS", "AWS"]
    assert [a["Secret"] for a in answers] == ["token-1", "token-2"]
    assert fake.key_ids == ["AKIAENV", "AKIAENV"]
    assert fake.requests[0] == fake.requests[1]


def test_web_identity_asks_sts_as_botocore_does_and_signs_with_the_roles_keys(
        fake: FakeEcr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEYS:
        monkeypatch.delenv(name)
    (tmp_path / "jwt").write_text("header.payload.sig\n")
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ci-pull")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(tmp_path / "jwt"))
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "job-42")
    fast, slow = both(monkeypatch, tmp_path)
    assert fast[0] == slow[0] == 0
    assert fake.key_ids == ["ASIAWEBCI-PULL", "ASIAWEBCI-PULL"]
    first, second = fake.web_identity_calls
    assert first == second
    assert first["WebIdentityToken"] == "header.payload.sig\n"


@pytest.mark.parametrize(("mode", "requests"), [("denied", 2), ("500", 4), ("garbage", 2)])
def test_a_failure_is_the_same_not_found_with_the_same_reason(mode: str, requests: int, fake: FakeEcr,
                                                              tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_client, "MAX_ATTEMPTS", 2)
    fake.mode = mode
    fast, slow = both(monkeypatch, tmp_path)
    assert fast[:2] == slow[:2] == (1, NOT_FOUND + "\n")
    reason = [line for line in fast[2] if "failed:" in line]
    assert reason and [line for line in slow[2] if "failed:" in line][-1].split("] ", 1)[-1] == \
        reason[-1].split("] ", 1)[-1]
    assert fake.count() == requests
    if mode == "500":
        assert "(reached max retries: 1)" in reason[-1]


def test_a_read_timeout_is_retried_once_and_fails_with_botocores_reason(fake: FakeEcr, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_client, "READ_TIMEOUT_S", 0.3)
    fake.delay = 1.0
    fast, slow = both(monkeypatch, tmp_path)
    reasons = [[line.split("] ", 1)[-1] for line in run[2] if "failed:" in line][-1] for run in (fast, slow)]
    assert reasons[0] == reasons[1]
    assert "ReadTimeoutError: Read timeout on endpoint URL" in reasons[0]
    assert fake.count() == 4


def test_a_closed_port_fails_with_botocores_reason(fake: FakeEcr, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    fast, slow = both(monkeypatch, tmp_path)
    reasons = [[line.split("] ", 1)[-1] for line in run[2] if "failed:" in line][-1] for run in (fast, slow)]
    assert reasons[0] == reasons[1]
    assert "EndpointConnectionError" in reasons[0]


def test_no_secret_reaches_the_log(fake: FakeEcr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-secret")
    fake.mode = "denied"
    fast = _get(ECR_HOST, tmp_path / "log")
    text = "\n".join(fast[2])
    assert "fast path" in text and "failed:" in text  # control: there is a log to look at
    assert "env-secret" not in text and "session-secret" not in text and "AKIAENV" not in text


def test_a_cold_get_through_the_fast_path_imports_no_botocore(fake_ecr: FakeEcr) -> None:
    env = {key: value for key, value in os.environ.items()}
    env.update(KEYS, AWS_ENDPOINT_URL=fake_ecr.url)
    code, out, modules = get_in_fresh_process(ECR_HOST, env)
    assert code == 0 and json.loads(out)["Secret"] == "token-1"
    assert not [name for name in modules if name.startswith(("botocore", "boto3", "urllib3"))]
    code, out, modules = get_in_fresh_process(ECR_HOST, {**env, **BOTOCORE, "XDG_CACHE_HOME": env["HOME"] + "/c2"})
    assert code == 0 and "botocore" in modules  # control: the same get through botocore imports it


@pytest.mark.e2e
def test_moto_gives_the_fast_path_and_botocore_the_same_answer(moto_url: str, tmp_path: Path) -> None:  # noqa: F811
    env = aws_env(moto_url, AWS_ECR_DISABLE_CACHE="1", SWITCHBOARD_LOG=str(tmp_path / "log"))
    fast = run_helper("get", ECR_HOST, env=env)
    slow = run_helper("get", ECR_HOST, env={**env, **BOTOCORE})
    assert fast.code == slow.code == 0
    assert fast.json() == slow.json()
    log = (tmp_path / "log").read_text()
    assert "fast path" in log and "AWS_DEFAULTS_MODE is set" in log


@pytest.mark.parametrize("service", ["ecr", "ecr-public", "sts"])
def test_the_error_classes_are_botocores_modeled_errors(service: str) -> None:
    import botocore.session

    from helper.backends import aws_errors

    client = botocore.session.Session().create_client(service, region_name="us-east-1", aws_access_key_id="a",
                                                      aws_secret_access_key="b")
    theirs = {code: cls.__name__ for code, cls in client.exceptions._code_to_exception.items()}
    assert aws_errors.MODELED[service] == theirs
    assert aws_errors.class_name(service, "AccessDeniedException") == "ClientError"  # control: not modeled


def test_the_expiry_is_botocores_datetime_rounded_epoch() -> None:
    value = 1_790_000_000.123456789
    assert aws_fast._expiry(value) == datetime.datetime.fromtimestamp(value, datetime.timezone.utc).timestamp()
    assert aws_fast._expiry(value) != value  # control: the raw float differs


STS_ERROR = (b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
             b"<Code>InvalidIdentityToken</Code><Message>Incorrect token audience &amp; issuer</Message></Error>"
             b"<RequestId>x</RequestId></ErrorResponse>")


@pytest.mark.parametrize(("token", "fast_path"), [("eyJ.header.sig", True), ("abc", False)])
def test_an_sts_refusal_is_botocores_reason_and_a_too_short_token_is_left_to_botocore(
        token: str, fast_path: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.loopback import Loopback, QuietHandler

    class Refuse(QuietHandler):
        def do_POST(self) -> None:
            self.body()
            self.send(400, STS_ERROR, "text/xml")

    server = Loopback(Refuse)
    try:
        (tmp_path / "jwt").write_text(token)
        for name, value in {"AWS_ENDPOINT_URL": server.url, "AWS_ECR_DISABLE_CACHE": "1",
                            "SWITCHBOARD_LOG": str(tmp_path / "log"), "AWS_ROLE_ARN": "arn:aws:iam::1:role/ci-pull",
                            "AWS_WEB_IDENTITY_TOKEN_FILE": str(tmp_path / "jwt")}.items():
            monkeypatch.setenv(name, value)
        fast = _get(ECR_HOST, tmp_path / "log")
        monkeypatch.setenv("AWS_DEFAULTS_MODE", "legacy")
        slow = _get(ECR_HOST, tmp_path / "log")
    finally:
        server.close()
    reasons = [[line.split("] ", 1)[-1] for line in run[2] if "failed:" in line][-1] for run in (fast, slow)]
    assert reasons[0] == reasons[1]
    assert ("InvalidIdentityTokenException" in reasons[0]) == fast_path
    assert any("token is too short" in line for line in fast[2]) != fast_path  # then botocore took over
    assert "eyJ" not in "\n".join(fast[2] + slow[2])


@pytest.mark.parametrize(("env", "url", "expected"), [
    ({}, "https://api.ecr.us-east-1.amazonaws.com", ""),
    ({"HTTPS_PROXY": "http://127.0.0.1:3128"}, "https://api.ecr.us-east-1.amazonaws.com", "127.0.0.1:3128"),
    ({"https_proxy": "http://proxy.corp:8080/"}, "https://api.ecr.us-east-1.amazonaws.com", "proxy.corp:8080"),
    ({"HTTPS_PROXY": "http://127.0.0.1:3128", "NO_PROXY": ".amazonaws.com"}, "https://api.ecr.us-east-1.amazonaws.com",
     ""),
    ({"HTTP_PROXY": "http://127.0.0.1:3128"}, "https://api.ecr.us-east-1.amazonaws.com", ""),
    ({"HTTPS_PROXY": "http://user:pw@127.0.0.1:3128"}, "https://api.ecr.us-east-1.amazonaws.com", None),
    ({"HTTPS_PROXY": "https://127.0.0.1:3128"}, "https://api.ecr.us-east-1.amazonaws.com", None),
    ({"HTTP_PROXY": "http://127.0.0.1:3128"}, "http://127.0.0.1:9000", None),
])
def test_the_proxy_is_the_one_botocore_picks_or_the_fetch_is_left_to_it(
        env: dict[str, str], url: str, expected: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.utils import get_environ_proxies

    from helper.backends.aws_http import proxy_for

    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert proxy_for(url) == expected
    theirs = get_environ_proxies(url).get(url.split(":", 1)[0])
    assert bool(theirs) == (expected != "")  # botocore proxies exactly when this module tunnels or declines


def test_the_ca_bundle_is_botocores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.httpsession import get_cert_path

    from helper.backends.aws_http import cafile

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    assert cafile() == get_cert_path(True)  # certifi's, as botocore's
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert cafile() == str(bundle)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    assert cafile() is None  # botocore words that failure itself


def test_over_tls_through_a_connect_proxy_both_paths_trust_the_same_ca_and_answer_alike(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_acr import make_ca

    ca, cert, key = make_ca(tmp_path, ["localhost"])
    server, proxy = FakeEcr(tls=(cert, key)), ConnectProxy()
    try:
        for name in ("NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)
        for name, value in {**KEYS, "AWS_ENDPOINT_URL": f"https://localhost:{server.port}", "AWS_CA_BUNDLE": str(ca),
                            "HTTPS_PROXY": proxy.url, "AWS_ECR_DISABLE_CACHE": "1",
                            "SWITCHBOARD_LOG": str(tmp_path / "log")}.items():
            monkeypatch.setenv(name, value)
        fast, slow = both(monkeypatch, tmp_path)
        assert fast[0] == slow[0] == 0, (fast, slow)
        assert [json.loads(run[1])["Secret"] for run in (fast, slow)] == ["token-1", "token-2"]
        assert proxy.targets == [f"CONNECT localhost:{server.port}"] * 2
        monkeypatch.delenv("AWS_CA_BUNDLE")  # control: certifi's roots do not trust the throw-away CA
        fast, slow = both(monkeypatch, tmp_path)
        reasons = [[line for line in run[2] if "failed:" in line][-1] for run in (fast, slow)]
        assert all("failed: SSLError: SSL validation failed for https://localhost:" in r for r in reasons), reasons
        assert server.count() == 2
    finally:
        server.close()
        proxy.close()
