"""The token cache and refresh windows, with a fake clock, and single-flight across processes."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helper import tokens
from helper.cache import TokenCache, get_token
from helper.errors import HelperError
from tests.conftest import NOT_FOUND, get_in_fresh_process, run_helper
from tests.fake_aws import ECR_HOST, FakeEcr, aws_env
from tests.soak import cache_dir

HOUR = 3600.0


class Clock:
    def __init__(self, at: float = 1_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


class Fetcher:
    def __init__(self, clock: Clock, lifetime: float = HOUR) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.fail = False

    def __call__(self) -> tokens.Token:
        self.calls += 1
        if self.fail:
            raise HelperError("token endpoint down")
        return tokens.Token("u", f"t{self.calls}", self.clock() + self.lifetime, self.clock())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(tmp_path: Path, clock: Clock) -> TokenCache:
    return TokenCache(str(tmp_path / "cache"), clock)


def test_token_states_follow_the_windows() -> None:
    token = tokens.Token("u", "s", 10 * HOUR, 0)
    assert token.state(0) == tokens.FRESH
    assert token.state(10 * HOUR - tokens.ADVISORY_REFRESH_S + 1) == tokens.STALE
    assert token.state(10 * HOUR - tokens.MANDATORY_REFRESH_S + 1) == tokens.EXPIRING
    assert token.state(10 * HOUR) == tokens.EXPIRED
    short = tokens.Token("u", "s", 60, 0)  # a one-minute token is fresh for its first half
    assert [short.state(t) for t in (10, 31, 46, 61)] == [tokens.FRESH, tokens.STALE, tokens.EXPIRING,
                                                           tokens.EXPIRED]


def test_a_fresh_cached_token_is_served_without_fetching(cache: TokenCache, clock: Clock) -> None:
    fetch = Fetcher(clock)
    assert get_token(cache, "k", "srv", fetch).secret == "t1"
    clock.at += HOUR / 2
    assert get_token(cache, "k", "srv", fetch).secret == "t1"
    assert fetch.calls == 1


def test_advisory_window_refreshes_and_keeps_the_old_token_on_failure(cache: TokenCache, clock: Clock) -> None:
    fetch = Fetcher(clock)
    get_token(cache, "k", "srv", fetch)
    clock.at += HOUR - tokens.ADVISORY_REFRESH_S + 60  # stale, still valid
    fetch.fail = True
    assert get_token(cache, "k", "srv", fetch).secret == "t1"
    fetch.fail = False
    assert get_token(cache, "k", "srv", fetch).secret == "t3"
    assert get_token(cache, "k", "srv", fetch).secret == "t3"  # and it was cached


def test_mandatory_window_waits_for_the_refresh_and_a_failure_is_an_error(cache: TokenCache, clock: Clock) -> None:
    fetch = Fetcher(clock)
    get_token(cache, "k", "srv", fetch)
    clock.at += HOUR - tokens.MANDATORY_REFRESH_S + 60
    fetch.fail = True
    with pytest.raises(HelperError):
        get_token(cache, "k", "srv", fetch)
    fetch.fail = False
    assert get_token(cache, "k", "srv", fetch).secret == "t3"


def test_the_clock_jumping_backwards_or_past_expiry_never_serves_an_expired_token(
        cache: TokenCache, clock: Clock) -> None:
    fetch = Fetcher(clock)
    get_token(cache, "k", "srv", fetch)
    clock.at += 2 * HOUR  # jump past expiry
    assert get_token(cache, "k", "srv", fetch).secret == "t2"
    clock.at -= 10 * HOUR  # jump far back: still valid by this clock
    assert get_token(cache, "k", "srv", fetch).secret == "t2"


def test_a_token_expired_by_the_local_clock_is_served_once_and_never_cached(cache: TokenCache, clock: Clock) -> None:
    fetch = Fetcher(clock, lifetime=-HOUR)  # moto's 2015 expiry, or a skewed clock
    assert get_token(cache, "k", "srv", fetch).secret == "t1"
    assert get_token(cache, "k", "srv", fetch).secret == "t2"
    assert not list(Path(cache.folder).glob("*.json"))


@pytest.mark.parametrize("damage", [b"", b"{", b"[]", b'{"format": 1}', b"\xff\xfe", b'{"format":'
                                    b'"docker-credential-switchboard/token/1","key":"k","username":"u"}'])
def test_a_damaged_cache_entry_is_a_miss(cache: TokenCache, clock: Clock, damage: bytes) -> None:
    fetch = Fetcher(clock)
    get_token(cache, "k", "srv", fetch)
    Path(cache.path("k")).write_bytes(damage)
    assert get_token(cache, "k", "srv", fetch).secret == "t2"


def test_an_unwritable_cache_folder_is_not_an_error(tmp_path: Path, clock: Clock) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = TokenCache(str(blocker / "cache"), clock)
    fetch = Fetcher(clock)
    assert get_token(cache, "k", "srv", fetch).secret == "t1"
    assert get_token(cache, "k", "srv", fetch).secret == "t2"


def test_entries_lists_what_is_cached(cache: TokenCache, clock: Clock) -> None:
    get_token(cache, "k1", "reg1.example", Fetcher(clock))
    get_token(cache, "k2", "reg2.example", Fetcher(clock))
    assert sorted(server for server, _, _ in cache.entries()) == ["reg1.example", "reg2.example"]


# -- through the real executable, against a local ECR endpoint with current expiries ---------------------



def test_32_parallel_cold_gets_make_exactly_one_token_request(fake_ecr: FakeEcr) -> None:
    fake_ecr.delay = 0.5  # a slow endpoint widens the race
    env = aws_env(fake_ecr.url)
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda _: run_helper("get", ECR_HOST, env=env, timeout=60), range(32)))
    assert [r.code for r in results] == [0] * 32
    assert {json.loads(r.out)["Secret"] for r in results} == {"token-1"}
    assert fake_ecr.count() == 1


def test_a_cache_hit_makes_no_request_and_imports_no_cloud_sdk(fake_ecr: FakeEcr) -> None:
    env = aws_env(fake_ecr.url)
    assert run_helper("get", ECR_HOST, env=env).code == 0
    code, out, modules = get_in_fresh_process(ECR_HOST, env)
    heavy = sorted(m for m in modules if m.split(".")[0] in ("botocore", "boto3", "google", "requests", "urllib3",
                                                              "keyring", "cryptography"))
    assert (code, heavy) == (0, []), out
    assert fake_ecr.count() == 1


def test_aws_ecr_disable_cache_fetches_every_time(fake_ecr: FakeEcr) -> None:
    env = aws_env(fake_ecr.url, AWS_ECR_DISABLE_CACHE="1")
    for _ in range(3):
        assert run_helper("get", ECR_HOST, env=env).code == 0
    assert fake_ecr.count() == 3


def test_ecr_public_uses_its_own_api(fake_ecr: FakeEcr) -> None:
    result = run_helper("get", "public.ecr.aws", env=aws_env(fake_ecr.url))
    assert result.code == 0 and json.loads(result.out)["Username"] == "AWS"
    assert fake_ecr.count("SpencerFrontendService") == 1


@pytest.mark.parametrize("mode", ["500", "garbage", "denied"])
def test_a_broken_token_endpoint_answers_not_found_quietly(fake_ecr: FakeEcr, mode: str) -> None:
    fake_ecr.mode = mode
    result = run_helper("get", ECR_HOST, env=aws_env(fake_ecr.url))
    assert (result.code, result.out, result.err) == (1, NOT_FOUND + "\n", "")
    debug = run_helper("get", ECR_HOST, env=aws_env(fake_ecr.url, SWITCHBOARD_DEBUG="1"))
    assert debug.out == NOT_FOUND + "\n" and "ecr token for" in debug.err
    assert "testing-secret" not in debug.err


def test_a_slow_endpoint_is_cut_off_by_the_timeouts(fake_ecr: FakeEcr) -> None:
    import time

    fake_ecr.delay = 30
    started = time.monotonic()
    result = run_helper("get", ECR_HOST, env=aws_env(fake_ecr.url), timeout=90)
    assert result.out == NOT_FOUND + "\n"
    assert time.monotonic() - started < 40  # two attempts of the 10 s read timeout, plus start-up


def test_a_stale_token_survives_an_endpoint_outage(fake_ecr: FakeEcr, isolated_home: Path) -> None:
    import time

    env = aws_env(fake_ecr.url)
    assert run_helper("get", ECR_HOST, env=env).code == 0
    entry = next(cache_dir(isolated_home).glob("ecr*.json"))
    doc = json.loads(entry.read_text())
    # 10 minutes left of a 12-hour token: inside the advisory window, outside the mandatory one
    doc["expires_at"], doc["obtained_at"] = time.time() + 600, time.time() - 12 * 3600 + 600
    entry.write_text(json.dumps(doc))
    fake_ecr.mode = "500"
    result = run_helper("get", ECR_HOST, env=env)
    assert result.code == 0 and json.loads(result.out)["Secret"] == "token-1"
    failed_requests = fake_ecr.count()
    assert failed_requests > 1  # it did try
    fake_ecr.mode = "ok"
    assert json.loads(run_helper("get", ECR_HOST, env=env).out)["Secret"] == f"token-{failed_requests + 1}"
    doc = json.loads(entry.read_text())
    # one minute left: inside the mandatory window, where an outage is an error
    doc["expires_at"], doc["obtained_at"] = time.time() + 60, time.time() - 12 * 3600 + 60
    entry.write_text(json.dumps(doc))
    fake_ecr.mode = "500"
    assert run_helper("get", ECR_HOST, env=env).out == NOT_FOUND + "\n"


def test_list_shows_cached_registries_and_never_fetches(fake_ecr: FakeEcr) -> None:
    env = aws_env(fake_ecr.url)
    assert json.loads(run_helper("list", None, env=env).out) == {}
    run_helper("get", ECR_HOST, env=env)
    assert json.loads(run_helper("list", None, env=env).out) == {ECR_HOST: "AWS"}
    assert fake_ecr.count() == 1


def test_hosts_not_routed_to_ecr_never_touch_aws(fake_ecr: FakeEcr) -> None:
    env = aws_env(fake_ecr.url)
    for host in ("docker.io", "ghcr.io", f"{ECR_HOST}.evil.example", f"https://{ECR_HOST}@evil.example",
                 ECR_HOST.upper(), ECR_HOST + "."):
        assert run_helper("get", host, env=env).out == NOT_FOUND + "\n"
    assert fake_ecr.count() == 0


def test_route_profile_role_and_external_id_pick_the_identity(fake_ecr: FakeEcr, tmp_path: Path) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[profile ci-pull]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = p-secret\n"
                      "region = eu-west-1\n")
    routes = tmp_path / "routes.toml"
    routes.write_text(
        '[[route]]\nmatch = "111111111111.dkr.ecr.*.amazonaws.com"\nbackend = "ecr"\nprofile = "ci-pull"\n\n'
        '[[route]]\nmatch = "222222222222.dkr.ecr.*.amazonaws.com"\nbackend = "ecr"\nprofile = "ci-pull"\n'
        'role_arn = "arn:aws:iam::222222222222:role/pull"\nexternal_id = "ext-1"\nsession_name = "ci"\n')
    env = aws_env(fake_ecr.url, AWS_CONFIG_FILE=str(config), SWITCHBOARD_CONFIG=str(routes))
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    assert run_helper("get", "111111111111.dkr.ecr.eu-west-1.amazonaws.com", env=env).code == 0
    assert fake_ecr.key_ids == ["AKIAPROFILE"]
    assert run_helper("get", "222222222222.dkr.ecr.eu-west-1.amazonaws.com", env=env).code == 0
    assert fake_ecr.assume_role_calls[0]["RoleArn"] == "arn:aws:iam::222222222222:role/pull"
    assert fake_ecr.assume_role_calls[0]["ExternalId"] == "ext-1"
    assert fake_ecr.assume_role_calls[0]["RoleSessionName"] == "ci"
    assert fake_ecr.key_ids[1:] == ["AKIAPROFILE", "ASIAROLEKEY"]  # STS signed by the profile, ECR by the role
    resolved = run_helper(["resolve", "222222222222.dkr.ecr.eu-west-1.amazonaws.com"], None, env=env).out
    assert "role=arn:aws:iam::222222222222:role/pull" in resolved and "role-session-token" not in resolved


def test_other_access_keys_in_the_environment_are_another_identity(fake_ecr: FakeEcr, isolated_home: Path) -> None:
    # botocore signs with AWS_ACCESS_KEY_ID over any profile but a route's own: a job that switches keys
    # (another account) must get a token minted with its keys, not the previous job's cached one
    env = aws_env(fake_ecr.url)
    first = json.loads(run_helper("get", ECR_HOST, env=env).out)["Secret"]
    assert json.loads(run_helper("get", ECR_HOST, env=env).out)["Secret"] == first
    other = dict(env, AWS_ACCESS_KEY_ID="AKIAOTHERJOB")
    assert json.loads(run_helper("get", ECR_HOST, env=other).out)["Secret"] != first
    assert fake_ecr.key_ids == [env["AWS_ACCESS_KEY_ID"], "AKIAOTHERJOB"]
    assert json.loads(run_helper("get", ECR_HOST, env=env).out)["Secret"] == first  # both stay cached
    names = [p.name for p in cache_dir(isolated_home).glob("*.json")]
    assert len(names) == 2
    assert not any("AKIAOTHERJOB" in name or "testing" in name for name in names)  # a digest, never the key id


def test_an_alias_route_gets_the_token_of_the_registry_it_names(fake_ecr: FakeEcr, tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text('[[route]]\nmatch = "registry.corp.example"\nbackend = "ecr"\n'
                      f'registry = "{ECR_HOST}"\n')
    env = aws_env(fake_ecr.url, SWITCHBOARD_CONFIG=str(routes))
    got = run_helper("get", "registry.corp.example", env=env)
    assert json.loads(got.out) == {"ServerURL": "registry.corp.example", "Username": "AWS", "Secret": "token-1"}
    # list names the host the client pulls from, so `docker build` (list, then get) finds it
    assert json.loads(run_helper("list", None, env=env).out) == {"registry.corp.example": "AWS"}
