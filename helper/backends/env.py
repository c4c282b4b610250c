"""Credentials from environment variables: the CI way (`NGC_API_KEY`, `GITHUB_TOKEN`, ...).

Route parameters: `username` (literal) or `username_env` (variable), and `secret_env`; or a `preset`
that fills them in. When the secret variable is unset or empty the answer is not-found, so the client
goes on anonymously (or to its next credential source) instead of failing the pull; the debug log names
the variable that is unset (never a value).

The presets are also built-in routes (helper/router.py PRESET_ROUTES): with no configuration at all,
`nvcr.io`, `ghcr.io`, Docker Hub, `quay.io` and the GitLab CI registry (`$CI_REGISTRY`) answer from these
variables when they are set, and from the static store when they are not.
"""

from __future__ import annotations

import os

from .. import log
from ..errors import CredentialsNotFound
from ..hosts import RegistryKey
from .base import Backend, Credentials

# preset name -> (literal username, username variables, secret variables); the first variable set wins, the
# literal username applies when none of the username variables is set
PRESETS: dict[str, tuple[str | None, tuple[str, ...], tuple[str, ...]]] = {
    "ngc": ("$oauthtoken", (), ("NGC_API_KEY",)),                                  # nvcr.io: a literal username
    "ghcr": ("x-access-token", ("GITHUB_ACTOR", "GITHUB_USERNAME"), ("GITHUB_TOKEN",)),  # any name works
    "dockerhub": (None, ("DOCKERHUB_USERNAME",), ("DOCKERHUB_TOKEN", "DOCKERHUB_PASSWORD")),
    "gitlab": (None, ("CI_REGISTRY_USER",), ("CI_REGISTRY_PASSWORD",)),  # GitLab CI's predefined variables
    "quay": (None, ("QUAY_USERNAME",), ("QUAY_PASSWORD",)),
}


def _first(names: tuple[str, ...]) -> str | None:
    """The value of the first of `names` that is set and not empty."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _either(names: tuple[str, ...]) -> str:
    return " or ".join(f"${name}" for name in names)


class EnvBackend(Backend):
    """Reads a username and a secret from the environment at call time."""

    kind = "env"

    def __init__(self, secret_env: str | tuple[str, ...], username: str | None = None,
                 username_env: str | tuple[str, ...] | None = None) -> None:
        self.secret_envs = (secret_env,) if isinstance(secret_env, str) else tuple(secret_env)
        self.username = username
        self.username_envs = (username_env,) if isinstance(username_env, str) else tuple(username_env or ())

    @classmethod
    def from_params(cls, params: dict[str, object]) -> EnvBackend:
        """Build from route parameters (already validated by `config`)."""
        preset = params.get("preset")
        username, username_envs, secret_envs = PRESETS[str(preset)] if preset else (None, (), ())
        return cls(secret_env=(str(params["secret_env"]),) if params.get("secret_env") else secret_envs,
                   username=str(params["username"]) if "username" in params else username,
                   username_env=(str(params["username_env"]),) if "username_env" in params else username_envs)

    def missing(self) -> str | None:
        """What keeps this route from answering (the variables that are unset), or None when it would answer."""
        if _first(self.secret_envs) is None:
            return f"{_either(self.secret_envs)} is not set"
        if _first(self.username_envs) is None and not self.username:
            return f"{_either(self.username_envs)} is not set"
        return None

    def get(self, key: RegistryKey) -> Credentials:
        secret = _first(self.secret_envs)
        username = _first(self.username_envs) or self.username
        if not secret or not username:
            log.log(f"get {key.raw}: env: {self.missing()}: not-found")
            raise CredentialsNotFound()
        return Credentials(username, secret)

    def describe(self, key: RegistryKey) -> list[tuple[str, str]]:
        user = (_either(self.username_envs) + (f" (else {self.username!r})" if self.username else "")
                if self.username_envs else repr(self.username))
        state = "set" if _first(self.secret_envs) else "NOT set: answers not-found"
        return [("username", user), ("secret", f"{_either(self.secret_envs)} ({state})")]
