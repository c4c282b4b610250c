"""The launcher's environment rules: which variables a recorded `get` answer depends on, and why the rest do not.

The standalone build's launcher (packaging/launcher/launcher.c, helper/fastpath.py) serves a recorded token
answer only under the same fingerprint, a hash over the variables `fingerprinted` accepts (the value of a
`secret_name` one replaced by "<set>": a hash of a passphrase would be an offline guessing oracle). The C code
holds its own copy of these tables, for speed; tests/test_env_rules.py parses launcher.c and fails when the two
differ. The same test scans helper/ for every environment read: each variable must be fingerprinted, or named in
IRRELEVANT with the reason it cannot change a recorded answer; each read of a name that is not a constant must be
declared in DYNAMIC. Only token answers are recorded (ecr, ecr-public, gcp, acr, exec, aws-secret routes), never a
static secret nor a not-found, so a variable that only a static backend reads is irrelevant.

Nothing on a `get` imports this module (the launcher holds the rules at run time): constants and two functions.
"""

from __future__ import annotations

# RECORD_VAR: the launcher sets it after fingerprinting, to name the record the helper may write; never an
# input. Spelt once, in the package's __init__, which every call has loaded already (cli.run pops it).
from . import FAST_RECORD_VAR as RECORD_VAR

__all__ = ["DYNAMIC", "FINGERPRINTED_NAMES", "FINGERPRINTED_PREFIXES", "IRRELEVANT", "NOT_SECRET_ENDING", "RECORD_VAR",
           "SECRET_ENDINGS", "SECRET_MARKS", "fingerprinted", "secret_name"]

FINGERPRINTED_PREFIXES = (
    "SWITCHBOARD_", "AWS_", "GOOGLE_", "GCE_", "CLOUDSDK_", "AZURE_", "IDENTITY_", "IMDS_", "MSI_",
)
# BOTO_CONFIG: boto2's configuration file, which botocore's chain reads before the container endpoint
FINGERPRINTED_NAMES = ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_DIRS", "BOTO_CONFIG")
# A name with one of these counts by presence, never by value.
SECRET_MARKS = ("SECRET", "PASSWORD", "PASSPHRASE", "TOKEN", "HEADER", "CONNECTION_STRING")
SECRET_ENDINGS = ("_KEY", "_PAT")
# Paths are not secrets, and answers depend on their values (AZURE_FEDERATED_TOKEN_FILE); wins over the above.
NOT_SECRET_ENDING = "_FILE"  # noqa: S105 - a name ending, not a password

# Variables the package reads that cannot change a recorded (token) answer: name -> reason.
# A key ending in "*" is a prefix.
IRRELEVANT: dict[str, str] = {
    RECORD_VAR: "the launcher's own: set after the fingerprint, it names the record to write",
    "DBUS_SESSION_BUS_ADDRESS": "whether the keychain (the static store) is reachable; static secrets are never "
                                "recorded",
    "XDG_RUNTIME_DIR": "where the keychain's session bus is; static secrets are never recorded",
    "PYTHON_KEYRING_BACKEND": "which keychain holds static secrets; static secrets are never recorded",
    "PATH": "shutil.which finds a delegated helper (a static backend, never recorded); an exec command's own "
            "lookup is its inherited environment, see DYNAMIC procs.run_child",
    "APPDATA": "Windows only (config folder, gcloud's folder): there is no launcher on Windows",
    "LOCALAPPDATA": "Windows only (data and cache folders): there is no launcher on Windows",
    "PROGRAMDATA": "Windows only (Azure Arc's key folder): there is no launcher on Windows",
    "CI_REGISTRY": "names the host of the built-in GitLab env preset, which takes only hosts no routes-file, "
                   "system or cloud built-in route claims: it can move a host from the static store to the env "
                   "backend, both static, never recorded; never to or from a token route",
    "DOCKER_CONFIG": "where Docker's config.json is, for the configure and import commands only: never read by a get",
    "REGISTRY_AUTH_FILE": "Podman's auth file, for the import command only: never read by a get",
    "BOTOCORE_EXPERIMENTAL__PLUGINS": "read by backends/aws_fast.py only to leave a fetch to botocore (which reads "
                                      "it too): it decides which code asks AWS for the identity's token, not whose "
                                      "token is recorded",
    "BOTO_EXPERIMENTAL__ADD_PROXY_HOST_HEADER": "a header sent to an HTTP proxy (botocore's; backends/aws_fast.py "
                                                "leaves a fetch to botocore while it is set): how a token request "
                                                "travels, not whose token is recorded",
    "REQUESTS_CA_BUNDLE": "the CA bundle botocore and backends/aws_http.py verify an AWS endpoint with when "
                          "AWS_CA_BUNDLE is unset, and google-auth and backends/cabundle.py a Google one: which "
                          "endpoint is trusted to answer, not whose token it answers (AWS_ENDPOINT_URL, which picks "
                          "the endpoint itself, is not identity either)",
    "CURL_CA_BUNDLE": "the CA bundle requests (so google-auth) and backends/cabundle.py verify a Google endpoint "
                      "with when REQUESTS_CA_BUNDLE is unset: which endpoint is trusted, not whose token it is",
    "SYSTEMDRIVE": "Windows only (gcloud's folder without APPDATA): there is no launcher on Windows",
}

# Reads of a variable whose name is not a constant: "module.function" -> the names it can read (each then
# classified like any other read) or the reason none of them matters.
DYNAMIC: dict[str, tuple[str, ...] | str] = {
    "paths._folder": ("SWITCHBOARD_DATA_DIR", "SWITCHBOARD_CACHE_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
                      "XDG_CACHE_HOME", "APPDATA", "LOCALAPPDATA"),
    "backends.env._first": "the route's username_env and secret_env, or its preset's variables: the env backend "
                           "is static, never recorded",
    "backends.aws_identity._expand": "any variable a shared-file path names ($CI_PROJECT_DIR/aws.cfg): then "
                                     "aws_identity pins no file, so no answer is ever recorded",
    "backends.aws_endpoints.configured": ("AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_ECR_PUBLIC",
                                          "AWS_ENDPOINT_URL_STS"),
    "backends.aws_fast.credential_source": (  # aws_fast.BOTOCORE_VARS
        "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CREDENTIAL_EXPIRATION", "AWS_DATA_PATH",
        "BOTOCORE_EXPERIMENTAL__PLUGINS", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT",
        "AWS_STS_REGIONAL_ENDPOINTS", "AWS_DEFAULTS_MODE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
        "AWS_SIGV4A_SIGNING_REGION_SET", "AWS_AUTH_SCHEME_PREFERENCE", "BOTO_EXPERIMENTAL__ADD_PROXY_HOST_HEADER"),
    "backends.aws_http.proxy_for": "every *_proxy variable, through urllib.request.getproxies and proxy_bypass as "
                                   "botocore reads them: a proxy carries the same signed request to the same "
                                   "endpoint, so it changes how a token is fetched, never whose it is",
    "backends.oauth_http.proxy_may_apply": "every *_proxy variable, only to decide whether urllib (which then picks "
                                           "the proxy, as requests would) or http1 makes a token request: how a "
                                           "token is fetched, never whose it is",
    "procs.run_child": "the whole environment, passed on to a delegated helper (static, never recorded) or an "
                       "exec command, whose token is cached by route, host and argv (ExecBackend.who) and "
                       "served by Python from that cache whatever the environment; the record pins that cache "
                       "entry, so the launcher serves nothing Python would not",
}


def fingerprinted(name: str) -> bool:
    """Whether the launcher hashes this variable into its fingerprint (launcher.c fingerprint_env)."""
    if name == RECORD_VAR:
        return False
    return name in FINGERPRINTED_NAMES or name.startswith(FINGERPRINTED_PREFIXES)


def secret_name(name: str) -> bool:
    """Whether the launcher hashes only this variable's presence, not its value (launcher.c secret_name)."""
    if name.endswith(NOT_SECRET_ENDING):
        return False
    return name.endswith(SECRET_ENDINGS) or any(mark in name for mark in SECRET_MARKS)
