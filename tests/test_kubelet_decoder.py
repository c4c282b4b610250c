"""The kubelet mirror rejects what the kubelet rejects and accepts what it accepts.

Fixtures are copied from kubernetes/kubernetes ``pkg/credentialprovider/plugin/plugin_test.go``
(030880a5dc5449403c6d1f0aa146a7dc21d6c6dc: ``Test_decodeResponse``, ``Test_encodeRequest``) and
``pkg/credentialprovider/keyring_test.go`` (``TestUrlsMatch``, ``TestDockerKeyringForGlob``,
``TestKeyringMiss``, ``TestKeyringMissWithDockerHubCredentials``, ``TestKeyringHitWith*DockerHub``,
``TestIsDefaultRegistryMatch``, ``TestDockerKeyringLookup``, ``TestIssue3797``). These tests do not
touch the helper.
"""

from __future__ import annotations

import json

import pytest

from tests.kubelet_decoder import (
    DecodeError,
    Response,
    decode_response,
    go_duration,
    go_duration_ns,
    is_default_registry_match,
    lookup,
    urls_match,
)

V1 = "credentialprovider.kubelet.k8s.io/v1"
V1BETA1 = "credentialprovider.kubelet.k8s.io/v1beta1"
V1ALPHA1 = "credentialprovider.kubelet.k8s.io/v1alpha1"


def _response(**fields: object) -> bytes:
    doc: dict[str, object] = {"kind": "CredentialProviderResponse", "apiVersion": V1, "cacheKeyType": "Registry",
                              "auth": {"reg.io": {"username": "u", "password": "p"}}}
    doc.update(fields)
    return json.dumps(doc).encode()


# ------------------------------------------------------------------ plugin_test.go Test_decodeResponse

@pytest.mark.parametrize("name, version", [
    ("success with v1", V1), ("success with v1beta1", V1BETA1), ("success with v1alpha1", V1ALPHA1)])
def test_the_decode_response_success_fixtures_of_plugin_test_go_are_accepted(name: str, version: str) -> None:
    data = ('{"kind":"CredentialProviderResponse","apiVersion":"' + version + '","cacheKeyType":"Registry",'
            '"cacheDuration":"1m","auth":{"*.registry.io":{"username":"user","password":"password"}}}').encode()
    assert decode_response(data, version) == Response(
        api_version=version, kind="CredentialProviderResponse", cache_key_type="Registry",
        cache_duration_s=60.0, auth={"*.registry.io": ("user", "password")})


@pytest.mark.parametrize("name, data", [
    ("wrong Kind", b'{"kind":"WrongKind","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1",'
                   b'"cacheKeyType":"Registry","cacheDuration":"1m",'
                   b'"auth":{"*.registry.io":{"username":"user","password":"password"}}}'),
    ("wrong Group", b'{"kind":"CredentialProviderResponse","apiVersion":"foobar.kubelet.k8s.io/v1beta1",'
                    b'"cacheKeyType":"Registry","cacheDuration":"1m",'
                    b'"auth":{"*.registry.io":{"username":"user","password":"password"}}}'),
])
def test_the_decode_response_failure_fixtures_of_plugin_test_go_are_rejected(name: str, data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_response(data, V1BETA1)


@pytest.mark.parametrize("name, data, version", [
    ("successful with v1alpha1",
     b'{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1alpha1",'
     b'"image":"test.registry.io/foobar"}\n', V1ALPHA1),
    ("successful with v1beta1",
     b'{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1",'
     b'"image":"test.registry.io/foobar"}\n', V1BETA1),
    ("successful with v1",
     b'{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1",'
     b'"image":"test.registry.io/foobar"}\n', V1),
    ("successful with v1, with service account token and annotations",
     b'{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1",'
     b'"image":"test.registry.io/foobar","serviceAccountToken":"service-account-token",'
     b'"serviceAccountAnnotations":{"domain.io/annotation1":"value1"}}\n', V1),
])
def test_a_request_fixture_of_test_encode_request_echoed_back_as_the_response_is_rejected(
        name: str, data: bytes, version: str) -> None:
    with pytest.raises(DecodeError, match="Kind"):
        decode_response(data, version)


# ------------------------------------------------------------------ strict decoding

def test_a_minimal_response_with_a_trailing_newline_is_accepted() -> None:
    got = decode_response(b'{"apiVersion":"credentialprovider.kubelet.k8s.io/v1",'
                          b'"kind":"CredentialProviderResponse","cacheKeyType":"Global"}\n', V1)
    assert got == Response(V1, "CredentialProviderResponse", "Global", None, {})


def test_the_api_version_must_equal_the_configured_one_even_when_both_are_supported() -> None:
    with pytest.raises(DecodeError, match="did not match expected"):
        decode_response(_response(apiVersion=V1BETA1), V1)


def test_the_api_version_is_checked_before_anything_else() -> None:
    with pytest.raises(DecodeError, match="did not match expected"):
        decode_response(_response(apiVersion=V1BETA1, bogus=1, cacheKeyType="nope"), V1)


def test_a_configured_api_version_the_kubelet_does_not_support_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="invalid apiVersion"):
        decode_response(_response(), "credentialprovider.kubelet.k8s.io/v2")


@pytest.mark.parametrize("kind", ["WrongKind", "CredentialProviderRequest", "credentialproviderresponse", None])
def test_a_wrong_or_missing_kind_is_rejected(kind: str | None) -> None:
    with pytest.raises(DecodeError):
        decode_response(_response(kind=kind), V1)


@pytest.mark.parametrize("cache_key_type", ["image", "registry", "Pod", "", None, 1])
def test_a_cache_key_type_other_than_image_registry_or_global_is_rejected(cache_key_type: object) -> None:
    with pytest.raises(DecodeError):
        decode_response(_response(cacheKeyType=cache_key_type), V1)


def test_a_missing_cache_key_type_is_rejected() -> None:
    doc = json.loads(_response())
    del doc["cacheKeyType"]
    with pytest.raises(DecodeError, match="cacheKeyType"):
        decode_response(json.dumps(doc).encode(), V1)


@pytest.mark.parametrize("version", [V1, V1BETA1, V1ALPHA1])
@pytest.mark.parametrize("cache_key_type", ["Image", "Registry", "Global"])
def test_each_cache_key_type_is_accepted_in_each_version(version: str, cache_key_type: str) -> None:
    assert decode_response(_response(apiVersion=version, cacheKeyType=cache_key_type), version).cache_key_type \
        == cache_key_type


def test_an_unknown_top_level_field_is_rejected() -> None:
    with pytest.raises(DecodeError, match="unknown field"):
        decode_response(_response(expiresAt="2030-01-01T00:00:00Z"), V1)


def test_an_unknown_field_in_an_auth_entry_is_rejected() -> None:
    with pytest.raises(DecodeError, match="unknown field"):
        decode_response(_response(auth={"reg.io": {"username": "u", "password": "p", "auth": "dTpw"}}), V1)


@pytest.mark.parametrize("key", ["CacheKeyType", "cachekeytype", "Auth", "APIVersion", "Kind"])
def test_a_field_name_in_the_wrong_case_is_an_unknown_field(key: str) -> None:
    doc = json.loads(_response())
    real = {k.lower(): k for k in doc}[key.lower()]
    doc[key] = doc.pop(real)
    with pytest.raises(DecodeError):
        decode_response(json.dumps(doc).encode(), V1)


def test_an_auth_field_name_in_the_wrong_case_is_an_unknown_field() -> None:
    with pytest.raises(DecodeError, match="unknown field"):
        decode_response(_response(auth={"reg.io": {"Username": "u", "password": "p"}}), V1)


def test_service_account_token_cache_type_is_known_to_v1_only() -> None:
    assert decode_response(_response(serviceAccountTokenCacheType="Pod"), V1).cache_key_type == "Registry"
    with pytest.raises(DecodeError, match="unknown field"):
        decode_response(_response(apiVersion=V1BETA1, serviceAccountTokenCacheType="Pod"), V1BETA1)


@pytest.mark.parametrize("data", [
    b'{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse",'
    b'"cacheKeyType":"Registry","cacheKeyType":"Registry"}',
    b'{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","apiVersion":"credentialprovider.kubelet.k8s.io/v1",'
    b'"kind":"CredentialProviderResponse","cacheKeyType":"Registry"}',
])
def test_a_duplicate_top_level_field_is_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError, match="duplicate"):
        decode_response(data, V1)


@pytest.mark.parametrize("auth", [
    b'{"reg.io":{"username":"u","password":"p","password":"q"}}',
    b'{"reg.io":{"username":"u","password":"p"},"reg.io":{"username":"v","password":"q"}}',
])
def test_a_duplicate_field_inside_auth_is_rejected(auth: bytes) -> None:
    data = (b'{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse",'
            b'"cacheKeyType":"Registry","auth":' + auth + b"}")
    with pytest.raises(DecodeError, match="duplicate"):
        decode_response(data, V1)


@pytest.mark.parametrize("data", [
    b"", b"null", b"[]", b'"x"',
    _response() + b"{}", _response() + b"x", _response() + _response(),
    b"\xef\xbb\xbf" + _response(),
    _response().replace(b'"Registry"', b"NaN"),
    _response().replace(b'"reg.io"', b"'reg.io'"),
    b"apiVersion: credentialprovider.kubelet.k8s.io/v1\nkind: CredentialProviderResponse\ncacheKeyType: Global\n",
])
def test_anything_but_exactly_one_json_object_is_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_response(data, V1)


@pytest.mark.parametrize("field", [
    {"auth": []}, {"auth": "reg.io"}, {"auth": {"reg.io": "u:p"}},
    {"auth": {"reg.io": {"username": 1, "password": "p"}}},
    {"auth": {"reg.io": {"username": "u", "password": True}}},
    {"cacheDuration": 600}, {"cacheDuration": "600"}, {"cacheDuration": "1x"}, {"cacheDuration": ""},
    {"cacheDuration": {"seconds": 600}},
])
def test_a_field_of_the_wrong_go_type_or_an_invalid_duration_is_rejected(field: dict[str, object]) -> None:
    with pytest.raises(DecodeError):
        decode_response(_response(**field), V1)


def test_nulls_decode_as_go_zero_values() -> None:
    got = decode_response(_response(cacheDuration=None, auth={"a.io": None, "b.io": {"username": None}}), V1)
    assert got.cache_duration_s is None
    assert got.auth == {"a.io": ("", ""), "b.io": ("", "")}


def test_auth_null_or_absent_means_no_credentials() -> None:
    assert decode_response(_response(auth=None), V1).auth == {}


@pytest.mark.parametrize("text, seconds", [("0", 0.0), ("0s", 0.0), ("1m", 60.0), ("10m0s", 600.0), ("-1s", -1.0)])
def test_cache_duration_is_a_go_duration_string(text: str, seconds: float) -> None:
    assert decode_response(_response(cacheDuration=text), V1).cache_duration_s == seconds


# ------------------------------------------------------------------ time.ParseDuration

@pytest.mark.parametrize("text, ns", [
    ("0", 0), ("-0", 0), ("+0", 0), ("1m", 60 * 10**9), ("10m0s", 600 * 10**9), ("1h30m", 5400 * 10**9),
    ("1.5h", 5400 * 10**9), ("-1s", -(10**9)), ("+5s", 5 * 10**9), ("1h2m3.5s", 3723_500_000_000),
    (".5s", 500_000_000), ("1.s", 10**9), ("1ns", 1), ("1us", 1000), ("1µs", 1000), ("1μs", 1000),
    ("1ms", 10**6), ("0.000000001s", 1), ("9223372036854775807ns", 2**63 - 1),
    ("-9223372036854775808ns", -(2**63)), ("3s2s", 5 * 10**9),
])
def test_go_duration_accepts_what_time_parse_duration_accepts(text: str, ns: int) -> None:
    assert go_duration_ns(text) == ns
    assert go_duration(text) == ns / 1e9


@pytest.mark.parametrize("text", ["", "600", "1x", "1hh", "1h-1m", ".s", "-", "+", "s", "1.5.5s", " 1s", "1s ",
                                  "1S", "1H", "9223372036854775808ns", "1e3s", "1,5s", "\uff11s"])
def test_go_duration_rejects_what_time_parse_duration_rejects(text: str) -> None:
    with pytest.raises(DecodeError):
        go_duration(text)


def test_a_bare_number_is_a_missing_unit() -> None:
    with pytest.raises(DecodeError, match='missing unit in duration "600"'):
        go_duration("600")


# ------------------------------------------------------------------ keyring_test.go TestUrlsMatch

@pytest.mark.parametrize("glob, target, expected", [
    # match when there is no path component
    ("*.kubernetes.io", "prefix.kubernetes.io", True),
    ("prefix.*.io", "prefix.kubernetes.io", True),
    ("prefix.kubernetes.*", "prefix.kubernetes.io", True),
    ("*-good.kubernetes.io", "prefix-good.kubernetes.io", True),
    # match with path components
    ("*.kubernetes.io/blah", "prefix.kubernetes.io/blah", True),
    ("prefix.*.io/foo", "prefix.kubernetes.io/foo/bar", True),
    # match with path components and ports
    ("*.kubernetes.io:1111/blah", "prefix.kubernetes.io:1111/blah", True),
    ("prefix.*.io:1111/foo", "prefix.kubernetes.io:1111/foo/bar", True),
    # no match when number of parts mismatch
    ("*.kubernetes.io", "kubernetes.io", False),
    ("*.*.kubernetes.io", "prefix.kubernetes.io", False),
    ("*.*.kubernetes.io", "kubernetes.io", False),
    # no match when some parts mismatch
    ("kubernetes.io", "kubernetes.com", False),
    ("k*.io", "quay.io", False),
    # no match when ports mismatch
    ("*.kubernetes.io:1234/blah", "prefix.kubernetes.io:1111/blah", False),
    ("prefix.*.io/foo", "prefix.kubernetes.io:1111/foo/bar", False),
])
def test_urls_match_agrees_with_the_keyring_test_go_table(glob: str, target: str, expected: bool) -> None:
    assert urls_match(glob, target) is expected


@pytest.mark.parametrize("glob, target, expected", [
    ("registry.io", "registry.io:5000/x", False),
    ("registry.io:5000", "registry.io:5000/x", True),
    ("registry.io:5000", "registry.io/x", False),
    ("registry.io:5000", "registry.io:5001/x", False),
    ("registry.io:", "registry.io/x", True),  # an empty port is no port
])
def test_ports_must_be_equal_and_no_port_is_a_port_of_its_own(glob: str, target: str, expected: bool) -> None:
    assert urls_match(glob, target) is expected


@pytest.mark.parametrize("glob, target, expected", [
    ("reg.io/team", "reg.io/team-b/x", True),
    ("reg.io/team", "reg.io/teamx", True),
    ("reg.io/team/", "reg.io/team-b/x", False),
    ("reg.io/team/", "reg.io/team", False),
    ("reg.io/team", "reg.io/team", True),
    ("reg.io/team", "reg.io", False),
    ("reg.io/a%2Fb", "reg.io/a/b/c", True),  # paths are compared %-unescaped
])
def test_the_path_is_a_plain_string_prefix_without_a_segment_boundary(glob: str, target: str, expected: bool) -> None:
    assert urls_match(glob, target) is expected


@pytest.mark.parametrize("target", ["host/a", "host/*", "host/a/b", "host/"])
def test_a_glob_in_the_path_is_literal_so_host_star_never_matches_a_normal_path(target: str) -> None:
    assert urls_match("host/*", target) is (target == "host/*")


@pytest.mark.parametrize("glob, target, expected", [
    ("*.io", "k8s.registry.io", False),  # one label per *
    ("app*.k8s.io", "apps.k8s.io", True),
    ("app*.k8s.io", "app.k8s.io", True),  # * may be empty
    ("reg[0-9].io", "reg7.io", True),
    ("reg[0-9].io", "regx.io", False),
    ("reg[!0-9].io", "reg!.io", True),  # "!" is a literal for Go, not negation
    ("reg[^0-9].io", "regx.io", False),  # "^" would negate, but url.Parse refuses it in a host
    ("reg\\x.io", "regx.io", False),  # so does "\"
    ("reg?.io", "reg1.io", False),  # "?" starts a query: the glob host is "reg"
    ("reg?.io", "reg", True),
    ("reg[0-9].io:5000", "reg1.io:5000", False),  # SplitHostPort refuses "[": all host, port ""
    ("Registry.io", "registry.io", False),  # case-sensitive
    ("reg.io", "reg.io@sha256:abc", False),
    ("reg.io", "reg.io/x@sha256:abc", True),
])
def test_host_labels_match_with_go_filepath_match_after_go_url_parsing(glob: str, target: str, expected: bool) -> None:
    assert urls_match(glob, target) is expected


# ------------------------------------------------------------------ keyring_test.go: Add + Lookup

@pytest.mark.parametrize("glob, target", [
    ("https://hello.kubernetes.io", "hello.kubernetes.io"),
    ("https://*.docker.io", "prefix.docker.io"),
    ("https://prefix.*.io", "prefix.docker.io"),
    ("https://prefix.docker.*", "prefix.docker.io"),
    ("https://*.docker.io/path", "prefix.docker.io/path"),
    ("https://prefix.*.io/path", "prefix.docker.io/path/subpath"),
    ("https://prefix.docker.*/path", "prefix.docker.io/path"),
    ("https://*.docker.io:8888", "prefix.docker.io:8888"),
    ("https://prefix.*.io:8888", "prefix.docker.io:8888"),
    ("https://prefix.docker.*:8888", "prefix.docker.io:8888"),
    ("https://*.docker.io/path:1111", "prefix.docker.io/path:1111"),
    ("https://*.docker.io/v1/", "prefix.docker.io/path:1111"),
    ("https://*.docker.io/v2/", "prefix.docker.io/path:1111"),
    ("https://prefix.docker.*/path:1111", "prefix.docker.io/path:1111"),
    ("prefix.docker.io:1111", "prefix.docker.io:1111/path"),
    ("*.docker.io:1111", "prefix.docker.io:1111/path"),
])
def test_lookup_finds_the_keyring_test_go_docker_keyring_for_glob_cases(glob: str, target: str) -> None:
    assert lookup({glob: ("foo", "bar")}, target + "/foo/bar") == [("foo", "bar")]


@pytest.mark.parametrize("glob, image", [
    ("https://hello.kubernetes.io", "world.mesos.org/foo/bar"),
    ("https://*.docker.com", "prefix.docker.io"),
    ("https://suffix.*.io", "prefix.docker.io"),
    ("https://prefix.docker.c*", "prefix.docker.io"),
    ("https://prefix.*.io/path:1111", "prefix.docker.io/path/subpath:1111"),
    ("suffix.*.io", "prefix.docker.io"),
])
def test_lookup_misses_the_keyring_test_go_keyring_miss_cases(glob: str, image: str) -> None:
    assert lookup({glob: ("foo", "bar")}, image + "/foo/bar") == []


DOCKER_HUB = {"https://index.docker.io/v1/": ("foo", "bar")}


def test_docker_hub_credentials_do_not_leak_to_another_registry() -> None:
    assert lookup(DOCKER_HUB, "world.mesos.org/foo/bar") == []


@pytest.mark.parametrize("image", ["google/docker-registry", "jenkins", "index.docker.io/v1//google/docker-registry",
                                   "docker.io/library/nginx", "index.docker.io/library/nginx"])
def test_docker_hub_credentials_serve_docker_hub_images_by_the_default_registry_rule(image: str) -> None:
    assert lookup(DOCKER_HUB, image) == [("foo", "bar")]


@pytest.mark.parametrize("key", ["index.docker.io", "index.docker.io/v2/", "https://index.docker.io",
                                 "http://index.docker.io/v1/"])
def test_every_spelling_that_normalises_to_index_docker_io_is_the_default_registry(key: str) -> None:
    assert lookup({key: ("foo", "bar")}, "library/nginx") == [("foo", "bar")]


def test_docker_io_as_a_key_is_not_the_default_registry() -> None:
    assert lookup({"docker.io": ("foo", "bar")}, "library/nginx") == []
    assert lookup({"docker.io": ("foo", "bar")}, "docker.io/library/nginx") == [("foo", "bar")]


def test_the_default_registry_rule_applies_only_when_nothing_else_matched() -> None:
    auth = {"index.docker.io": ("hub", "1"), "*.io": ("any", "2")}
    assert lookup(auth, "docker.io/library/nginx") == [("any", "2")]


@pytest.mark.parametrize("image, expected", [
    ("foo/bar", True), ("docker.io/foo/bar", True), ("index.docker.io/foo/bar", True), ("foo", True),
    ("", False), ("registry.tld/foo/bar", False), ("registry:5000/foo/bar", False),
    ("myhostdocker.io/foo/bar", False),
])
def test_is_default_registry_match_agrees_with_keyring_test_go(image: str, expected: bool) -> None:
    assert is_default_registry_match(image) is expected


ADA = ("ada", "smash")
GRACE = ("grace", "squash")


@pytest.mark.parametrize("image, expected", [
    ("bar.example.com", [ADA]),
    ("bar.example.com/pong", [GRACE, ADA]),
    ("bar.example.com/ping", [ADA]),
    ("bar.example.com/pongz", [GRACE, ADA]),
    ("bar.example.com/pong/pang", [GRACE, ADA]),
    ("example.com", []),
    ("foo.example.com", []),
])
def test_lookup_agrees_with_keyring_test_go_docker_keyring_lookup(image: str, expected: list[tuple[str, str]]) -> None:
    auth = {"bar.example.com/pong": GRACE, "bar.example.com": ADA}
    assert lookup(auth, image) == expected


@pytest.mark.parametrize("image", ["quay.io", "quay.io/foo", "quay.io/foo/bar"])
def test_lookup_agrees_with_keyring_test_go_issue_3797(image: str) -> None:
    assert lookup({"https://quay.io/v1/": ("rex", "tiny arms")}, image) == [("rex", "tiny arms")]


def test_every_matching_key_contributes_in_reverse_sorted_order() -> None:
    auth = {"*.registry.io": ("wild", "1"), "a.registry.io": ("exact", "2"), "a.registry.io/team": ("team", "3"),
            "b.registry.io": ("other", "4")}
    assert lookup(auth, "a.registry.io/team/app") == [("team", "3"), ("exact", "2"), ("wild", "1")]


def test_keys_that_normalise_alike_pool_their_credentials_under_one_key() -> None:
    auth = {"reg.io": ("a", "1"), "https://reg.io/": ("b", "2"), "reg.io/v2/": ("c", "3")}
    assert sorted(lookup(auth, "reg.io/x")) == [("a", "1"), ("b", "2"), ("c", "3")]


def test_a_key_url_parse_refuses_is_ignored() -> None:
    assert lookup({"reg.io/%zz": ("a", "1"), "reg.io": ("b", "2")}, "reg.io/x") == [("b", "2")]
