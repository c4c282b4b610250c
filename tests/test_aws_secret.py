"""`aws-secret`: registry credentials kept once in AWS Secrets Manager, fetched by the real helper through botocore.

Against moto in server mode (secrets created with boto3, the helper pointed at it with AWS_ENDPOINT_URL), and, where
calls must be counted or refused, against tests/fake_aws.py. Every failure is the exact not-found with its reason in
the log, and no secret value ever reaches the log or stderr."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from helper.backends.aws_secret import arn_region, credentials_in
from helper.hosts import parse
from tests.conftest import NOT_FOUND, Result, call, get_in_fresh_process, run_helper
from tests.fake_aws import FakeEcr, aws_env
from tests.test_ecr_moto import moto_url  # noqa: F401 - a fixture
from tests.test_kubelet import ROLE, answer, pod_request, request, sa_token

pytestmark = pytest.mark.e2e

HOST = "registry.fleet.example"
OTHER = "other.fleet.example"
PASSWORD = "fleet-pw-Zq7xK2"  # a test value, searched for in logs
DOCKER_PASSWORD = "docker-pw-Mv3nR8"  # a test value, searched for in logs
CROSS_ACCOUNT = "111122223333"


def route(secret_id: str, **params: object) -> str:
    lines = ["[[route]]", f'match = "{HOST}"', 'backend = "aws-secret"', f'secret_id = "{secret_id}"']
    lines += [f"{name} = {json.dumps(value)}" for name, value in params.items()]
    lines += ["", "[[route]]", f'match = "{OTHER}"', 'backend = "aws-secret"', f'secret_id = "{secret_id}"']
    lines += [f"{name} = {json.dumps(value)}" for name, value in params.items()]
    return "\n".join(lines) + "\n"


def sm(url: str, region: str = "us-east-1", **creds: str) -> Any:
    import boto3

    return boto3.client("secretsmanager", region_name=region, endpoint_url=url,
                        aws_access_key_id=creds.get("key", "testing"),
                        aws_secret_access_key=creds.get("secret", "testing-secret"),
                        aws_session_token=creds.get("token"))


def unique(name: str) -> str:
    return f"{name}-{time.monotonic_ns()}"


def dockerconfig(host: str, user: str, password: str) -> str:
    import base64

    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"auth": auth}, "unrelated.example": {"username": "x", "password": "y"}}})


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "switchboard.log"


def resolve_rows(out: str) -> dict[str, str]:
    """`resolve`'s `label  value` lines (labels may hold one space; two or more end them)."""
    import re

    return dict(re.split(r" {2,}", line, maxsplit=1) for line in out.splitlines())


def get(host: str, env: dict[str, str]) -> Result:
    return run_helper("get", host, env=env)


def assert_answers(result: Result, host: str, user: str, secret: str) -> None:
    assert result.code == 0, result.out + result.err
    assert json.loads(result.out) == {"ServerURL": host, "Username": user, "Secret": secret}


def assert_not_found_with_reason(result: Result, log: Path, *reason: str) -> None:
    assert (result.code, result.out) == (1, NOT_FOUND + "\n")
    text = log.read_text()
    assert all(part in text for part in reason), text
    for secret in (PASSWORD, DOCKER_PASSWORD):
        assert secret not in text and secret not in result.err


# -- the two formats, against moto ------------------------------------------------------------------------------

def test_an_ecs_username_password_secret_answers_get(moto_url: str, routes: Path) -> None:  # noqa: F811
    name = unique("ecs")
    sm(moto_url).create_secret(Name=name, SecretString=json.dumps({"username": "robot", "password": PASSWORD}))
    routes.write_text(route(name))
    assert_answers(get(HOST, aws_env(moto_url)), HOST, "robot", PASSWORD)
    assert_answers(get(f"https://{HOST}/v2/", aws_env(moto_url)), f"https://{HOST}/v2/", "robot", PASSWORD)


def test_keys_are_matched_case_insensitively_as_the_ecs_agent_reads_them(moto_url: str, routes: Path) -> None:  # noqa: F811
    name = unique("ecs-case")
    sm(moto_url).create_secret(Name=name, SecretString=json.dumps({"Username": "Robot", "PASSWORD": PASSWORD}))
    routes.write_text(route(name))
    assert_answers(get(HOST, aws_env(moto_url)), HOST, "Robot", PASSWORD)


def test_a_dockerconfigjson_secret_answers_with_the_entry_for_the_requested_host_only(
        moto_url: str, routes: Path, logged: Path) -> None:  # noqa: F811
    name = unique("dockerconfig")
    sm(moto_url).create_secret(Name=name, SecretString=dockerconfig(HOST, "docker-user", DOCKER_PASSWORD))
    routes.write_text(route(name))
    env = aws_env(moto_url, SWITCHBOARD_LOG=str(logged))
    assert_answers(get(HOST, env), HOST, "docker-user", DOCKER_PASSWORD)
    assert_answers(get(f"{HOST}/team/app", env), f"{HOST}/team/app", "docker-user", DOCKER_PASSWORD)
    assert not logged.exists() or "failed" not in logged.read_text()
    # the same secret routed for a host it holds no entry for: not-found, and the reason names the host
    assert_not_found_with_reason(get(OTHER, env), logged, f"secret {name}", f"no usable entry for {OTHER}")


# -- failures: the exact not-found, the reason in the log, never the secret ------------------------------------

def test_a_binary_secret_is_refused_with_the_exact_not_found_and_the_reason(
        moto_url: str, routes: Path, logged: Path) -> None:  # noqa: F811
    name = unique("binary")
    sm(moto_url).create_secret(Name=name, SecretBinary=json.dumps({"username": "u", "password": PASSWORD}).encode())
    routes.write_text(route(name))
    result = get(HOST, aws_env(moto_url, SWITCHBOARD_LOG=str(logged), SWITCHBOARD_DEBUG="1"))
    assert_not_found_with_reason(result, logged, f"secret {name} is binary (SecretBinary)")
    assert f"secret {name} is binary" in result.err  # SWITCHBOARD_DEBUG=1: the same line on stderr


def test_a_missing_secret_is_the_exact_not_found_and_the_reason(moto_url: str, routes: Path, logged: Path) -> None:  # noqa: F811
    routes.write_text(route("no-such-secret"))
    result = get(HOST, aws_env(moto_url, SWITCHBOARD_LOG=str(logged)))
    assert_not_found_with_reason(result, logged, "ResourceNotFoundException", f"aws-secret token for {HOST} failed")
    assert result.err == ""  # nothing on stderr unless asked for


@pytest.mark.parametrize("body, reason", [
    ("not json " + PASSWORD, "the secret is not JSON"),
    (json.dumps({"username": "robot"}), "the secret has no password"),
    (json.dumps({"username": "", "password": PASSWORD}), "the secret's username is empty"),
    (json.dumps({"username": 7, "password": PASSWORD}), "the secret's username is not a string"),
    (json.dumps([PASSWORD]), "the secret is not a JSON object"),
    (json.dumps({"auths": PASSWORD}), "the secret's auths is not an object"),
])
def test_an_unusable_secret_is_not_found_with_a_one_line_reason_that_never_quotes_it(
        moto_url: str, routes: Path, logged: Path, body: str, reason: str) -> None:  # noqa: F811
    name = unique("unusable")
    sm(moto_url).create_secret(Name=name, SecretString=body)
    routes.write_text(route(name))
    result = get(HOST, aws_env(moto_url, SWITCHBOARD_LOG=str(logged), SWITCHBOARD_DEBUG="1"))
    assert_not_found_with_reason(result, logged, f"secret {name}: {reason}")
    assert len([line for line in logged.read_text().splitlines() if name in line]) == 1  # one line, one reason


def test_access_denied_is_the_exact_not_found_and_the_reason(fake_ecr: FakeEcr, routes: Path, logged: Path) -> None:
    fake_ecr.mode = "denied"
    routes.write_text(route("fleet/registry"))
    result = get(HOST, aws_env(fake_ecr.url, SWITCHBOARD_LOG=str(logged)))
    assert_not_found_with_reason(result, logged, "AccessDeniedException")
    assert fake_ecr.count("secretsmanager.GetSecretValue") >= 1  # control: the call was made and refused


def test_a_secret_never_reaches_the_log_or_stderr(moto_url: str, routes: Path, logged: Path) -> None:  # noqa: F811
    name = unique("quiet")
    client = sm(moto_url)
    client.create_secret(Name=name, SecretString=json.dumps({"username": "robot", "password": PASSWORD}))
    routes.write_text(route(name, ttl=1))
    env = aws_env(moto_url, SWITCHBOARD_LOG=str(logged), SWITCHBOARD_DEBUG="1")
    ok = get(HOST, env)
    assert_answers(ok, HOST, "robot", PASSWORD)  # control: the secret was there to leak
    time.sleep(1.2)
    client.put_secret_value(SecretId=name, SecretString=json.dumps({"username": "robot"}) + PASSWORD)
    failed = get(HOST, env)
    resolved = run_helper(["resolve", HOST], env=env)
    assert failed.code == 1 and resolved.code == 0
    assert logged.read_text()  # control: something was logged
    for text in (ok.err, failed.err, resolved.out, resolved.err, logged.read_text()):
        assert PASSWORD not in text


# -- region -----------------------------------------------------------------------------------------------------

def test_a_cross_account_arns_region_is_taken_from_the_arn(moto_url: str, routes: Path) -> None:  # noqa: F811
    role = f"arn:aws:iam::{CROSS_ACCOUNT}:role/fleet-reader"
    sts = __import__("boto3").client("sts", region_name="us-east-1", endpoint_url=moto_url,
                                     aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    creds = sts.assume_role(RoleArn=role, RoleSessionName="setup")["Credentials"]
    owner = sm(moto_url, "eu-west-2", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
               token=creds["SessionToken"])
    name = unique("cross")
    arn = owner.create_secret(Name=name, SecretString=json.dumps(
        {"username": "cross", "password": PASSWORD}))["ARN"]
    assert arn.startswith(f"arn:aws:secretsmanager:eu-west-2:{CROSS_ACCOUNT}:secret:{name}")
    env = aws_env(moto_url)  # AWS_REGION=us-east-1: only the ARN says eu-west-2
    routes.write_text(route(arn, role_arn=role))
    assert_answers(get(HOST, env), HOST, "cross", PASSWORD)
    rows = resolve_rows(run_helper(["resolve", HOST], env=env).out)
    assert rows["region"] == "eu-west-2 (from the ARN)" and rows["secret"] == arn
    # control: by name, without the ARN's region, the helper asks us-east-1, where the secret is not
    routes.write_text(route(name, role_arn=role))
    assert get(HOST, env).out == NOT_FOUND + "\n"
    routes.write_text(route(name, role_arn=role, region="eu-west-2"))
    assert_answers(get(HOST, env), HOST, "cross", PASSWORD)


def test_arn_region_reads_only_an_arns_region_field() -> None:
    assert arn_region("arn:aws:secretsmanager:eu-west-2:111122223333:secret:fleet/reg-AbCdEf") == "eu-west-2"
    assert arn_region("arn:aws-us-gov:secretsmanager:us-gov-west-1:1:secret:x") == "us-gov-west-1"
    assert arn_region("fleet/registry") is None
    assert arn_region("arn:broken") is None


# -- the token cache: rotation, single flight, cache hits ---------------------------------------------------------

def test_a_rotated_secret_is_served_after_the_ttl_and_not_before(moto_url: str, routes: Path) -> None:  # noqa: F811
    name = unique("rotate")
    client = sm(moto_url)
    client.create_secret(Name=name, SecretString=json.dumps({"username": "robot", "password": "old-pw"}))
    routes.write_text(route(name, ttl=2))
    env = aws_env(moto_url)
    started = time.monotonic()
    assert_answers(get(HOST, env), HOST, "robot", "old-pw")
    client.put_secret_value(SecretId=name, SecretString=json.dumps({"username": "robot", "password": "new-pw"}))
    before = get(HOST, env)
    assert time.monotonic() - started < 2, "too slow to observe the TTL"
    assert_answers(before, HOST, "robot", "old-pw")  # cached: the rotation is not seen yet
    time.sleep(max(0.0, 2.3 - (time.monotonic() - started)))
    assert_answers(get(HOST, env), HOST, "robot", "new-pw")


def test_sixty_four_parallel_gets_on_a_cold_cache_make_one_get_secret_value(fake_ecr: FakeEcr, routes: Path) -> None:
    fake_ecr.delay = 1.0  # the first call is still in flight while the others start
    routes.write_text(route("fleet/registry"))
    env = aws_env(fake_ecr.url)
    launched: list[float] = []

    def one(_: int) -> Result:
        launched.append(time.monotonic())
        return run_helper("get", HOST, env=env, timeout=120)

    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(one, range(64)))
    assert [r.code for r in results] == [0] * 64, [r.out + r.err for r in results if r.code]
    assert [json.loads(r.out) for r in results] == [{"ServerURL": HOST, "Username": "fleet-robot",
                                                     "Secret": "fleet-secret"}] * 64
    assert fake_ecr.count("secretsmanager.GetSecretValue") == 1 and fake_ecr.secret_ids == ["fleet/registry"]
    # control: they overlapped (most were running before the one call was answered), so the cache was cold for them
    answered = fake_ecr.secret_times[0] + fake_ecr.delay
    assert sum(started < answered for started in launched) >= 48


def test_each_host_and_identity_has_its_own_entry(fake_ecr: FakeEcr, routes: Path) -> None:
    routes.write_text(route("fleet/registry"))
    env = aws_env(fake_ecr.url)
    for _ in range(2):
        assert get(HOST, env).code == get(OTHER, env).code == 0
    assert fake_ecr.count("secretsmanager") == 2  # one per host, then cache hits
    assert get(HOST, dict(env, AWS_ACCESS_KEY_ID="another-key")).code == 0
    assert fake_ecr.count("secretsmanager") == 3  # another identity never shares the first one's answer


def test_a_cache_hit_imports_no_botocore(fake_ecr: FakeEcr, routes: Path) -> None:
    routes.write_text(route("fleet/registry"))
    env = aws_env(fake_ecr.url)
    cold = get_in_fresh_process(HOST, env)
    hit = get_in_fresh_process(HOST, env)
    assert cold[0] == hit[0] == 0 and json.loads(hit[1])["Secret"] == "fleet-secret"
    assert "botocore" in cold[2]  # control: the cold get did import it
    assert not {m for m in hit[2] if m.startswith(("botocore", "helper.backends.mounted"))}
    assert fake_ecr.count("secretsmanager") == 1


# -- the kubelet plugin -----------------------------------------------------------------------------------------

def test_the_kubelet_plugin_answers_a_registry_keyed_token_from_the_secret(fake_ecr: FakeEcr, routes: Path) -> None:
    routes.write_text(route("fleet/registry"))
    got = answer(request(f"{HOST}/team/app"), aws_env(fake_ecr.url))
    assert got.cache_key_type == "Registry"
    assert got.auth == {HOST: ("fleet-robot", "fleet-secret")}
    # the default 15 min TTL, refreshed from half of it: the kubelet keeps it at most 7.5 min
    assert got.cache_duration_s is not None and 7 * 60 <= got.cache_duration_s <= 7.5 * 60


def test_a_pods_role_reads_the_secret_as_the_pod(fake_ecr: FakeEcr, routes: Path) -> None:
    routes.write_text(route("fleet/registry"))
    token = sa_token()
    got = answer(pod_request(token, {"eks.amazonaws.com/ecr-role-arn": ROLE}, f"{HOST}/app"), aws_env(fake_ecr.url))
    assert got.auth == {HOST: ("fleet-robot", "fleet-secret")} and got.cache_key_type == "Registry"
    assert [call["RoleArn"] for call in fake_ecr.web_identity_calls] == [ROLE]
    assert fake_ecr.key_ids == ["ASIAWEBPULLER"]  # the pod's role signed GetSecretValue, not the node's keys


# -- configuration and resolve ----------------------------------------------------------------------------------

def test_a_route_without_secret_id_is_a_one_line_config_error_naming_the_file_and_line(routes: Path) -> None:
    routes.write_text(f'# fleet\n[[route]]\nmatch = "{HOST}"\nbackend = "aws-secret"\nregion = "eu-west-1"\n')
    result = call("get", HOST)
    assert (result.code, result.out) == (1, f'{routes}:2: route 1: an aws-secret route needs secret_id = "NAME" '
                                            "(or the secret's ARN)\n")


def test_a_ttl_past_the_cap_is_a_config_error(routes: Path) -> None:
    routes.write_text(route("s", ttl=31 * 24 * 3600))
    assert call("get", HOST).out == f"{routes}:1: route 1: 'ttl' must be a positive number of seconds, at most " \
                                    "2592000\n"


def test_resolve_describes_the_secret_region_and_identity_without_fetching(fake_ecr: FakeEcr, routes: Path) -> None:
    routes.write_text(route("fleet/registry", region="ap-south-1", profile="fleet", ttl=600))
    out = run_helper(["resolve", HOST], env=aws_env(fake_ecr.url)).out
    rows = resolve_rows(out)
    assert rows["backend"] == "aws-secret" and rows["secret"] == "fleet/registry"
    assert rows["region"] == "ap-south-1 (from the route)" and rows["ttl"] == "600 s"
    assert "profile=fleet" in rows["aws identity"]
    assert "region=ap-south-1" in rows["cache key"] and HOST in rows["cache key"]
    assert fake_ecr.count() == 0


# -- the secret's formats, in-process ----------------------------------------------------------------------------

@pytest.mark.parametrize("body, expected", [
    ({"username": "u", "password": "p"}, ("u", "p")),
    ({"USERNAME": "u", "Password": "p"}, ("u", "p")),
    ({"u\u017fername": "u", "pa\u017f\u017fword": "p"}, ("u", "p")),  # Go folds the long s onto s
    ({"username": "u", "password": "p", "extra": 1}, ("u", "p")),
])
def test_the_ecs_form_is_read_as_go_reads_it(body: dict[str, object], expected: tuple[str, str]) -> None:
    assert credentials_in(json.dumps(body), parse(HOST)) == expected


def test_duplicate_keys_take_the_last_one_and_null_leaves_a_field_unset() -> None:
    key = parse(HOST)
    assert credentials_in('{"username": "a", "Username": "b", "password": "p"}', key) == ("b", "p")
    assert credentials_in('{"username": "a", "USERNAME": null, "password": "p"}', key) == ("a", "p")
    with pytest.raises(ValueError, match="no password"):
        credentials_in('{"username": "a", "password": null}', key)
    with pytest.raises(ValueError, match="no username"):
        credentials_in('{"us\u0131ername": "a", "password": "p"}', key)  # dotless i is not i, in Go either


def test_a_dockerconfigjson_entry_is_found_by_canonical_host() -> None:
    doc = dockerconfig(f"https://{HOST}/v1/", "u", "p")
    assert credentials_in(doc, parse(HOST)) == ("u", "p")
    assert credentials_in(doc, parse(f"{HOST}/team")) == ("u", "p")
    with pytest.raises(ValueError, match=f"no usable entry for {OTHER}"):
        credentials_in(doc, parse(OTHER))
