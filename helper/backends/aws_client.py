"""What every AWS backend shares: a botocore client as the route's identity, and who that identity is.

A client is made as the route's `profile`, its `role_arn` (with `external_id`, `session_name`), the standard
chain as the AWS CLI reads it (environment including AWS_ENDPOINT_URL and AWS_CA_BUNDLE, shared config and
SSO, web identity, container and instance roles), or, for the kubelet with a pod's service account, the
role that account names, assumed with its token. Every client has short timeouts and one retry.
botocore is imported only inside these functions, which only a fetch calls (never a cache hit).
"""

from __future__ import annotations

import os

from ..hosts import RegistryKey
from .aws_identity import aws_identity, describe
from .base import Rows
from .token_base import Identity, TokenBackend

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..pod import PodIdentity

CONNECT_TIMEOUT_S = 3  # an unreachable endpoint must not stall a pull for minutes (ECR helper #137)
READ_TIMEOUT_S = 10
MAX_ATTEMPTS = 2  # one retry: throttling happens, but every retry is paid by the person waiting


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


def _client(params: dict[str, object], service: str, region: str | None, pod: PodIdentity | None = None,
            **config: object) -> object:
    """A client of `service`: as the route's role or profile, as the default chain, or, with `pod`, as the role
    the pod's service account names, assumed with its token (AssumeRoleWithWebIdentity, unsigned: the node's
    own credentials take no part). `region` None: botocore's default (AWS_DEFAULT_REGION, the profile's)."""
    session = _session(str(params["profile"]) if "profile" in params and pod is None else None)
    role_arn = pod_role(params, pod) if pod is not None else params.get("role_arn")
    if role_arn:
        if pod is not None:  # unsigned: botocore would otherwise resolve the node's whole chain first
            from botocore import UNSIGNED

            sts = session.create_client(  # type: ignore[attr-defined]
                "sts", region_name=region, config=_config(signature_version=UNSIGNED))
        else:
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


class AwsBackend(TokenBackend):
    """What every AWS token backend shares: who asks (helper/backends/aws_identity.py), the pod's role, the
    deadline. Subclasses say what the token is for and fetch it with `_client`."""

    def who(self, key: RegistryKey) -> Identity:
        return aws_identity(self.spec.params)

    def _identity_rows(self) -> Rows:
        return [("aws identity", aws_identity(self.spec.params).name.replace("|", ", ")),
                ("aws inputs", describe(self.spec.params))]

    def pod_plan(self, key: RegistryKey) -> str | None:
        role = pod_role(self.spec.params, self.pod) if self.pod is not None else ""
        return f"aws-role={role}|session={self.spec.params.get('session_name') or ''}" if role else None

    def deadline(self) -> float:
        # every attempt may use its whole connect and read timeouts, plus botocore's short back-off between
        return MAX_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + 4.0
