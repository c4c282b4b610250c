"""Who asks Google for a token: where Application Default Credentials come from, and whose they are.

google-auth's order (without importing it): the file named by GOOGLE_APPLICATION_CREDENTIALS, else gcloud's
application-default file, else the metadata server. The cache key names the identity inside the file, not
only its path, so a rewritten file at the same path (another service account, `gcloud auth
application-default login` as another person) is a new entry, and a deleted one is never served again:

* `service_account`: its `client_email` (a new key of the same account is the same identity);
* `authorized_user` (what gcloud writes; its `client_id` is gcloud's own, shared by every user): a digest of
  the refresh token, which is the user's grant;
* any other type (`external_account`, `impersonated_service_account`, ...): a digest of the whole file,
  conservative: any edit is a new identity;
* no file at all: the metadata server's (ambient) identity, named by its host.

The file is read once with its signature (`fsutil.read_signed`), which is what the standalone launcher pins.
"""

from __future__ import annotations

import os

from .. import fastjson
from ..digest import sha256_hex
from ..fsutil import read_signed
from .token_base import Identity

CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
DEFAULT_METADATA_HOST = "metadata.google.internal"
DIGEST_HEX = 16  # 64 bits: tells identities apart; protects nothing


def adc_path() -> str:
    """gcloud's application-default credentials file, as google.auth._cloud_sdk finds it (without importing it)."""
    if "CLOUDSDK_CONFIG" in os.environ:
        folder = os.environ["CLOUDSDK_CONFIG"]
    elif os.name != "nt":
        folder = os.path.join(os.path.expanduser("~"), ".config", "gcloud")
    elif "APPDATA" in os.environ:
        folder = os.path.join(os.environ["APPDATA"], "gcloud")
    else:
        folder = os.path.join(os.environ.get("SYSTEMDRIVE", "C:"), "\\", "gcloud")
    return os.path.join(folder, "application_default_credentials.json")


def metadata_host() -> str:
    """Where google-auth sends metadata-server requests."""
    return os.environ.get("GCE_METADATA_HOST") or os.environ.get("GCE_METADATA_ROOT") or DEFAULT_METADATA_HOST


def credential_source() -> tuple[str, str]:
    """("file", path) for GOOGLE_APPLICATION_CREDENTIALS, ("adc", path) for gcloud's file, else ("metadata", host)."""
    explicit = os.environ.get(CREDENTIALS_ENV, "")
    if explicit:
        return "file", explicit
    adc = adc_path()
    if os.path.isfile(adc):
        return "adc", adc
    return "metadata", metadata_host()


def _digest(data: bytes) -> str:
    return sha256_hex(data)[:DIGEST_HEX]


def file_identity(data: bytes | None, sig: str | None) -> str:
    """Whose credentials a file holds (see the module docstring); never a secret."""
    if data is None:
        return "absent" if sig == "-" else f"unreadable:{sig}"
    try:
        doc = fastjson.loads(data)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict):
        return f"invalid:{_digest(data)}"
    kind = doc.get("type")
    email, refresh = doc.get("client_email"), doc.get("refresh_token")
    if kind == "service_account" and isinstance(email, str) and email:
        return f"service_account:{email}"
    if kind == "authorized_user" and isinstance(refresh, str) and refresh:
        return f"authorized_user:{_digest(refresh.encode('utf-8', 'surrogateescape'))}"
    return f"{kind if isinstance(kind, str) and kind.isidentifier() else 'unknown'}:{_digest(data)}"


def google_identity() -> Identity:
    """The identity ADC would use now, and the credentials file it was read from."""
    explicit = os.environ.get(CREDENTIALS_ENV, "")
    path = explicit or adc_path()
    data, sig = read_signed(path)
    if explicit:
        return Identity(f"creds=file:{path}|{file_identity(data, sig)}", ((path, sig),))
    if sig == "-" or (data is None and not os.path.isfile(path)):
        # no gcloud file (google-auth, as credential_source, skips what is not a file): the metadata
        # server's identity, until the file appears
        return Identity(f"creds=metadata:{metadata_host()}", ((path, sig),))
    return Identity(f"creds=adc:{path}|{file_identity(data, sig)}", ((path, sig),))
