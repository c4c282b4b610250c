"""A pod's service account, as the kubelet hands it to an image credential provider (KEP-4412).

With `tokenAttributes` in its CredentialProviderConfig, a kubelet 1.33+ sends with each request a token
it minted for the pulling pod's service account (audience from the config, bound to the pod) and the
annotations of that service account that the config names. A cloud route then asks for the pod's own
cloud identity with that token instead of the node's (`TokenBackend.pod_plan`).

Rules:
* The token is a JWT or the request is refused: a kubelet never sends anything else, and a malformed
  token must not reach a cloud (or a cache) at all.
* Its claims are read unverified, only to name the service account in the cache key
  (`namespace/name/uid`): the kubelet is the only caller and it minted the token; the cloud verifies it.
  Two service accounts never share a cache entry; two pods of one service account do (the kubelet's own
  cache does the same for `cacheType: ServiceAccount`).
* The token itself is never stored, logged or put in a key or an error: `scrub` takes it out of any
  text that leaves this process.
"""

from __future__ import annotations

from .digest import sha256_hex
from .errors import BadInput
from .jwtparts import segments

#: the annotations the cloud plugins read (cloud-provider-aws, cloud-provider-gcp, cloud-provider-azure)
AWS_ROLE = "eks.amazonaws.com/ecr-role-arn"
GCP_SERVICE_ACCOUNT = "iam.gke.io/gcp-service-account"
AZURE_CLIENT_ID = "kubernetes.azure.com/acr-client-id"
AZURE_TENANT_ID = "kubernetes.azure.com/acr-tenant-id"
ANNOTATIONS = (AWS_ROLE, GCP_SERVICE_ACCOUNT, AZURE_CLIENT_ID, AZURE_TENANT_ID)

MAX_TOKEN = 16 * 1024  # a bound service-account token is about 1 KB; anything far larger is not one


def _claims(token: str) -> dict[str, object]:
    found = segments(token) if len(token) <= MAX_TOKEN and token.isascii() else None
    if found is None:
        raise BadInput("serviceAccountToken is not a JWT (three base64url parts, a JSON header and claims)")
    return found[1]


def _account(claims: dict[str, object]) -> str:
    """`namespace/name/uid` of the service account the token was minted for."""
    k8s = claims.get("kubernetes.io")
    account = k8s.get("serviceaccount") if isinstance(k8s, dict) else None
    namespace = k8s.get("namespace") if isinstance(k8s, dict) else None
    if isinstance(account, dict) and isinstance(namespace, str):
        name, uid = account.get("name"), account.get("uid")
        if isinstance(name, str) and isinstance(uid, str):
            return f"{namespace}/{name}/{uid}"
    subject = claims.get("sub")
    prefix = "system:serviceaccount:"
    if isinstance(subject, str) and subject.startswith(prefix) and subject.count(":") == 3:
        return subject[len(prefix):].replace(":", "/", 1)
    raise BadInput("serviceAccountToken names no service account (no kubernetes.io claims and no "
                   "system:serviceaccount: subject)")


class PodIdentity:
    """The pulling pod's service account: its token (never shown), the annotations, and who it is."""

    __slots__ = ("account", "annotations", "audience", "token")

    token: str
    annotations: dict[str, str]
    account: str
    audience: str

    def __init__(self, token: str, annotations: dict[str, str]) -> None:
        claims = _claims(token)
        object.__setattr__(self, "token", token)
        object.__setattr__(self, "annotations", dict(annotations))
        object.__setattr__(self, "account", _account(claims))
        # the audience the kubelet minted it for: one provider per audience (KEP-4412), never one entry for two
        audience = claims.get("aud")
        object.__setattr__(self, "audience", ",".join(sorted(str(a) for a in audience))
                           if isinstance(audience, list) else str(audience or ""))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("PodIdentity is immutable")

    def annotation(self, name: str) -> str:
        """The annotation's value, trimmed; "" when absent."""
        return self.annotations.get(name, "").strip()

    def key(self, plan: str) -> str:
        """The identity part of a cache key: the service account and what the route will ask as.

        `namespace/name/uid` is readable (it is in every audit log already); the plan (role, service
        account, client id) and the token's audience are digested with it, so that a changed annotation or
        another provider's audience is another entry.
        """
        digest = sha256_hex(f"{plan}\0{self.audience}".encode())[:16]
        return f"pod={self.account}|plan={digest}"

    def scrub(self, text: str) -> str:
        """`text` without the token in it."""
        return text.replace(self.token, "***") if self.token else text

    def session_name(self) -> str:
        """A role session name naming the service account (AWS allows [\\w+=,.@-], at most 64)."""
        namespace, name = self.account.split("/")[:2]
        text = f"k8s.{namespace}.{name}"
        return "".join(c if c.isascii() and (c.isalnum() or c in "+=,.@-_") else "-" for c in text)[:64]

    def __repr__(self) -> str:
        return f"PodIdentity({self.account!r}, annotations={sorted(self.annotations)})"
