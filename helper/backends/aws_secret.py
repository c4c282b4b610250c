"""`aws-secret`: a fleet's registry credentials kept once in AWS Secrets Manager, fetched with the node's identity.

Route parameters: `secret_id` (a name or an ARN, another account's ARN too), `region`, `profile`, `role_arn`
(with `external_id`, `session_name`) and `ttl`. The secret's `SecretString` (AWSCURRENT) holds either

* ECS's `repositoryCredentials` form, `{"username": ..., "password": ...}`, read as aws/amazon-ecs-agent
  agent/asm/asm.go reads it: Go's encoding/json into a struct without tags, so keys match case-insensitively
  (the last matching key wins) and both values must be non-empty strings; or
* a whole `.dockerconfigjson` (`{"auths": {...}}`, what External Secrets and `kubectl create secret
  docker-registry` make): the entry for the requested host, matched as the `file` backend matches its
  `dockerconfigjson` (helper/backends/mounted.py `entry_for`, one reading of an entry in helper/authfiles.py).

A binary secret (`SecretBinary`) is refused, as ECS refuses it. Any failure (no such secret, access denied,
binary, not JSON, no entry for the host) is the protocol's not-found with a one-line reason in the log that
names the secret and never a byte of its value.

It is a token backend: an answer goes through the token cache for `ttl` seconds (default 15 min), keyed by
the AWS identity (the same rules as ECR: helper/backends/aws_identity.py), the secret, its region and the
host, so 64 parallel `get`s make one GetSecretValue call and a rotated secret is served within the TTL (the
advisory window opens at half of it: one process refreshes while the others serve the current value).
Region: the route's `region`, else the ARN's, else AWS_REGION, AWS_DEFAULT_REGION (the AWS SDKs' order;
botocore itself reads only the second), else the profile's, as botocore finds it.
"""

from __future__ import annotations

import os

from ..hosts import RegistryKey
from ..tokens import Token, now
from .aws_client import AwsBackend, _client
from .base import Rows

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..pod import PodIdentity

DEFAULT_TTL_S = 15 * 60  # a rotated secret is seen within 15 min; one GetSecretValue per identity and host then
ARN_PREFIX = "arn:"
# The only non-ASCII runes Unicode's simple case folding puts in an ASCII letter's orbit (long s, Kelvin sign):
# Go's encoding/json folds them onto `s` and `k` when it matches a key to a field name.
_GO_FOLD = {"\u017f": "s", "\u212a": "k"}


def arn_region(secret_id: str) -> str | None:
    """The region field of a Secrets Manager ARN (`arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME`),
    None for a name."""
    if not secret_id.startswith(ARN_PREFIX):
        return None
    fields = secret_id.split(":", 6)
    return (fields[3] or None) if len(fields) == 7 else None


def _go_fold(name: str) -> str:
    return "".join(_GO_FOLD.get(c, c.lower() if c.isascii() else c) for c in name)


class _Object(dict):  # type: ignore[type-arg]
    """A JSON object as a dict that also keeps its pairs in order, duplicates included (Go's matching needs them)."""

    def __init__(self, pairs: list[tuple[str, object]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


def _ecs_pair(doc: _Object) -> tuple[str, str]:
    """ECS's `{"username", "password"}`, keys matched as Go's encoding/json matches them."""
    found: dict[str, object] = {}
    for name, value in doc.pairs:
        folded = _go_fold(name)
        if folded in ("username", "password") and value is not None:  # Go leaves a field alone on null
            found[folded] = value
    for field in ("username", "password"):
        if field not in found:
            raise ValueError(f"the secret has no {field} (ECS form {{\"username\", \"password\"}}) "
                             "and no auths (a .dockerconfigjson)")
        if not isinstance(found[field], str):
            raise ValueError(f"the secret's {field} is not a string")
        if not found[field]:
            raise ValueError(f"the secret's {field} is empty")
    return str(found["username"]), str(found["password"])


def credentials_in(text: str, key: RegistryKey) -> tuple[str, str]:
    """The (username, password) a SecretString holds for `key`; ValueError with a reason that never quotes it."""
    import json

    try:
        doc = json.loads(text, object_pairs_hook=_Object)
    except ValueError:  # its message quotes no input, but nothing of the secret may ride along, even chained
        raise ValueError("the secret is not JSON: store {\"username\", \"password\"} or a .dockerconfigjson") \
            from None
    if not isinstance(doc, _Object):
        raise ValueError("the secret is not a JSON object")
    if "auths" not in doc:
        return _ecs_pair(doc)
    auths = doc["auths"]
    if not isinstance(auths, dict):
        raise ValueError("the secret's auths is not an object")
    from .mounted import entry_for, wanted

    creds = entry_for(auths, key)
    if creds is None:
        raise ValueError(f"the secret's auths has no usable entry for {wanted(key)}")
    return creds.username, creds.secret


class AwsSecretBackend(AwsBackend):
    """Registry credentials from one Secrets Manager secret."""

    kind = "aws-secret"

    def _secret_id(self) -> str:
        return str(self.spec.params["secret_id"])

    def _region(self) -> str | None:
        """Where to ask; None: the profile's region, as botocore finds it (the config file is in the identity)."""
        return (str(self.spec.params.get("region") or "") or arn_region(self._secret_id())
                or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None)

    def _ttl(self) -> float:
        return float(self.spec.params.get("ttl", DEFAULT_TTL_S))  # type: ignore[arg-type]

    def target(self, key: RegistryKey) -> str:
        # the host always: a .dockerconfigjson answers each host differently, and one entry per host costs one
        # request per host and TTL, never a wrong answer
        return f"{self._secret_id()}|region={self._region() or '(profile)'}|{key.hostport or key.raw}"

    def fetch(self, key: RegistryKey) -> Token:
        return self._fetch(key, None)

    def fetch_for_pod(self, key: RegistryKey, pod: PodIdentity) -> Token:
        return self._fetch(key, pod)

    def _fetch(self, key: RegistryKey, pod: PodIdentity | None) -> Token:
        secret_id = self._secret_id()
        client = _client(self.spec.params, "secretsmanager", self._region(), pod)
        started = now()
        answer = client.get_secret_value(SecretId=secret_id)  # type: ignore[attr-defined]
        text = answer.get("SecretString")
        if text is None:
            raise ValueError(f"secret {secret_id} is binary (SecretBinary): store {{\"username\", \"password\"}} "
                             "or a .dockerconfigjson as a SecretString, as ECS requires")
        try:
            username, password = credentials_in(text, key)
        except ValueError as exc:
            raise ValueError(f"secret {secret_id}: {exc}") from None
        return Token(username, password, started + self._ttl(), started)

    def identity(self, key: RegistryKey) -> Rows:
        region = self._region()
        source = ("the route" if self.spec.params.get("region") else "the ARN" if arn_region(self._secret_id())
                  else "AWS_REGION" if os.environ.get("AWS_REGION")
                  else "AWS_DEFAULT_REGION" if os.environ.get("AWS_DEFAULT_REGION") else "")
        return [("secret", self._secret_id()),
                ("region", f"{region} (from {source})" if region else "the profile's (botocore's default)"),
                ("ttl", f"{self._ttl():g} s"), *self._identity_rows()]
