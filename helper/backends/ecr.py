"""Amazon ECR and ECR Public: `GetAuthorizationToken` through botocore, one token per registry identity.

Region, FIPS and dual-stack come from the host (`<account>.dkr.ecr[-fips].<region>.<partition suffix>`,
`<account>.dkr-ecr[-fips].<region>.on.aws`); a route may name a `registry` for an alias host, a
`profile`, a `role_arn` (with `external_id`, `session_name`) and a `region`. Everything else is the
standard AWS chain as the AWS CLI reads it (environment including AWS_ENDPOINT_URL and AWS_CA_BUNDLE,
shared config and SSO, web identity, container and instance roles), with short timeouts.
botocore is imported only here, only when a token must be fetched.
"""

from __future__ import annotations

import binascii
import os

from ..hosts import RegistryKey, parse
from ..tokens import Token, now
from .aws_identity import aws_identity, describe
from .base import Rows
from .token_base import Identity, TokenBackend

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..pod import PodIdentity

USERNAME = "AWS"
CONNECT_TIMEOUT_S = 3  # an unreachable endpoint must not stall a pull for minutes (ECR helper #137)
READ_TIMEOUT_S = 10
MAX_ATTEMPTS = 2  # one retry: throttling happens, but every retry is paid by the person waiting


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


def _session(profile: str | None) -> object:
    import botocore.session

    session = botocore.session.Session(profile=profile)
    # Bound the instance-metadata probe for machines that are not on EC2 (no minute-long hangs).
    if not os.environ.get("AWS_METADATA_SERVICE_TIMEOUT"):
        session.set_config_variable("metadata_service_timeout", 1)
    if not os.environ.get("AWS_METADATA_SERVICE_NUM_ATTEMPTS"):
        session.set_config_variable("metadata_service_num_attempts", 1)
    return session


def _config(**extra: object) -> object:
    from botocore.config import Config

    return Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                  retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"}, **extra)


def _client(params: dict[str, object], service: str, region: str, pod: PodIdentity | None = None,
            **config: object) -> object:
    """A client of `service`: as the route's role or profile, as the default chain, or, with `pod`, as the role
    the pod's service account names, assumed with its token (AssumeRoleWithWebIdentity, unsigned: the node's
    own credentials take no part)."""
    session = _session(str(params["profile"]) if "profile" in params and pod is None else None)
    role_arn = pod_role(params, pod) if pod is not None else params.get("role_arn")
    if role_arn:
        sts = session.create_client("sts", region_name=region, config=_config())  # type: ignore[attr-defined]
        kwargs = {"RoleArn": str(role_arn), "RoleSessionName": str(params.get("session_name") or
                                                                    "docker-credential-switchboard")}
        if pod is not None:
            kwargs["RoleSessionName"] = str(params.get("session_name") or pod.session_name())
            creds = sts.assume_role_with_web_identity(WebIdentityToken=pod.token, **kwargs)["Credentials"]
        else:
            if params.get("external_id"):
                kwargs["ExternalId"] = str(params["external_id"])
            creds = sts.assume_role(**kwargs)["Credentials"]
        return session.create_client(  # type: ignore[attr-defined]
            service, region_name=region, config=_config(**config), aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    return session.create_client(service, region_name=region, config=_config(**config))  # type: ignore[attr-defined]


def pod_role(params: dict[str, object], pod: PodIdentity) -> str:
    """The role a pod's service account pulls as: its `eks.amazonaws.com/ecr-role-arn` annotation (the AWS
    plugin's convention), else the route's `role_arn`; "" when neither names one."""
    from ..pod import AWS_ROLE

    return pod.annotation(AWS_ROLE) or str(params.get("role_arn") or "")


def _decode(authorization_token: str) -> tuple[str, str]:
    user, sep, password = binascii.a2b_base64(authorization_token.encode("ascii")).decode("utf-8").partition(":")
    if not sep:
        raise ValueError("the authorization token is not base64 of user:password")
    return user, password


class _AwsBackend(TokenBackend):
    """What ECR and ECR Public share: who asks (helper/backends/aws_identity.py), the cache switch, the deadline."""

    def who(self, key: RegistryKey) -> Identity:
        return aws_identity(self.spec.params)

    def _identity_rows(self) -> Rows:
        return [("aws identity", aws_identity(self.spec.params).name.replace("|", ", ")),
                ("aws inputs", describe(self.spec.params))]

    def pod_plan(self, key: RegistryKey) -> str | None:
        role = pod_role(self.spec.params, self.pod) if self.pod is not None else ""
        return f"aws-role={role}|session={self.spec.params.get('session_name') or ''}" if role else None

    def caching(self) -> bool:
        return not os.environ.get("AWS_ECR_DISABLE_CACHE")  # amazon-ecr-credential-helper's switch, any value

    def deadline(self) -> float:
        # every attempt may use its whole connect and read timeouts, plus botocore's short back-off between
        return MAX_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + 4.0


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
        client = _client(self.spec.params, "ecr-public", "us-east-1", pod)
        started = now()
        data = client.get_authorization_token()["authorizationData"]  # type: ignore[attr-defined]
        user, password = _decode(data["authorizationToken"])
        return Token(user or USERNAME, password, data["expiresAt"].timestamp(), started)

    def identity(self, key: RegistryKey) -> Rows:
        return [*self._identity_rows(), ("api", "ecr-public, us-east-1")]
