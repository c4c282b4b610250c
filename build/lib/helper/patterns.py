"""Host patterns for routes: anchored, `*` stands for one DNS label or part of one, ports deliberate.

Rules (the routes file and the built-in routes use the same ones):

* A pattern is a lowercase host, optionally `:port`. It matches the whole host, never a suffix:
  `*.azurecr.io` does not match `x.azurecr.io.evil.example`.
* `*` alone is exactly one label (`*.gcr.io` matches `eu.gcr.io`, not `a.b.gcr.io` nor `gcr.io`);
  inside a label it stands for one or more characters of that label (`*-docker.pkg.dev`).
  At most one `*` per label.
* Hosts are matched as written: a host with capitals or a trailing dot matches no pattern, the same
  strictness as amazon-ecr-credential-helper's anchored, case-sensitive regex. Such hosts still reach
  the static store.
* A pattern without a port matches the host on any port (a proxy or test registry on `:8443`);
  a pattern with a port matches that port only, and is more specific.
"""

from __future__ import annotations

_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class Pattern:
    """One compiled host pattern."""

    __slots__ = ("labels", "port", "text")

    def __init__(self, text: str, labels: tuple[str, ...], port: int | None) -> None:
        self.text = text
        self.labels = labels
        self.port = port

    def matches(self, host: str, port: int | None) -> bool:
        """Whether `host` (as written) and `port` fall under this pattern."""
        if self.port is not None and port != self.port:
            return False
        parts = host.split(".")
        if len(parts) != len(self.labels):
            return False
        for want, got in zip(self.labels, parts, strict=True):
            if not got or not set(got) <= _LABEL_CHARS:
                return False
            if want == "*":
                continue
            star = want.find("*")
            if star < 0:
                if want != got:
                    return False
                continue
            head, tail = want[:star], want[star + 1:]
            if len(got) <= len(head) + len(tail) or not got.startswith(head) or not got.endswith(tail):
                return False
        return True

    def specificity(self) -> tuple[int, int, int, int]:
        """Sort key: the larger, the more specific (port, literal labels, partial labels, literal chars)."""
        literal = sum(1 for label in self.labels if "*" not in label)
        partial = sum(1 for label in self.labels if "*" in label and label != "*")
        chars = sum(len(label.replace("*", "")) for label in self.labels)
        return (self.port is not None, literal, partial, chars)

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"


def compile_pattern(text: str) -> Pattern:
    """Compile a pattern, or raise ValueError with the reason (shown to the user with file and line)."""
    if not isinstance(text, str) or not text:
        raise ValueError("a pattern must be a non-empty string")
    if "://" in text or "/" in text or "@" in text:
        raise ValueError(f"pattern {text!r} must be a host such as '*.example.com' or 'host:5000', "
                         "without scheme, path or user")
    if text != text.lower():
        raise ValueError(f"pattern {text!r} must be lowercase")
    host, _, port_text = text.partition(":")
    port = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"pattern {text!r} has a bad port (a number from 1 to 65535)")
        port = int(port_text)
    labels = tuple(host.split("."))
    for label in labels:
        if not label:
            raise ValueError(f"pattern {text!r} has an empty label (a leading, trailing or double dot)")
        if label.count("*") > 1:
            raise ValueError(f"pattern {text!r}: at most one '*' per label")
        if not set(label.replace("*", "")) <= _LABEL_CHARS:
            raise ValueError(f"pattern {text!r} has characters a host cannot have")
    return Pattern(text, labels, port)
