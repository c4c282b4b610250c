"""Token backends whose implementation has not landed yet (ECR, ECR Public, GCP, ACR, exec).

Their routes exist so that cloud hosts are claimed, and lookalikes are not, from the start. Until the
token code exists they answer a clean not-found, so Docker and Podman go on to the static store
fallback (see `actions`) or anonymously, and never fail a pull.
"""

from __future__ import annotations

from ..hosts import RegistryKey
from .base import Backend

TOKEN_KINDS = ("ecr", "ecr-public", "gcp", "acr", "exec")


class PendingTokenBackend(Backend):
    """A cloud route without its token code: every `get` is not-found."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def describe(self, key: RegistryKey) -> list[tuple[str, str]]:
        return [("token", f"{self.kind} tokens are not implemented yet: not-found, then the static store")]
