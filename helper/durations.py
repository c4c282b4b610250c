"""Go's duration strings (`time.ParseDuration`, `Duration.String`), as Kubernetes and our options write them.

The kubelet's `cacheDuration` and `defaultCacheDuration` are Go durations (`"0"`, `"5m"`, `"11h45m0s"`;
`"600"` without a unit is an error), and so are the options that take one (`export --min-valid`).
"""

from __future__ import annotations

# Go's time.ParseDuration units, in nanoseconds ("µs" in both spellings Go accepts: U+00B5 and U+03BC)
_GO_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
             "m": 60_000_000_000, "h": 3_600_000_000_000}
_DIGITS = "0123456789"


def parse_go(text: str) -> float:
    """Seconds in `text`, read as Go's time.ParseDuration reads it (`1h30m`, `1.5s`, `300ms`, `0`, `-2m`); a
    ValueError for what Go refuses, such as `600` (no unit), `1d`, ` 5m` or an empty string."""
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0  # nanoseconds, an integer as in Go
    while rest:
        if rest[0] != "." and rest[0] not in _DIGITS:
            raise ValueError(f"invalid duration {text!r}")
        n = 0
        while n < len(rest) and rest[n] in _DIGITS:
            n += 1
        whole, rest = rest[:n], rest[n:]
        fraction = ""
        if rest[:1] == ".":
            n = 1
            while n < len(rest) and rest[n] in _DIGITS:
                n += 1
            fraction, rest = rest[1:n], rest[n:]
        if not whole and not fraction:
            raise ValueError(f"invalid duration {text!r}")
        n = 0
        while n < len(rest) and rest[n] != "." and rest[n] not in _DIGITS:
            n += 1
        unit, rest = rest[:n], rest[n:]
        if not unit:
            raise ValueError(f"missing unit in duration {text!r}")
        if unit not in _GO_UNITS:
            raise ValueError(f"unknown unit {unit!r} in duration {text!r}")
        scale = _GO_UNITS[unit]
        total += int(whole or "0") * scale + (int(fraction) * scale // 10 ** len(fraction) if fraction else 0)
        if total > 1 << 63:
            raise ValueError(f"invalid duration {text!r}")
    if not negative and total > (1 << 63) - 1:
        raise ValueError(f"invalid duration {text!r}")
    return (-total if negative else total) / 1e9


def format_go(seconds: float) -> str:
    """Whole seconds as Go's `Duration.String` writes them (`11h45m0s`, `5m0s`, `30s`); `"0"` for none."""
    total = int(seconds)
    if total <= 0:
        return "0"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
