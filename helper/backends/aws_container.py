"""Container credentials (ECS tasks, CodeBuild, EKS Pod Identity) as botocore's ContainerProvider gets them.

botocore/credentials.py (`ContainerProvider`, `ContainerMetadataFetcher`), repeated here for aws_fast:
* the URL: `http://169.254.170.2` + AWS_CONTAINER_CREDENTIALS_RELATIVE_URI when that is set at all (it wins),
  else AWS_CONTAINER_CREDENTIALS_FULL_URI, over http only to a loopback address or 169.254.170.2,
  169.254.170.23 (EKS Pod Identity), fd00:ec2::23 or localhost;
* the Authorization header: the text of AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, read on each fetch, else
  AWS_CONTAINER_AUTHORIZATION_TOKEN; a value with CR or LF is botocore's ValueError;
* one GET with `Accept: application/json`, 2 s to connect and 2 s per read, never through a proxy (the
  fetcher's own URLLib3Session has none), three attempts with a 1 s sleep after each failure (a connection
  error, a non-200, a body that is not JSON), then CredentialRetrievalError worded as botocore's;
* the answer's AccessKeyId, SecretAccessKey, Token and Expiration (a missing one: botocore's KeyError); keys
  that expire within botocore's 15 min advisory window, or an Expiration that is not ISO 8601 with a zone,
  go to botocore (LeaveToBotocore), which then asks again and refreshes or fails as it does.

`refusal` names what this module leaves to botocore, before any request: what comes before the container in
botocore's chain and is not checked by aws_fast already (AWS_CREDENTIAL_FILE, boto2's BOTO_CONFIG,
/etc/boto.cfg and ~/.boto), an https FULL_URI (botocore verifies it with its own bundle), a URL botocore
refuses (its own ValueError then says why) or one this module would not read the same way.
"""

from __future__ import annotations

import os

from .aws_http import BotocoreLike

RELATIVE_BASE = "http://169.254.170.2"  # ContainerMetadataFetcher.IP_ADDRESS
ALLOWED_HOSTS = frozenset({"169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost"})
TIMEOUT_S = 2.0  # ContainerMetadataFetcher.TIMEOUT_SECONDS: connect, and each read
ATTEMPTS = 3  # RETRY_ATTEMPTS
SLEEP_S = 1.0  # SLEEP_TIME, after every failed attempt
ADVISORY_REFRESH_S = 15 * 60  # RefreshableCredentials' advisory window: keys closer to expiry are fetched again
BEFORE_THE_CONTAINER = ("AWS_CREDENTIAL_FILE", "BOTO_CONFIG")  # OriginalEC2Provider, BotoProvider
BOTO2_FILES = ("/etc/boto.cfg", "~/.boto")  # BotoProvider.DEFAULT_CONFIG_FILENAMES


class MetadataRetrievalError(BotocoreLike):
    fmt = "Error retrieving metadata: {error_msg}"


class CredentialRetrievalError(BotocoreLike):
    fmt = "Error when retrieving credentials from {provider}: {error_msg}"


def container_url() -> str | None:
    """The URL botocore would ask, or None where botocore must (https, a host it refuses, an odd URL)."""
    from .oauth_http import TokenHttpError, printable_url, split_url

    env = os.environ
    if "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" in env:
        relative = env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]
        # urllib3 would percent-encode a space or non-ASCII; http1 sends a URL as it is: botocore's then
        return RELATIVE_BASE + relative if relative.startswith("/") and printable_url(relative) else None
    full = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
    try:
        scheme, host, _, _ = split_url(full, "AWS_CONTAINER_CREDENTIALS_FULL_URI")  # printable ASCII only
    except TokenHttpError:
        return None
    if scheme != "http":
        return None
    if host in ALLOWED_HOSTS:
        return full
    import ipaddress

    try:
        return full if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


def refusal() -> str | None:
    """Why botocore must fetch container credentials itself, or None when this module gives its answer."""
    env = os.environ
    for var in BEFORE_THE_CONTAINER:
        if var in env:
            return f"botocore: {var} is set (its provider comes before the container's)"
    for path in BOTO2_FILES:
        if os.path.lexists(os.path.expanduser(path)):
            return f"botocore: {path} exists (boto2's configuration comes before the container's)"
    if container_url() is None:
        return "botocore: a container credentials URL this module does not read (https, or a host botocore refuses)"
    return None


def _authorization() -> dict[str, str]:
    env = os.environ
    token: str | None = None
    if "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" in env:
        with open(env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]) as handle:  # text, as botocore reads it
            token = handle.read()
    elif "AWS_CONTAINER_AUTHORIZATION_TOKEN" in env:
        token = env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    if token is None:
        return {}
    if "\r" in token or "\n" in token:
        raise ValueError("Auth token value is not a legal header value")
    return {"Authorization": token}


def _once(url: str, headers: dict[str, str]) -> object:
    from .. import fastjson
    from . import http1
    from .aws_http import send
    from .oauth_http import split_url

    _, host, port, _ = split_url(url, "the container credentials URL")
    sent = {"Host": http1.authority(host, port or 80, 80), "Accept": "application/json", **headers,
            "User-Agent": "docker-credential-switchboard"}
    try:  # no CA (http only) and no proxy: the fetcher's own session has none
        status, body = send("GET", url, sent, None, (TIMEOUT_S, TIMEOUT_S), None, "", endpoint=url)
    except BotocoreLike as failure:  # botocore's RETRYABLE_HTTP_ERRORS, named as it names them
        raise MetadataRetrievalError(
            error_msg=f"Received error when attempting to retrieve container metadata: {failure}") from None
    text = body.decode("utf-8")
    if status != 200:
        raise MetadataRetrievalError(error_msg=f"Received non 200 response {status} from container metadata: {text}")
    try:
        return fastjson.loads(text)
    except ValueError:
        raise MetadataRetrievalError(
            error_msg="Unable to parse JSON returned from container metadata services") from None


def credentials() -> tuple[str, str, str]:
    """(access key id, secret, session token) from the container endpoint, as botocore's provider fetches them."""
    import time

    url = container_url()
    if url is None:  # refusal() said so before the plan was made
        raise ValueError("no container credentials URL this module reads")
    headers = _authorization()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            answer = _once(url, headers)
            break
        except MetadataRetrievalError as exc:
            time.sleep(SLEEP_S)
            if attempt == ATTEMPTS:
                raise CredentialRetrievalError(provider="container-role", error_msg=str(exc)) from None
    # indexed as botocore indexes the parsed answer: a missing field is its KeyError, a list its TypeError
    found = (answer["AccessKeyId"], answer["SecretAccessKey"], answer["Token"],  # type: ignore[index]
             answer["Expiration"])  # type: ignore[index]
    if _expires_in(found[3]) < ADVISORY_REFRESH_S:
        from .aws_fast import LeaveToBotocore

        # botocore refreshes such keys at once (a second request), and fails if they are still expired after it
        raise LeaveToBotocore("the container credentials expire within botocore's refresh window, or their "
                              "Expiration does not parse as an ISO 8601 time with a zone")
    return str(found[0]), str(found[1]), str(found[2])


def _expires_in(expiration: object) -> float:
    """Seconds until `expiration` (ISO 8601 with a zone, as the agents send it); -1 when it does not parse as
    such (botocore's dateutil may read more: it decides then)."""
    from datetime import datetime, timezone

    text = str(expiration)
    text = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text  # Python 3.10 reads no "Z"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return -1.0
    if when.tzinfo is None:
        return -1.0
    return (when - datetime.now(timezone.utc)).total_seconds()
