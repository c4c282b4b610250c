"""Amazon ECR and ECR Public: `GetAuthorizationToken` through botocore, one token per registry identity.

Region, FIPS and dual-stack come from the host (`<account>.dkr.ecr[-fips].<region>.<partition suffix>`,
`<account>.dkr-ecr[-fips].<region>.on.aws`); a route may name a `registry` for an alias host, a
`profile`, a `role_arn` (with `external_id`, `session_name`) and a `region`. Everything else is the
standard AWS chain as the AWS CLI reads it (environment including AWS_ENDPOINT_URL and AWS_CA_BUNDLE,
shared config and SSO, web identity, container and instance roles), with short timeouts.
The client, its identity and timeouts are every AWS backend's (helper/backends/aws_client.py); botocore
is imported only there, only when a token must be fetched, and not even then for the identities CI jobs use
(keys or web identity in the environment): helper/backends/aws_fast.py fetches those with the standard
library, where it gives botocore's exact answer, and says which way a fetch went in the debug log.
"""

from __future__ import annotations

import binascii
import os

from .. import log
from ..hosts import RegistryKey, parse
from ..tokens import Token, now
from .aws_client import AwsBackend, _client
from .base import Rows

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..pod import PodIdentity

USERNAME = "AWS"


class EcrHost:
    """What an ECR registry host says about itself."""

    __slots__ = ("account", "dualstack", "fips", "region")

    def __init__(self, account: str, region: str, fips: bool, dualstack: bool) -> None:
        self.account = account
        self.region = region
        self.fips = fips
        self.dualstack = dualstack


def parse_ecr_host(host: str) -> EcrHost:
    """Split `123456789012.dkr.ecr.eu-west-1.amazonaws.com` and its FIPS and dual-stack forms."""
    labels = host.split(".")
    account = labels[0]
    if len(account) != 12 or not account.isdigit():
        raise ValueError(f"{host} is not an ECR registry host (the first label must be a 12-digit account)")
    if labels[1:3] in (["dkr", "ecr"], ["dkr", "ecr-fips"]):
        fips, dualstack, region = labels[2] == "ecr-fips", False, labels[3]
    elif labels[1] in ("dkr-ecr", "dkr-ecr-fips"):
        fips, dualstack, region = labels[1] == "dkr-ecr-fips", True, labels[2]
    else:
        raise ValueError(f"{host} is not an ECR registry host")
    return EcrHost(account, region, fips, dualstack)


def _decode(authorization_token: str) -> tuple[str, str]:
    user, sep, password = binascii.a2b_base64(authorization_token.encode("ascii")).decode("utf-8").partition(":")
    if not sep:
        raise ValueError("the authorization token is not base64 of user:password")
    return user, password


def _fast(kind: str, plan: object, account: str | None) -> Token | None:
    """The token through helper/backends/aws_fast.py when its `plan` is one (a Plan), else None: botocore's turn,
    and the log says why (the plan is then the reason)."""
    from . import aws_fast

    if isinstance(plan, aws_fast.Plan):
        log.log(f"{kind}: fast path ({plan.source}, {plan.url})")
        started = now()
        try:
            token, expires = aws_fast.get_authorization_token(plan, account)
        except aws_fast.LeaveToBotocore as exc:
            plan = f"botocore: {exc}"
        else:
            user, password = _decode(token)
            return Token(user or USERNAME, password, expires, started)
    log.log(f"{kind}: {plan}")
    return None


class _AwsBackend(AwsBackend):
    """What ECR and ECR Public add to every AWS backend: amazon-ecr-credential-helper's cache switch."""

    def caching(self) -> bool:
        return not os.environ.get("AWS_ECR_DISABLE_CACHE")  # amazon-ecr-credential-helper's switch, any value


class EcrBackend(_AwsBackend):
    """Private ECR registries."""

    kind = "ecr"

    def _target(self, key: RegistryKey) -> tuple[str, EcrHost]:
        alias = self.spec.params.get("registry")
        host = parse(str(alias)).host if alias else key.host
        if host is None:
            raise ValueError(f"registry {alias!r} is not a host")
        return host, parse_ecr_host(host)

    def _region(self, target: EcrHost) -> str:
        return str(self.spec.params.get("region") or target.region)

    def target(self, key: RegistryKey) -> str:
        host, target = self._target(key)
        return f"{host}|region={self._region(target)}"

    def fetch(self, key: RegistryKey) -> Token:
        return self._fetch(key, None)

    def fetch_for_pod(self, key: RegistryKey, pod: PodIdentity) -> Token:
        return self._fetch(key, pod)

    def _fetch(self, key: RegistryKey, pod: PodIdentity | None) -> Token:
        _, target = self._target(key)
        from . import aws_fast

        plan = aws_fast.plan(self.spec.params, pod, "ecr", self._region(target), target.fips, target.dualstack)
        fast = _fast(self.kind, plan, target.account)
        if fast is not None:
            return fast
        client = _client(self.spec.params, "ecr", self._region(target), pod,
                         use_fips_endpoint=target.fips, use_dualstack_endpoint=target.dualstack)
        started = now()
        answer = client.get_authorization_token(registryIds=[target.account])  # type: ignore[attr-defined]
        data = answer["authorizationData"][0]
        user, password = _decode(data["authorizationToken"])
        return Token(user or USERNAME, password, data["expiresAt"].timestamp(), started)

    def identity(self, key: RegistryKey) -> Rows:
        try:
            target = self._target(key)[1]
        except ValueError as exc:
            return [("registry", str(exc))]
        return [("registry", f"account {target.account}, region {self._region(target)}"
                 + (", FIPS" if target.fips else "") + (", dual-stack" if target.dualstack else "")),
                *self._identity_rows()]


class EcrPublicBackend(_AwsBackend):
    """ECR Public (`public.ecr.aws`): the `ecr-public` API, always in us-east-1."""

    kind = "ecr-public"

    def target(self, key: RegistryKey) -> str:
        return ""  # one registry, one region: the route and the identity say it all

    def fetch(self, key: RegistryKey) -> Token:
        return self._fetch(None)

    def fetch_for_pod(self, key: RegistryKey, pod: PodIdentity) -> Token:
        return self._fetch(pod)

    def _fetch(self, pod: PodIdentity | None) -> Token:
        from . import aws_fast

        fast = _fast(self.kind, aws_fast.plan(self.spec.params, pod, "ecr-public", "us-east-1"), None)
        if fast is not None:
            return fast
        client = _client(self.spec.params, "ecr-public", "us-east-1", pod)
        started = now()
        data = client.get_authorization_token()["authorizationData"]  # type: ignore[attr-defined]
        user, password = _decode(data["authorizationToken"])
        return Token(user or USERNAME, password, data["expiresAt"].timestamp(), started)

    def identity(self, key: RegistryKey) -> Rows:
        return [*self._identity_rows(), ("api", "ecr-public, us-east-1")]
