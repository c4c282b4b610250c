"""Credentials from environment variables: the CI way (`NGC_API_KEY`, `GITHUB_TOKEN`, ...).

Route parameters: `username` (literal) or `username_env` (variable), and `secret_env`; or a `preset`
that fills them in. When the secret variable is unset or empty the answer is not-found, so the client
goes on anonymously (or to its next credential source) instead of failing the pull.
"""

from __future__ import annotations

import os

from ..errors import CredentialsNotFound
from ..hosts import RegistryKey
from .base import Backend, Credentials

# preset name -> (literal username, username variable, secret variable)
PRESETS: dict[str, tuple[str | None, str | None, str]] = {
    "ngc": ("$oauthtoken", None, "NGC_API_KEY"),                 # nvcr.io: the username is literal
    "ghcr": ("x-access-token", "GITHUB_ACTOR", "GITHUB_TOKEN"),  # any username works with a token
    "dockerhub": (None, "DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"),
    "gitlab": (None, "CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD"),  # GitLab CI's predefined variables
    "quay": (None, "QUAY_USERNAME", "QUAY_PASSWORD"),
}


class EnvBackend(Backend):
    """Reads a username and a secret from the environment at call time."""

    kind = "env"

    def __init__(self, secret_env: str, username: str | None = None, username_env: str | None = None) -> None:
        self.secret_env = secret_env
        self.username = username
        self.username_env = username_env

    @classmethod
    def from_params(cls, params: dict[str, object]) -> EnvBackend:
        """Build from route parameters (already validated by `config`)."""
        preset = params.get("preset")
        username, username_env, secret_env = PRESETS[str(preset)] if preset else (None, None, "")
        return cls(secret_env=str(params.get("secret_env") or secret_env),
                   username=str(params["username"]) if "username" in params else username,
                   username_env=str(params["username_env"]) if "username_env" in params else username_env)

    def _username(self) -> str | None:
        if self.username_env and os.environ.get(self.username_env):
            return os.environ[self.username_env]
        return self.username

    def get(self, key: RegistryKey) -> Credentials:
        secret = os.environ.get(self.secret_env)
        username = self._username()
        if not secret or not username:
            raise CredentialsNotFound()
        return Credentials(username, secret)

    def describe(self, key: RegistryKey) -> list[tuple[str, str]]:
        user = (f"${self.username_env}" + (f" (else {self.username!r})" if self.username else "")
                if self.username_env else repr(self.username))
        state = "set" if os.environ.get(self.secret_env) else "NOT set: answers not-found"
        return [("username", user), ("secret", f"${self.secret_env} ({state})")]
