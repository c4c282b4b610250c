"""The cold ECR token fetch without botocore, for the identities CI jobs use, with botocore's exact answer.

Importing botocore and creating a client cost ~290 ms of a ~300 ms cold `get` (FLEET.md §8.1); signing one
request and sending it costs a few. So a fetch goes this way only where botocore would pick the same
credentials, endpoint, CA bundle and proxy, and send the same request; `plan` says which, or why not:

* no pod (the kubelet's per-pod identity), no route `profile` or `role_arn`, no AWS_PROFILE or
  AWS_DEFAULT_PROFILE (set at all): the profile machinery is botocore's;
* none of BOTOCORE_VARS is set: each changes an endpoint, the retries, the signing or the credentials in a way
  this module does not repeat;
* the shared config and credentials files are absent, or parse as plain INI whose `default` profile holds only
  NEUTRAL_KEYS: botocore's chain (credentials.py `create_credential_resolver`: env, assume-role profile, web
  identity [env, then profile], SSO, credentials file, login, credential_process, config file keys, boto2
  files, container, instance metadata) reads that profile before web identity and can change endpoints
  (`endpoint_url`, `services`, `use_fips_endpoint`, `ca_bundle`, `sts_regional_endpoints`...), so any other
  key sends the fetch to botocore, as does a file botocore might fail to parse;
* then the first source of botocore's chain must be one of: the access keys in the environment
  (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY non-empty; the session token from AWS_SECURITY_TOKEN, else
  AWS_SESSION_TOKEN, as botocore's EnvProvider), or web identity from the environment (AWS_WEB_IDENTITY_TOKEN_FILE
  and AWS_ROLE_ARN non-empty; AWS_ROLE_SESSION_NAME, else `botocore-session-<epoch>`): AssumeRoleWithWebIdentity,
  unsigned, at the regional STS endpoint of the ECR region, with botocore's default (legacy) retries and 60 s
  timeouts, as the provider's own STS client; or the container endpoint (ECS, CodeBuild, EKS Pod Identity:
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI), as botocore's ContainerProvider asks it, when nothing
  botocore reads before it is present (AWS_CREDENTIAL_FILE, boto2's files: helper/backends/aws_container.py).
  Instance metadata comes last and stays with botocore;
* the endpoint is one helper/backends/aws_endpoints.py knows, the CA bundle one this module loads and the proxy
  (if any) a plain http:// one (helper/backends/aws_http.py).
"""

from __future__ import annotations

import os

from .. import fastjson
from ..fsutil import read_signed
from .aws_identity import shared_files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..pod import PodIdentity

# Present at all, each sends the fetch to botocore.
BOTOCORE_VARS = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE",  # the profile machinery
    "AWS_CREDENTIAL_EXPIRATION",  # refreshable environment credentials
    "AWS_DATA_PATH", "BOTOCORE_EXPERIMENTAL__PLUGINS",  # other models, endpoint rules or plugins
    "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_STS_REGIONAL_ENDPOINTS",  # STS / ECR Public endpoints
    "AWS_DEFAULTS_MODE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",  # the STS client's retries and timeouts
    "AWS_SIGV4A_SIGNING_REGION_SET", "AWS_AUTH_SCHEME_PREFERENCE",  # the signing
    "BOTO_EXPERIMENTAL__ADD_PROXY_HOST_HEADER",  # the proxy request
)
NEUTRAL_KEYS = frozenset({"region", "output"})  # the ECR region is always given; output is the CLI's
DEFAULT_SECTIONS = ({"default", "profile default"}, {"default"})  # in the config file, in the credentials file
STS_TIMEOUTS = (60.0, 60.0)  # botocore's defaults: the web identity provider's STS client sets none
STS_ATTEMPTS = 5  # botocore's legacy mode (_retry.json max_attempts)
TARGETS = {"ecr": "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
           "ecr-public": "SpencerFrontendService.GetAuthorizationToken"}


# botocore validates the minimum lengths of AssumeRoleWithWebIdentity's parameters before it sends anything
# (sts service-2.json `min`); a shorter value is left to botocore, which words the failure itself
MIN_ROLE_ARN, MIN_SESSION_NAME, MIN_WEB_IDENTITY_TOKEN = 20, 2, 4


class LeaveToBotocore(Exception):
    """Raised before any request when botocore, not this module, must answer (its own validation errors)."""


class Plan:
    """How a fast fetch will ask: the credential source and its inputs, the endpoints, CA bundles and proxies
    (`ca` and `proxy`: for the service's endpoint, then STS's; "" where there is none)."""

    __slots__ = ("ca", "keys", "proxy", "region", "role_arn", "service", "session_name", "source", "sts",
                 "token_file", "url")

    def __init__(self, *, source: str, service: str, region: str, url: str, sts: str, ca: tuple[str, str],
                 proxy: tuple[str, str], keys: tuple[str, str, str | None] | None, role_arn: str | None,
                 token_file: str | None, session_name: str | None) -> None:
        self.source = source
        self.service = service
        self.region = region
        self.url = url
        self.sts = sts
        self.ca = ca
        self.proxy = proxy
        self.keys = keys  # (access key id, secret, session token): never logged, never in a repr
        self.role_arn = role_arn
        self.token_file = token_file
        self.session_name = session_name


def _plain_default(data: bytes, sections: set[str]) -> bool:
    """Whether an INI file is plain (configparser, as botocore reads it, would parse it the same way) and its
    default profile holds only NEUTRAL_KEYS."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    seen: set[str] = set()
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if raw[0] in " \t":  # a continuation line: harmless only outside the default profile
            if current is None or current in sections:
                return False
            continue
        if line.startswith("["):
            if not line.endswith("]") or line[1:-1] in seen:
                return False  # configparser: a parse error or a duplicate section
            current = line[1:-1]
            seen.add(current)
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if current is None or cut <= 0:
            return False  # configparser: a missing section header, a line that is no option
        if current in sections and line[:cut].strip().lower() not in NEUTRAL_KEYS:
            return False
    return True


def credential_source(params: dict[str, object], pod: PodIdentity | None) -> str:
    """"env", "web-identity" or "container" when botocore's chain would take its credentials from there and
    nothing else here differs from botocore; otherwise why botocore must fetch (a reason, never a secret)."""
    env = os.environ
    if pod is not None:
        return "botocore: a pod's own identity"
    if params.get("profile") or params.get("role_arn"):
        return "botocore: the route names a profile or role"
    named = [var for var in BOTOCORE_VARS if var in env]
    if named and not (named == ["AWS_STS_REGIONAL_ENDPOINTS"] and env[named[0]] == "regional"):
        return f"botocore: {named[0]} is set"
    for path, sections in zip(shared_files(), DEFAULT_SECTIONS, strict=True):
        data, sig = read_signed(path)
        if (data is None and sig != "-") or (data is not None and not _plain_default(data, sections)):
            return f"botocore: {path} sets more than {', '.join(sorted(NEUTRAL_KEYS))} for the default profile"
    if env.get("AWS_ACCESS_KEY_ID"):
        return "env" if env.get("AWS_SECRET_ACCESS_KEY") else "botocore: AWS_SECRET_ACCESS_KEY is missing"
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        if not env.get("AWS_ROLE_ARN"):
            return "botocore: AWS_ROLE_ARN is missing"
        if len(env["AWS_ROLE_ARN"]) < MIN_ROLE_ARN or 0 < len(env.get("AWS_ROLE_SESSION_NAME", "")) < MIN_SESSION_NAME:
            return "botocore: AWS_ROLE_ARN or AWS_ROLE_SESSION_NAME is too short (botocore's validation error)"
        return "web-identity"
    if "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" in env or "AWS_CONTAINER_CREDENTIALS_FULL_URI" in env:
        from .aws_container import refusal  # botocore's ContainerProvider: set at all, even empty

        return refusal() or "container"
    return "botocore: no access keys, web identity or container credentials in the environment"


def eligible(params: dict[str, object], pod: PodIdentity | None) -> bool:
    """Whether the credentials botocore would use are ones this module reads itself."""
    return not credential_source(params, pod).startswith("botocore")


def plan(params: dict[str, object], pod: PodIdentity | None, service: str, region: str, fips: bool = False,
         dualstack: bool = False) -> Plan | str:
    """How to fetch without botocore, or why botocore must (a reason for the debug log)."""
    from .aws_endpoints import url_for
    from .aws_http import cafile, proxy_for

    source = credential_source(params, pod)
    if source.startswith("botocore"):
        return source
    url = url_for(service, region, fips, dualstack)
    sts = url_for("sts", region) if source == "web-identity" else ""
    if url is None or sts is None:
        return f"botocore: an endpoint for {service} in {region} this module does not resolve"
    ca: list[str] = []
    proxy: list[str] = []
    for each in (url, sts):
        bundle = cafile() if each.startswith("https:") else ""
        found = proxy_for(each) if each else ""
        if bundle is None or found is None:
            return "botocore: a CA bundle or proxy this module does not handle"
        ca.append(bundle)
        proxy.append(found)
    env = os.environ
    keys = None
    if source == "env":
        keys = (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                env.get("AWS_SECURITY_TOKEN") or env.get("AWS_SESSION_TOKEN") or None)
    return Plan(source=source, service=service, region=region, url=url, sts=sts, ca=(ca[0], ca[1]),
                proxy=(proxy[0], proxy[1]), keys=keys,
                role_arn=env.get("AWS_ROLE_ARN"), token_file=env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
                session_name=env.get("AWS_ROLE_SESSION_NAME"))


def _unescape(text: str) -> str:
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'")
            .replace("&#xD;", "\r").replace("&#xA;", "\n").replace("&amp;", "&"))


def _tag(text: str, name: str) -> str | None:
    start = text.find(f"<{name}>")
    end = text.find(f"</{name}>", start)
    return None if start < 0 or end < 0 else _unescape(text[start + len(name) + 2:end].strip())


def xml_error(status: int, data: bytes) -> tuple[str, str]:
    """botocore's (code, message) for a query protocol (STS) error answer."""
    from .aws_http import json_error

    if status >= 500 and (not data.strip() or data.strip().startswith(b"<html>")):
        return json_error(status, b"")
    text = data.decode("utf-8", "replace")
    return _tag(text, "Code") or "", _tag(text, "Message") or ""


def _web_identity(plan: Plan) -> tuple[str, str, str | None]:
    """AssumeRoleWithWebIdentity as botocore's provider sends it: the keys it answers."""
    import time

    from .aws_http import post
    from .http1 import percent_encode

    with open(str(plan.token_file)) as handle:  # botocore's FileWebIdentityTokenLoader: text, as read
        token = handle.read()
    if len(token) < MIN_WEB_IDENTITY_TOKEN:
        raise LeaveToBotocore("the web identity token is too short (botocore's validation error)")
    session = plan.session_name or f"botocore-session-{int(time.time())}"
    form = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": str(plan.role_arn),
            "RoleSessionName": str(session), "WebIdentityToken": token}
    body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in form.items()).encode()
    url = str(plan.sts)
    headers = {"Host": url.split("://", 1)[1], "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
               "Content-Length": str(len(body))}
    data = post(url, headers, body, service="sts", operation="AssumeRoleWithWebIdentity", timeouts=STS_TIMEOUTS,
                attempts=STS_ATTEMPTS, legacy=True, parse_error=xml_error, ca=plan.ca[1],
                proxy=plan.proxy[1])
    creds = data.decode("utf-8")
    creds = creds[creds.find("<Credentials>"):]
    key, secret = _tag(creds, "AccessKeyId"), _tag(creds, "SecretAccessKey")
    if not key or not secret:
        raise ValueError("the STS answer holds no credentials")
    return key, secret, _tag(creds, "SessionToken")


def _expiry(value: object) -> float:
    """The epoch botocore's parsed `expiresAt` gives (a datetime: microsecond precision)."""
    from datetime import datetime, timezone

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc).timestamp()
    return datetime.fromisoformat(str(value)).timestamp()


def request_body(account: str | None) -> bytes:
    """GetAuthorizationToken's JSON body as botocore serializes it (`json.dumps`), without importing json."""
    return (f'{{"registryIds": [{fastjson.quote(account)}]}}' if account else "{}").encode()


def get_authorization_token(plan: Plan, account: str | None) -> tuple[str, float]:
    """GetAuthorizationToken of ECR (for `account`) or ECR Public: the authorization token and its expiry."""
    import time

    from . import aws_client
    from .aws_http import json_error, post
    from .aws_sigv4 import sign

    if plan.source == "container":
        from .aws_container import credentials

        keys: tuple[str, str, str | None] | None = credentials()
    else:
        keys = plan.keys if plan.source == "env" else _web_identity(plan)
    assert keys is not None
    access, secret, token = keys
    url = str(plan.url)
    scheme, _, host = url.partition("://")
    host = host[:-4] if host.endswith(":443") and scheme == "https" else host
    host = host[:-3] if host.endswith(":80") and scheme == "http" else host
    body = request_body(account)
    headers = {"Host": host, "X-Amz-Target": TARGETS[str(plan.service)],
               "Content-Type": "application/x-amz-json-1.1"}
    region, service = ("us-east-1", "ecr-public") if plan.service == "ecr-public" else (str(plan.region), "ecr")

    def signed(unsigned: dict[str, str]) -> dict[str, str]:
        out = sign(unsigned, body, region=region, service=service, access_key=access, secret_key=secret,
                   token=token, epoch=time.time())
        out["Content-Length"] = str(len(body))
        out["User-Agent"] = "docker-credential-switchboard"
        return out

    data = post(url, headers, body, service=str(plan.service), operation="GetAuthorizationToken",
                timeouts=(aws_client.CONNECT_TIMEOUT_S, aws_client.READ_TIMEOUT_S), attempts=aws_client.MAX_ATTEMPTS,
                legacy=False, parse_error=json_error, ca=plan.ca[0], proxy=plan.proxy[0],
                sign=signed)
    try:
        answer: Any = fastjson.loads(data.decode("utf-8")) if data else {}  # indexed as botocore's parsed dict
    except ValueError:
        answer = {}
    found = answer["authorizationData"]
    found = found if plan.service == "ecr-public" else found[0]
    return str(found["authorizationToken"]), _expiry(found["expiresAt"])
