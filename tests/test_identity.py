"""Whose token is it: every input that names a cloud identity, changed, gives a new token.

Each case gets a token for one identity, shows it is served again (from the Python helper's cache, or,
through the standalone launcher, from its fast record: forged here, so that only the launcher could print
it), changes one input, and shows that the next `get` answers with the new identity's token and neither
the old one nor the forged record. Removing every credential gives the exact not-found. Both ways run
the real executable against the loopback fake clouds (tests/fake_aws.py, tests/test_gcp.py's FakeGoogle).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import NOT_FOUND, helper_executable, run_helper
from tests.fake_aws import ECR_HOST, FakeEcr
from tests.soak import cache_dir
from tests.test_fastpath import FORGED, forge, records
from tests.test_gcp import SA_EMAIL, FakeGoogle

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the launcher is for Linux and macOS")

Env = dict[str, str]


class Client:
    """The helper as a client runs it: the Python helper alone, or the launcher in front of it."""

    def __init__(self, executable: str, through_launcher: bool, home: Path) -> None:
        self.executable = executable
        self.through_launcher = through_launcher
        self.home = home

    def get(self, host: str, env: Env) -> str:
        result = run_helper("get", host, env=env, executable=self.executable)
        assert result.err == ""
        if result.code != 0:
            return result.out.strip()
        secret: str = result.json()["Secret"]
        return secret

    def served_again(self, host: str, env: Env, first: str) -> str:
        """The same identity again: the cached token, or (launcher) the forged record, proving it serves."""
        if not self.through_launcher:
            assert self.get(host, env) == first
            return first
        found = records(self.home)
        assert found, "the launcher's first get left no record"
        for record in found:
            forge(record)
        assert self.get(host, env) == FORGED
        return FORGED


@pytest.fixture(params=["python", "launcher"])
def client(request: pytest.FixtureRequest, isolated_home: Path) -> Client:
    if request.param == "python":
        return Client(helper_executable(), False, isolated_home)
    launcher: str = request.getfixturevalue("launcher")
    return Client(launcher, True, isolated_home)


def switch(client: Client, host: str, before: Env, after: Env, change: Callable[[], object] = lambda: None) -> str:
    """Token for `before`, served again, then `change()`: the token for `after`, a new one."""
    first = client.get(host, before)
    assert first not in (NOT_FOUND, FORGED) and first
    old = client.served_again(host, before, first)
    change()
    new = client.get(host, after)
    assert new not in (first, old, NOT_FOUND), f"{new!r} after the identity changed"
    return new


# ---- AWS ------------------------------------------------------------------------------------------


@pytest.fixture
def aws(fake_ecr: FakeEcr) -> Env:
    """An environment with the fake AWS endpoint and no credentials at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return dict(env, AWS_ENDPOINT_URL=fake_ecr.url, AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")


def keys(key_id: str, section: str = "default") -> str:
    return f"[{section}]\naws_access_key_id = {key_id}\naws_secret_access_key = secret-of-{key_id}\n"


def aws_file(home: Path, name: str, text: str) -> Path:
    """~/.aws/NAME holding `text`."""
    path = home / ".aws" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_aws_profile(client: Client, aws: Env, fake_ecr: FakeEcr, isolated_home: Path) -> None:
    aws_file(isolated_home, "config", keys("AKIAALPHA", "profile alpha") + keys("AKIABETA", "profile beta"))
    switch(client, ECR_HOST, dict(aws, AWS_PROFILE="alpha"), dict(aws, AWS_PROFILE="beta"))
    assert fake_ecr.key_ids == ["AKIAALPHA", "AKIABETA"]


def test_aws_default_profile_wins_as_botocore_reads_it(client: Client, aws: Env, fake_ecr: FakeEcr,
                                                       isolated_home: Path) -> None:
    # botocore takes AWS_DEFAULT_PROFILE over AWS_PROFILE: the key must name the profile that signs
    aws_file(isolated_home, "config", keys("AKIAALPHA", "profile alpha") + keys("AKIABETA", "profile beta"))
    both = dict(aws, AWS_PROFILE="alpha")
    switch(client, ECR_HOST, dict(both, AWS_DEFAULT_PROFILE="alpha"), dict(both, AWS_DEFAULT_PROFILE="beta"))
    assert fake_ecr.key_ids == ["AKIAALPHA", "AKIABETA"]


def test_aws_credentials_file_rewritten_at_the_same_path(client: Client, aws: Env, fake_ecr: FakeEcr,
                                                         isolated_home: Path) -> None:
    creds = aws_file(isolated_home, "credentials", keys("AKIAJOBONE"))
    switch(client, ECR_HOST, aws, aws, lambda: creds.write_text(keys("AKIAJOBTWO")))
    assert fake_ecr.key_ids == ["AKIAJOBONE", "AKIAJOBTWO"]


@pytest.mark.parametrize("variable", ["AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"])
def test_aws_files_named_by_variables(client: Client, aws: Env, fake_ecr: FakeEcr, tmp_path: Path,
                                      variable: str) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text(keys("AKIAFILEONE"))
    two.write_text(keys("AKIAFILETWO"))
    switch(client, ECR_HOST, dict(aws, **{variable: str(one)}), dict(aws, **{variable: str(two)}))
    assert fake_ecr.key_ids == ["AKIAFILEONE", "AKIAFILETWO"]


def test_aws_credential_process(client: Client, aws: Env, fake_ecr: FakeEcr, isolated_home: Path,
                                tmp_path: Path) -> None:
    scripts = []
    for name in ("PROCONE", "PROCTWO"):
        script = tmp_path / name
        script.write_text("#!/bin/sh\necho '" + json.dumps({"Version": 1, "AccessKeyId": f"AKIA{name}",
                                                           "SecretAccessKey": "s"}) + "'\n")
        script.chmod(0o755)
        scripts.append(script)
    config = aws_file(isolated_home, "config", f"[default]\ncredential_process = {scripts[0]}\n")
    switch(client, ECR_HOST, aws, aws, lambda: config.write_text(f"[default]\ncredential_process = {scripts[1]}\n"))
    assert fake_ecr.key_ids == ["AKIAPROCONE", "AKIAPROCTWO"]


def test_aws_sso_settings(client: Client, aws: Env, fake_ecr: FakeEcr, isolated_home: Path) -> None:
    import hashlib

    start_url = "https://corp.awsapps.com/start"
    cache = isolated_home / ".aws/sso/cache"
    cache.mkdir(parents=True)
    name = hashlib.sha1(start_url.encode()).hexdigest()  # noqa: S324 - botocore's own name for the token file
    (cache / f"{name}.json").write_text(json.dumps({
        "startUrl": start_url, "region": "us-east-1", "accessToken": "sso-access-token",
        "expiresAt": "2099-01-01T00:00:00Z"}))
    config = isolated_home / ".aws/config"

    def profile(role: str) -> str:
        return (f"[default]\nsso_start_url = {start_url}\nsso_region = us-east-1\n"
                f"sso_account_id = 111111111111\nsso_role_name = {role}\n")

    config.write_text(profile("reader"))
    switch(client, ECR_HOST, aws, aws, lambda: config.write_text(profile("writer")))
    assert fake_ecr.key_ids == ["ASIASSO111111111111READER", "ASIASSO111111111111WRITER"]


def test_aws_web_identity(client: Client, aws: Env, fake_ecr: FakeEcr, tmp_path: Path) -> None:
    token = tmp_path / "oidc-token"
    token.write_text("an-oidc-token")
    web = dict(aws, AWS_WEB_IDENTITY_TOKEN_FILE=str(token))
    switch(client, ECR_HOST, dict(web, AWS_ROLE_ARN="arn:aws:iam::123456789012:role/alpha"),
           dict(web, AWS_ROLE_ARN="arn:aws:iam::123456789012:role/beta"))
    assert fake_ecr.web_identity_roles == ["alpha", "beta"]
    assert fake_ecr.key_ids[-1] == "ASIAWEBBETA"


def test_aws_container_credentials(client: Client, aws: Env, fake_ecr: FakeEcr) -> None:
    switch(client, ECR_HOST, dict(aws, AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{fake_ecr.url}/creds/one"),
           dict(aws, AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{fake_ecr.url}/creds/two"))
    assert fake_ecr.key_ids == ["ASIACONTAINERONE", "ASIACONTAINERTWO"]


def test_aws_container_authorization_token(client: Client, aws: Env, fake_ecr: FakeEcr,
                                           isolated_home: Path) -> None:
    # a secret that names the identity: Python keys by its digest; the launcher, which may keep no digest of
    # a secret-named variable, is never given a record to repeat while it is set
    container = dict(aws, AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{fake_ecr.url}/creds/pod")
    first = client.get(ECR_HOST, dict(container, AWS_CONTAINER_AUTHORIZATION_TOKEN="pod-one"))
    assert first.startswith("token-") and records(isolated_home) == []
    assert client.get(ECR_HOST, dict(container, AWS_CONTAINER_AUTHORIZATION_TOKEN="pod-one")) == first
    assert client.get(ECR_HOST, dict(container, AWS_CONTAINER_AUTHORIZATION_TOKEN="pod-two")) not in (first, NOT_FOUND)
    assert records(isolated_home) == []


def test_every_secret_that_names_an_aws_identity_keeps_answers_unrepeatable() -> None:
    from helper import envrules
    from helper.backends import aws_identity

    secret_named = {var for var in (*aws_identity.IDENTITY_VARS, *aws_identity.SECRET_IDENTITY_VARS)
                    if envrules.secret_name(var)}
    assert secret_named == set(aws_identity.UNREPEATABLE_WHILE_SET)
    assert secret_named  # control: the check sees the one there is
    # and every variable that names the identity is one the launcher fingerprints
    assert [var for var in (*aws_identity.IDENTITY_VARS, *aws_identity.SECRET_IDENTITY_VARS, "AWS_PROFILE",
                            "AWS_DEFAULT_PROFILE", "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG")
            if not envrules.fingerprinted(var)] == []


def test_aws_access_keys(client: Client, aws: Env, fake_ecr: FakeEcr) -> None:
    switch(client, "public.ecr.aws", dict(aws, AWS_ACCESS_KEY_ID="AKIAENVONE", AWS_SECRET_ACCESS_KEY="s"),
           dict(aws, AWS_ACCESS_KEY_ID="AKIAENVTWO", AWS_SECRET_ACCESS_KEY="s"))
    assert fake_ecr.key_ids == ["AKIAENVONE", "AKIAENVTWO"]


def test_aws_removing_every_credential_is_not_found(client: Client, aws: Env, fake_ecr: FakeEcr,
                                                    isolated_home: Path) -> None:
    creds = aws_file(isolated_home, "credentials", keys("AKIAGONESOON"))
    first = client.get(ECR_HOST, aws)
    client.served_again(ECR_HOST, aws, first)
    creds.unlink()
    # no keys, no files, no metadata service (disabled): the ambient identity has nothing to sign with
    assert client.get(ECR_HOST, aws) == NOT_FOUND
    assert fake_ecr.key_ids == ["AKIAGONESOON"]


def test_the_aws_cache_key_holds_no_key_id_and_names_the_ambient_identity(aws: Env, isolated_home: Path) -> None:
    from helper.backends.aws_identity import aws_identity

    os.environ.update(AWS_ACCESS_KEY_ID="AKIASECRETISH")
    try:
        named = aws_identity({})
    finally:
        del os.environ["AWS_ACCESS_KEY_ID"]
    ambient = aws_identity({})
    assert "AKIASECRETISH" not in named.name and "|key=" in named.name
    assert ambient.name.endswith("|ambient") and ambient.name != named.name
    assert [path for path, _ in ambient.files] == [str(isolated_home / ".aws/config"),
                                                   str(isolated_home / ".aws/credentials")]


def test_aws_files_named_through_other_variables_are_never_recorded(launcher: str, aws: Env, fake_ecr: FakeEcr,
                                                                     tmp_path: Path, isolated_home: Path) -> None:
    # AWS_CONFIG_FILE='$JOB_DIR/aws' names a file through a variable the launcher does not fingerprint:
    # two jobs with the same literal value would share a record, so there is none
    for job in ("a", "b"):
        (tmp_path / job).mkdir()
        (tmp_path / job / "aws").write_text(keys(f"AKIAJOB{job.upper()}"))
    env = dict(aws, AWS_CONFIG_FILE="$JOB_DIR/aws")
    client = Client(launcher, True, isolated_home)
    first = client.get(ECR_HOST, dict(env, JOB_DIR=str(tmp_path / "a")))
    assert records(isolated_home) == []
    assert client.get(ECR_HOST, dict(env, JOB_DIR=str(tmp_path / "b"))) not in (first, NOT_FOUND)
    assert fake_ecr.key_ids == ["AKIAJOBA", "AKIAJOBB"]


# ---- Google ---------------------------------------------------------------------------------------


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    server = FakeGoogle()
    yield server
    server.close()


def sa_key(google: FakeGoogle, pem: str, email: str) -> str:
    return json.dumps({"type": "service_account", "project_id": "fake-project", "private_key_id": "0123",
                       "private_key": pem, "client_email": email, "client_id": "1",
                       "token_uri": f"{google.url}/token"})


def test_google_key_file_rewritten_at_the_same_path(client: Client, google: FakeGoogle, private_key_pem: str,
                                                    tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text(sa_key(google, private_key_pem, SA_EMAIL))
    env = dict(os.environ, GOOGLE_APPLICATION_CREDENTIALS=str(path))
    other = "other@fake-project.iam.gserviceaccount.com"
    switch(client, "gcr.io", env, env, lambda: path.write_text(sa_key(google, private_key_pem, other)))
    assert google.count("/token") == 2


def test_google_credentials_variable_names_another_file(client: Client, google: FakeGoogle, private_key_pem: str,
                                                        tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    one.write_text(sa_key(google, private_key_pem, SA_EMAIL))
    two.write_text(sa_key(google, private_key_pem, "two@fake-project.iam.gserviceaccount.com"))
    switch(client, "gcr.io", dict(os.environ, GOOGLE_APPLICATION_CREDENTIALS=str(one)),
           dict(os.environ, GOOGLE_APPLICATION_CREDENTIALS=str(two)))


def seed_user_token(adc: Path, refresh_token: str, secret: str) -> None:
    """Cache a token for gcloud user credentials with `refresh_token`: google-auth always sends those to
    Google's own endpoint, which no test may reach, so the token is put where a fetch would have."""
    import time

    from helper.backends.gcp import GcpBackend
    from helper.cache import TokenCache
    from helper.hosts import parse
    from helper.router import builtin_routes
    from helper.tokens import Token

    adc.write_text(json.dumps({"type": "authorized_user", "refresh_token": refresh_token, "client_id": "gcloud",
                               "client_secret": "gcloud-secret"}))
    backend = GcpBackend(next(r for r in builtin_routes() if r.backend == "gcp"), TokenCache())
    TokenCache().write(backend.cache_key(parse("gcr.io")), Token("oauth2accesstoken", secret, time.time() + 3600,
                                                                 time.time()), "gcr.io")


def test_google_adc_login_as_another_person(client: Client, isolated_home: Path) -> None:
    adc = Path(os.environ["CLOUDSDK_CONFIG"]) / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    seed_user_token(adc, "1//bob-refresh", "bobs-token")
    seed_user_token(adc, "1//alice-refresh", "alices-token")  # the file now holds alice's grant
    env = dict(os.environ, HTTPS_PROXY="http://127.0.0.1:9")  # were anything fetched, it would fail here
    assert switch(client, "gcr.io", env, env,
                  lambda: adc.write_text(adc.read_text().replace("alice", "bob"))) == "bobs-token"
    assert len(list(cache_dir(isolated_home).glob("gcp*.json"))) == 2


def test_google_removing_every_credential_is_not_found(client: Client, google: FakeGoogle, private_key_pem: str,
                                                       isolated_home: Path) -> None:
    adc = Path(os.environ["CLOUDSDK_CONFIG"]) / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text(sa_key(google, private_key_pem, SA_EMAIL))
    env = dict(os.environ)
    first = client.get("gcr.io", env)
    assert first.startswith("sa-token-")
    client.served_again("gcr.io", env, first)
    adc.unlink()
    # no file left: the metadata server's identity, and conftest's metadata host is a closed port
    assert client.get("gcr.io", env) == NOT_FOUND


def test_a_credentials_file_rewritten_during_the_fetch_is_never_cached(tmp_path: Path) -> None:
    # who() read one identity, the SDK then read another: the token may be the other's, so it is not cached
    import time

    from helper.backends.token_base import Identity, TokenBackend
    from helper.cache import TokenCache
    from helper.errors import CredentialsNotFound
    from helper.fsutil import read_signed
    from helper.hosts import parse
    from helper.route import RouteSpec
    from helper.tokens import Token

    creds = tmp_path / "credentials"
    creds.write_text("alice")

    class Racing(TokenBackend):
        rewrite = True

        def target(self, key: object) -> str:
            return "t"

        def who(self, key: object) -> Identity:
            data, sig = read_signed(str(creds))
            return Identity(f"who={data!r}", ((str(creds), sig),))

        def fetch(self, key: object) -> Token:
            if self.rewrite:
                creds.write_text("bob, a longer name")
            return Token("u", f"token-for-{creds.read_text()}", time.time() + 3600, time.time())

    cache = TokenCache(str(tmp_path / "cache"))
    backend = Racing(RouteSpec([], "exec", {}, "t"), cache)
    with pytest.raises(CredentialsNotFound):
        backend.get(parse("r.example"))
    assert cache.entries() == []
    backend.rewrite = False  # control: with nothing changing under it, the same backend caches
    assert backend.get(parse("r.example")).secret == "token-for-bob, a longer name"
    assert len(cache.entries()) == 1


def test_google_files_of_other_types_are_told_apart_by_their_whole_content() -> None:
    from helper.backends.google_identity import file_identity

    federation = {"type": "external_account", "audience": "//iam.googleapis.com/pool/a",
                  "credential_source": {"file": "/var/run/oidc"}}
    one = file_identity(json.dumps(federation).encode(), "sig")
    federation["service_account_impersonation_url"] = "https://iam/other@x.iam.gserviceaccount.com"
    two = file_identity(json.dumps(federation).encode(), "sig")
    assert one.startswith("external_account:") and two.startswith("external_account:") and one != two
    assert file_identity(None, "-") == "absent" and file_identity(b"{not json", "sig").startswith("invalid:")
    user = file_identity(json.dumps({"type": "authorized_user", "refresh_token": "1//secret"}).encode(), "sig")
    assert user.startswith("authorized_user:") and "secret" not in user
