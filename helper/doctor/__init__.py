"""`doctor`: whether this machine will work, and what to do where it will not.

Each group of checks is one module (`clients`: the helper on PATH, Docker's and Podman's configuration;
`store`: the static store and its key; `routing`: the routes files, what each route would use, the token
cache) with one function that returns `Check`s. Rules every check keeps:
* Nothing reaches the network: no token is fetched, no metadata server is probed, no helper is run. A token
  route is described from local state only (its backend's `describe`, as `resolve` shows it). The one
  exception is asked for by name: `doctor --registry HOST` (`registry`) gets HOST's credentials as a client
  would (which may fetch a token) and checks them against the registry's /v2/.
* Nothing prints a secret or the environment: checks name files, hosts, keys, usernames and variable names,
  and say "set" or "not set" of a variable, never its value.
* The only write is the store round trip of one throw-away key (`store.PROBE_KEY`), erased at once.
"""

from __future__ import annotations

OK, WARN, FAIL = "OK", "WARN", "FAIL"


class Check:
    """One line of the report: its status, which check, what was found and the fix ("" when none is needed)."""

    __slots__ = ("check", "fix", "message", "status")

    def __init__(self, status: str, check: str, message: str, fix: str = "") -> None:
        self.status = status
        self.check = check
        self.message = message
        self.fix = fix

    def as_dict(self) -> dict[str, str]:
        """The `--json` form."""
        return {"status": self.status, "check": self.check, "message": self.message, "fix": self.fix}

    def line(self) -> str:
        """`[ OK ] check: message`, then the fix on an indented line."""
        tag = {OK: "[ OK ]", WARN: "[WARN]", FAIL: "[FAIL]"}[self.status]
        text = f"{tag} {self.check}: {self.message}\n"
        return text + (f"       fix: {self.fix}\n" if self.fix else "")

    def __repr__(self) -> str:
        return f"Check({self.status}, {self.check!r})"


def run_all() -> list[Check]:
    """Every check, in the order a person fixes things: clients, routes, store, identities, cache."""
    from .clients import checks as client_checks
    from .routing import identities, routes_files, token_cache
    from .store import checks as store_checks

    found = client_checks()
    config, route_checks = routes_files()
    found += route_checks
    found += store_checks(config)
    if config is not None:
        found += identities(config)
    found += token_cache()
    return found
