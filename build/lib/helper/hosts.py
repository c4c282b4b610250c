"""Parse the key a client sends (`https://index.docker.io/v1/`, `docker.io`, `host:port`, `host/org/img`).

A key is always kept exactly as sent (trimmed): the static store answers the exact key first. Besides,
a key that names a registry gets a *canonical* spelling, shared by every way clients write the same
registry, so that `docker login` and `podman login` reach the same entry:

* scheme (`http://`, `https://`) dropped, host lowercased, port kept (`host:5000` is another registry);
* Docker Hub's spellings (`https://index.docker.io/v1/`, `docker.io`, `index.docker.io`,
  `registry-1.docker.io`) all become `docker.io`;
* a path after a scheme is ignored when it is an API root (`/`, `/v1/`, `/v2/`); any other path after a
  scheme (Docker's `https://index.docker.io/v1/access-token`) makes the key exact-only;
* a path without a scheme is a repository path (go-containerregistry sends `ghcr.io/org/img` first):
  it is looked up at `ghcr.io/org/img`, then `ghcr.io/org`, then `ghcr.io`.

Keys that do not parse as a registry (userinfo such as `a.azurecr.io@evil.example`, spaces, non-ASCII,
a bad port) stay exact-only and are never routed to a cloud backend.
"""

from __future__ import annotations

HUB = "docker.io"
HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
_API_ROOTS = frozenset({"", "/", "/v1", "/v1/", "/v2", "/v2/"})
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")


class RegistryKey:
    """One key as a client sent it, with what routing and lookup need.

    `host` is exactly as written (case kept: cloud routes match lowercase hosts only) and is None when the
    key does not name a registry. `canonical` is the alias spelling, None for exact-only keys.
    """

    __slots__ = ("canonical", "host", "path", "port", "raw")

    def __init__(self, raw: str, host: str | None = None, port: int | None = None,
                 path: str = "", canonical: str | None = None) -> None:
        self.raw = raw
        self.host = host
        self.port = port
        self.path = path
        self.canonical = canonical

    @property
    def hostport(self) -> str | None:
        """`host[:port]` as written, or None."""
        if self.host is None:
            return None
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def candidates(self) -> list[str]:
        """Canonical spellings to try after the exact key, most specific first."""
        if self.canonical is None:
            return []
        found = [self.canonical]
        if self.path:
            parts = self.canonical.split("/")
            found += ["/".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]
        return found

    def __repr__(self) -> str:
        return f"RegistryKey({self.raw!r}, canonical={self.canonical!r})"


def _valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        inner = host[1:-1]
        return bool(inner) and all(c in "0123456789abcdefABCDEF:." for c in inner)
    if not host or len(host) > 253:
        return False
    labels = host.split(".")
    if labels[-1] == "":  # a trailing dot: a legal FQDN, kept distinct so no route matches it by accident
        labels = labels[:-1]
        if not labels:
            return False
    return all(label and len(label) <= 63 and set(label) <= _LABEL_CHARS
               and label[0] != "-" and label[-1] != "-" for label in labels)


def split_hostport(authority: str) -> tuple[str, int | None] | None:
    """`host[:port]` -> (host, port); None if the port is not a number in 1..65535."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return None
        host, rest = authority[: end + 1], authority[end + 1:]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            return None
        port_text = rest[1:]
    elif ":" in authority:
        host, port_text = authority.rsplit(":", 1)
    else:
        return authority, None
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


def parse(raw: str) -> RegistryKey:
    """Parse a trimmed key. Never raises: an unusual key is simply exact-only."""
    text = raw
    lowered = text[:8].lower()
    scheme = None
    if lowered.startswith("https://"):
        scheme, text = "https", text[8:]
    elif lowered.startswith("http://"):
        scheme, text = "http", text[7:]
    authority, slash, path = text.partition("/")
    path = slash + path
    if not authority or "@" in authority or not authority.isascii():
        return RegistryKey(raw)
    split = split_hostport(authority)
    if split is None or not _valid_host(split[0]):
        return RegistryKey(raw)
    host, port = split
    name = host.lower()
    if name in HUB_ALIASES and port is None:
        name = HUB
    base = name if port is None else f"{name}:{port}"
    if scheme is not None:
        if path not in _API_ROOTS:
            return RegistryKey(raw, host, port, path.strip("/"), None)
        return RegistryKey(raw, host, port, "", base)
    repo = path.strip("/")
    if not repo:
        return RegistryKey(raw, host, port, "", base)
    if not set(repo) <= _PATH_CHARS or "//" in repo:
        return RegistryKey(raw, host, port, repo, None)
    return RegistryKey(raw, host, port, repo, f"{base}/{repo.lower()}")
