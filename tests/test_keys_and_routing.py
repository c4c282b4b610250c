"""Keys (aliases, exactness, repository paths) and routing (anchored patterns, specificity, lookalikes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helper import hosts
from helper.config import Config
from helper.config import parse as parse_config
from helper.patterns import compile_pattern
from helper.router import route_for
from tests.conftest import NOT_FOUND, call

EMPTY = Config(None, [], None)


def store(key: str, user: str, secret: str = "s") -> None:
    assert call("store", json.dumps({"ServerURL": key, "Username": user, "Secret": secret})).code == 0


def user_for(key: str) -> str | None:
    result = call("get", key)
    if result.code == 1:
        assert result.out == NOT_FOUND + "\n"
        return None
    got = result.json()
    assert isinstance(got, dict)
    return str(got["Username"])


@pytest.mark.parametrize("stored, asked", [
    ("https://index.docker.io/v1/", "docker.io"),
    ("docker.io", "https://index.docker.io/v1/"),
    ("index.docker.io", "registry-1.docker.io"),
    ("https://ghcr.io", "ghcr.io"),
    ("ghcr.io", "http://ghcr.io/"),
    ("127.0.0.1:5000", "https://127.0.0.1:5000/v2/"),
    ("Quay.IO", "quay.io"),
])
def test_every_spelling_of_a_registry_reaches_the_same_entry(stored: str, asked: str) -> None:
    store(stored, "alice")
    assert user_for(asked) == "alice"


def test_a_port_is_another_registry() -> None:
    store("registry.example:5000", "alice")
    assert user_for("registry.example") is None
    assert user_for("registry.example:5001") is None


def test_an_exact_key_always_wins_over_an_alias() -> None:
    store("https://index.docker.io/v1/", "docker-user")
    store("docker.io", "podman-user")
    assert user_for("https://index.docker.io/v1/") == "docker-user"
    assert user_for("docker.io") == "podman-user"
    assert user_for("index.docker.io") == "podman-user"  # the newest alias answers a third spelling


def test_docker_hub_token_keys_stay_exact() -> None:
    store("https://index.docker.io/v1/", "alice")
    assert user_for("https://index.docker.io/v1/access-token") is None
    assert user_for("https://index.docker.io/v1/refresh-token") is None
    store("https://index.docker.io/v1/refresh-token", "<token>")
    assert user_for("https://index.docker.io/v1/refresh-token") == "<token>"
    assert user_for("https://index.docker.io/v1/") == "alice"


def test_repository_path_keys_get_the_most_specific_namespace_then_the_host() -> None:
    assert user_for("ghcr.io/org/img") is None
    store("ghcr.io", "host-user")
    assert user_for("ghcr.io/org/img") == "host-user"
    store("ghcr.io/org", "org-user")
    assert user_for("ghcr.io/org/img") == "org-user"
    assert user_for("ghcr.io/other/img") == "host-user"
    store("https://index.docker.io/v1/", "hub-user")
    assert user_for("index.docker.io/library/busybox") == "hub-user"


def test_erase_forgets_every_spelling_of_the_registry_but_not_other_ports_or_paths() -> None:
    for key in ("127.0.0.1:5000", "http://127.0.0.1:5000", "https://127.0.0.1:5000", "127.0.0.1:5001",
                "127.0.0.1:5000/org"):
        store(key, key)
    assert call("erase", "127.0.0.1:5000").code == 0
    assert set(call("list").json()) == {"127.0.0.1:5001", "127.0.0.1:5000/org"}


def test_podman_logout_of_docker_io_forgets_the_docker_login() -> None:
    store("https://index.docker.io/v1/", "alice")
    assert call("erase", "docker.io").code == 0
    assert user_for("https://index.docker.io/v1/") is None


@pytest.mark.parametrize("key", ["a.azurecr.io@evil.example", "https://a.azurecr.io@evil.example",
                                 "host with space", "hôst.example", "h.example:99999", "h.example:x"])
def test_keys_that_are_not_registries_still_store_and_get_exactly(key: str) -> None:
    assert hosts.parse(key).host is None
    store(key, "weird")
    assert user_for(key) == "weird"


# -- patterns and routes ------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern, host, port, expected", [
    ("*.azurecr.io", "myreg.azurecr.io", None, True),
    ("*.azurecr.io", "azurecr.io", None, False),
    ("*.azurecr.io", "a.b.azurecr.io", None, False),
    ("*.azurecr.io", "x.azurecr.io.evil.example", None, False),
    ("*.azurecr.io", "x.azurecr.io.", None, False),
    ("*.azurecr.io", "X.AZURECR.IO", None, False),
    ("*.azurecr.io", "myreg.azurecr.io", 8443, True),
    ("*-docker.pkg.dev", "europe-west1-docker.pkg.dev", None, True),
    ("*-docker.pkg.dev", "-docker.pkg.dev", None, False),
    ("*-docker.pkg.dev", "docker.pkg.dev", None, False),
    ("registry.corp:5000", "registry.corp", 5000, True),
    ("registry.corp:5000", "registry.corp", None, False),
    ("registry.corp:5000", "registry.corp", 5001, False),
])
def test_patterns_are_anchored_one_label_per_star_and_ports_are_deliberate(
        pattern: str, host: str, port: int | None, expected: bool) -> None:
    assert compile_pattern(pattern).matches(host, port) is expected


@pytest.mark.parametrize("bad", ["", "https://x.io", "x.io/path", "X.io", "a..b", "*.io:0", "**.io", "a@b", "x.io."])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        compile_pattern(bad)


@pytest.mark.parametrize("key, backend", [
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com", "ecr"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com:8443", "ecr"),
    ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "ecr"),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "ecr"),
    ("123456789012.dkr-ecr.eu-west-1.on.aws", "ecr"),
    ("123456789012.dkr-ecr-fips.us-east-1.on.aws", "ecr"),
    ("123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu", "ecr"),
    ("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", "ecr"),
    ("123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", "ecr"),
    ("https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/", "ecr"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/repo/img", "ecr"),
    ("public.ecr.aws", "ecr-public"),
    ("ecr-public.aws.com", "ecr-public"),
    ("gcr.io", "gcp"), ("eu.gcr.io", "gcp"), ("us-central1-docker.pkg.dev", "gcp"),
    ("docker.us-central1.rep.pkg.dev", "gcp"),
    ("myreg.azurecr.io", "acr"), ("myreg.azurecr.cn", "acr"), ("myreg.azurecr.us", "acr"),
    # lookalikes never reach a cloud backend
    ("x.azurecr.io.evil.example", "store"),
    ("https://a.azurecr.io@evil.example", "store"),
    ("a.azurecr.io@evil.example", "store"),
    ("myreg.azurecr.io.", "store"),
    ("MyReg.AzureCR.io", "store"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com.fake.example.com", "store"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com.", "store"),
    ("gcr.io.evil.example", "store"),
    ("evilgcr.io", "store"),
    ("xn--gcr-xyz.io", "store"),
    ("public.ecr.aws.evil.example", "store"),
    # issue 11.5: the env presets are built-in routes (their not-found falls back to the static store)
    ("docker.io", "env"), ("ghcr.io", "env"), ("127.0.0.1:5000", "store"), ("ghcr.io.evil.example", "store"),
])
def test_builtin_routes_claim_cloud_hosts_and_no_lookalike(key: str, backend: str) -> None:
    assert route_for(hosts.parse(key), EMPTY).backend == backend


def test_most_specific_route_wins_and_the_routes_file_beats_builtins_at_equal_specificity() -> None:
    config = parse_config("""
[[route]]
match = "*.azurecr.io"
backend = "store"

[[route]]
match = "special.azurecr.io"
backend = "env"
preset = "ngc"

[[route]]
match = ["registry.corp", "registry.corp:5000"]
backend = "helper"
helper = "pass"
""", "routes.toml")
    assert route_for(hosts.parse("a.azurecr.io"), config).backend == "store"
    assert route_for(hosts.parse("a.azurecr.io"), config).spec.source == "routes.toml:2"
    assert route_for(hosts.parse("special.azurecr.io"), config).backend == "env"
    assert route_for(hosts.parse("registry.corp:5000"), config).pattern.text == "registry.corp:5000"  # type: ignore[union-attr]
    assert route_for(hosts.parse("registry.corp:6000"), config).pattern.text == "registry.corp"  # type: ignore[union-attr]


def test_a_token_route_without_tokens_falls_back_to_what_the_user_stored() -> None:
    host = "myreg.azurecr.io"
    assert call("get", host).out == NOT_FOUND + "\n"
    store(host, "admin-user", "admin-pass")
    assert user_for(host) == "admin-user"


def test_route_none_is_always_anonymous(routes: Path) -> None:
    routes.write_text('[[route]]\nmatch = "anon.example"\nbackend = "none"\n')
    store("anon.example", "u")
    assert user_for("anon.example") is None
