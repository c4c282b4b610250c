"""The wire format of docker-credential-helpers (../shared/PROTOCOL.md): parse stdin once, here, and
format stdout. Everything past this module works with clean values.
"""

from __future__ import annotations

from . import fastjson
from .backends.base import Credentials
from .errors import BadInput, MissingServerURL, MissingUsername

MAX_INPUT = 16 * 1024 * 1024  # far above any real payload (secrets run to tens of KB); bounds memory


def _text(data: bytes) -> str:
    if len(data) > MAX_INPUT:
        raise BadInput(f"input is larger than {MAX_INPUT // (1024 * 1024)} MiB")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # PowerShell pipes add a BOM
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("input is not valid UTF-8") from None


def parse_server_url(data: bytes) -> str:
    """The key sent to `get` or `erase`: raw text, trimmed (Go's TrimSpace); `\\r\\n` and `\\n` both fine."""
    key = _text(data).strip()
    if not key:
        raise MissingServerURL()
    if "\0" in key or "\n" in key or "\r" in key:
        raise BadInput("the server URL must be a single line without NUL bytes")
    return key


def _field(doc: dict[str, object], name: str) -> object:
    # Go's encoding/json matches field names case-insensitively; the exact spelling wins.
    if name in doc:
        return doc[name]
    lowered = name.lower()
    for key, value in doc.items():
        if key.lower() == lowered:
            return value
    return None


def _string(doc: dict[str, object], name: str) -> str:
    value = _field(doc, name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadInput(f"invalid credentials JSON: {name} must be a string, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"invalid credentials JSON: {name} holds an unpaired \\u surrogate") from None
    return value


def parse_store(data: bytes) -> tuple[str, Credentials]:
    """The (key, credentials) of a `store` payload, Go-style or docker-py-style JSON."""
    text = _text(data)
    if not text.strip():
        raise BadInput("EOF")  # the reference helper's exact answer to empty input
    import json  # `store` only: the full decoder gives the exact errors; `get` never pays for it

    try:
        doc, end = json.JSONDecoder().raw_decode(text.lstrip())
    except (ValueError, RecursionError):
        raise BadInput("invalid credentials JSON: expected {\"ServerURL\": ..., \"Username\": ..., "
                       "\"Secret\": ...}") from None
    if text.lstrip()[end:].strip():
        raise BadInput("invalid credentials JSON: extra data after the object")
    if not isinstance(doc, dict):
        raise BadInput(f"invalid credentials JSON: expected an object, not {type(doc).__name__}")
    server = _string(doc, "ServerURL").strip()
    if not server:
        raise MissingServerURL()
    if "\0" in server or "\n" in server or "\r" in server:
        raise BadInput("the server URL must be a single line without NUL bytes")
    username = _string(doc, "Username")
    if not username:
        raise MissingUsername()
    return server, Credentials(username, _string(doc, "Secret"))


def format_credentials(server: str, creds: Credentials) -> str:
    """The `get` answer: one JSON object and a newline. ASCII-escaped, which every client decodes."""
    return fastjson.dumps_strings({"ServerURL": server, "Username": creds.username, "Secret": creds.secret}) + "\n"


def format_list(entries: dict[str, str]) -> str:
    """The `list` answer: a JSON object (`{}` when empty, never `null`), sorted like Go's encoder."""
    return fastjson.dumps_strings(entries, sort=True) + "\n"
