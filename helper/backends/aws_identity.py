"""Who asks AWS for a token: the identity part of an ECR cache key, read without botocore.

botocore's credential chain takes its identity from the route's profile and role, the environment
(access keys, `AWS_PROFILE`, web identity, container credentials) and the two shared files
(`AWS_CONFIG_FILE`, default `~/.aws/config`: profiles, `role_arn`, `source_profile`,
`credential_process`, `sso_*`, `web_identity_token_file`, `credential_source`; and
`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`). The key names all of them:

* the route's profile, role, external id and session name, readable, as before;
* a digest of the identity variables' names and values (`IDENTITY_VARS`; the access key id and the
  container authorization token are secrets, so only their digests ever enter the digest input);
* a digest of the two files' whole contents. Parsing the profile chain would be more precise, but
  `configparser` imports `re` (~8 ms on every cache hit) and a precise parse is one more place to be
  wrong: any edit to either file is a new identity, at the price of one extra token request.

When none of these is present the identity is the ambient one (an instance or container role found
through the metadata service): a different key, so a token minted for removed credentials is never
served again. The two files are the `files` of the identity: the standalone launcher's records pin them.
"""

from __future__ import annotations

import os

from ..digest import sha256_hex
from ..fsutil import read_signed
from .token_base import Identity

# The variables botocore's default chain reads to decide who is asking (botocore/credentials.py,
# botocore/configprovider.py), besides the profile names and the access key id handled on their own.
IDENTITY_VARS = (
    "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",  # which shared files (their contents: below)
    "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_WEB_IDENTITY_TOKEN_FILE",  # web identity (EKS IRSA, OIDC)
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",  # ECS, EKS Pod Identity
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CREDENTIAL_FILE", "BOTO_CONFIG",  # read before the container endpoint (OriginalEC2Provider, BotoProvider)
)
# Not identity: AWS_ENDPOINT_URL* and AWS_REGION say where to ask, not who asks (a token cached while one
# endpoint answered is still the identity's token when another is down), as amazon-ecr-credential-helper.
# Secrets that still name an identity: only a digest of them is ever kept (as amazon-ecr-credential-helper
# keys its cache by a digest of the access key id). A new session token for the same key id is the same
# identity, so AWS_SESSION_TOKEN and AWS_SECRET_ACCESS_KEY are not part of the key.
SECRET_IDENTITY_VARS = ("AWS_ACCESS_KEY_ID", "AWS_CONTAINER_AUTHORIZATION_TOKEN")
# A secret whose value names the identity yet must never be kept anywhere outside this process, not even as
# a digest (envrules.secret_name: the launcher counts it by presence only): while one is set, no answer rests
# on comparable files, so none is repeated without Python.
UNREPEATABLE_WHILE_SET = ("AWS_CONTAINER_AUTHORIZATION_TOKEN",)
DIGEST_HEX = 16  # 64 bits: the key tells identities apart, it does not protect anything


def _expand(path: str) -> str:
    path = os.path.expanduser(path)
    # botocore also expands $VARS; os.path.expandvars imports `re`, so only when there is one to expand
    return os.path.expandvars(path) if "$" in path else path


def shared_files() -> tuple[str, str]:
    """The config and credentials files botocore reads, as it finds them."""
    return (_expand(os.environ.get("AWS_CONFIG_FILE") or os.path.join("~", ".aws", "config")),
            _expand(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join("~", ".aws", "credentials")))


def _unrepeatable() -> bool:
    """Whether no answer may be repeated outside Python: a shared file's path names other variables
    (`$CI_PROJECT_DIR/aws.cfg`: which file it is depends on variables the standalone launcher does not
    fingerprint, so a record would pin one job's file for the next job with the same literal value), or
    an UNREPEATABLE_WHILE_SET secret is set."""
    return (any("$" in os.environ.get(var, "") for var in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"))
            or any(os.environ.get(var) for var in UNREPEATABLE_WHILE_SET))


def profile_name(params: dict[str, object]) -> str:
    """The profile botocore will use: the route's, else AWS_DEFAULT_PROFILE, AWS_PROFILE, `default`.

    botocore reads AWS_DEFAULT_PROFILE first (configprovider: ['AWS_DEFAULT_PROFILE', 'AWS_PROFILE']),
    unlike the AWS CLI's documentation order: the key must name the profile botocore signs with.
    """
    return str(params.get("profile") or os.environ.get("AWS_DEFAULT_PROFILE") or os.environ.get("AWS_PROFILE")
               or "default")


def _digest(parts: list[bytes]) -> str:
    return sha256_hex(b"\0".join(parts))[:DIGEST_HEX]


def aws_identity(params: dict[str, object]) -> Identity:
    """The route's identity now: its readable part, digests of the environment and the shared files."""
    name = (f"profile={profile_name(params)}|role={params.get('role_arn') or ''}"
            f"|external_id={params.get('external_id') or ''}|session={params.get('session_name') or ''}")
    env = os.environ
    key_id = env.get("AWS_ACCESS_KEY_ID")
    if key_id:
        name += f"|key={_digest([key_id.encode('utf-8')])}"
    named = [f"{var}={env[var]}".encode("utf-8", "surrogateescape")
             for var in (*IDENTITY_VARS, *SECRET_IDENTITY_VARS[1:]) if env.get(var)]
    if named:
        name += f"|env={_digest(named)}"
    files = []
    contents: list[bytes] = []
    for path in shared_files():
        data, sig = read_signed(path)
        files.append((path, sig))
        if data is not None or sig != "-":  # present: its bytes (or, unreadable, its signature) count
            contents += [path.encode("utf-8", "surrogateescape"), data if data is not None else str(sig).encode()]
    if contents:
        name += f"|files={_digest(contents)}"
    if not key_id and not named and not contents and not params.get("profile") and not params.get("role_arn"):
        name += "|ambient"
    return Identity(name, tuple(files), repeatable=not _unrepeatable())


def describe(params: dict[str, object]) -> str:
    """For `resolve`: the identity's readable parts and which inputs are present (never a secret)."""
    who = aws_identity(params)
    present = [var for var in (*SECRET_IDENTITY_VARS, *IDENTITY_VARS) if os.environ.get(var)]
    existing = [path for path, _ in who.files if os.path.exists(path)]
    return (f"profile {profile_name(params)}, role {params.get('role_arn') or '(none)'}"
            f"; variables: {', '.join(present) or 'none'}; files: {', '.join(existing) or 'none'}"
            + ("; ambient (instance or container role)" if who.name.endswith("|ambient") else ""))
