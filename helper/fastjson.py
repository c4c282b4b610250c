"""JSON for the hot path without the `json` package's import cost.

`import json` pulls in `re` and `enum` (about 8 ms of every `get`, a quarter of the helper's start-up).
The C accelerator `_json` that `json` itself uses parses and escapes without them; this module drives
it directly and falls back to `json` where the accelerator is missing (PyPy, odd builds). Output is
ASCII-escaped, which every client decodes. Parse errors raise ValueError, as `json.loads` does.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None  # type: ignore[assignment]

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": -math.inf, "Infinity": math.inf, "NaN": math.nan}


class _Context:
    """The attributes `_json.make_scanner` reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_CONSTANTS.__getitem__)
    memo: dict[str, str] = {}  # noqa: RUF012 - the C scanner reads it; never mutated here


_scan = _json.make_scanner(_Context()) if _json is not None else None  # type: ignore[arg-type]


def loads(text: str | bytes) -> object:
    """Parse one JSON document (surrounding whitespace allowed); ValueError if it is not JSON."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if _scan is None:  # pragma: no cover
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not JSON") from None
    except SystemError:
        # the C scanner reports an error inside a document through json.decoder.JSONDecodeError, which it
        # cannot find unless `json` was imported: it then fails with SystemError. Either way: not JSON.
        raise ValueError("not JSON (malformed inside the document)") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError("extra data after the JSON document")
    return value


def dumps_strings(mapping: dict[str, str], sort: bool = False) -> str:
    """A compact JSON object of string values, e.g. `{"a":"b"}`."""
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(mapping, separators=(",", ":"), sort_keys=sort)
    items = sorted(mapping.items()) if sort else mapping.items()
    return "{" + ",".join(f"{quote(k)}:{quote(v)}" for k, v in items) + "}"


def quote(text: str) -> str:
    """A JSON string literal, ASCII-escaped, as `json.dumps(text)` writes it."""
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(text)
    return str(_json.encode_basestring_ascii(text))


def dumps_flat(mapping: Mapping[str, object]) -> str:
    """`json.dumps(mapping)` for an object whose values are strings, numbers, booleans or None: the same text
    (key order, `", "` and `": "`, ASCII escapes, `float.__repr__`), without importing `json`. Anything else
    (a nested value, a non-finite float, a key that is not a string) is left to `json.dumps` itself."""
    if _json is not None and all(isinstance(k, str) and _flat(v) for k, v in mapping.items()):
        return "{" + ", ".join(f"{quote(k)}: {_scalar(v)}" for k, v in mapping.items()) + "}"
    import json

    return json.dumps(mapping)


def _flat(value: object) -> bool:
    return value is None or isinstance(value, (str, int)) or (isinstance(value, float) and math.isfinite(value))


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return quote(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    assert isinstance(value, float)
    return float.__repr__(value)
