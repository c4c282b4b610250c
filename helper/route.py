"""One route as the routes file (or the built-in table) wrote it: the value `config` makes, the router picks
and a backend is built from. Its own module so that the backend registry and the backends can name it
without importing `config`, which imports the registry."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .patterns import Pattern


class RouteSpec:
    """One route as written: its patterns, backend name and parameters, and where it came from."""

    __slots__ = ("backend", "params", "patterns", "source")

    def __init__(self, patterns: list[Pattern], backend: str, params: dict[str, object], source: str) -> None:
        self.patterns = patterns
        self.backend = backend
        self.params = params
        self.source = source
