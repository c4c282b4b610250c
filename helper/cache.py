"""The cross-process token cache: one small JSON file per route identity, written atomically, with a
per-key lock so that parallel helpers on a cold cache make one token request, not fifty.

The cache is an optimisation: an unreadable, damaged or unwritable entry is a miss, logged, never an
error. So is an entry or folder another user could have planted (a symbolic link, another owner, a hard
link; for root, a folder reached through one another user controls: `fsutil`'s rules): never served.
It is not encrypted (see the README's security model): its files are 0600 in a 0700 folder and hold
short-lived tokens only, and decrypting would put the AES import on the hot path.
"""

from __future__ import annotations

import binascii
import os

from . import fastjson, fsutil, log, paths, tokens
from .errors import HelperError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

FORMAT = "docker-credential-switchboard/token/1"
LOCK_WAIT_S = 60.0  # longest a caller waits for another process's refresh when the route names no deadline
# A waiter waits for the route's own fetch deadline (TokenBackend.deadline: 30 s, an exec route's timeout + 5)
# plus this: after its deadline the holder still writes the entry and exits, seconds on a loaded machine.
# Past that the holder is stuck (stopped, or its descriptor kept by a child) and the waiter refreshes unlocked.
LOCK_MARGIN_S = 10.0


def _file_name(key: str) -> str:
    # readable and filesystem-safe, plus a checksum so two keys that map to one name stay apart
    # (the full key is stored inside and checked on read). No hashlib: it costs milliseconds to import.
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-.") else "_" for c in key)[:120]
    return f"{safe}-{binascii.crc32(key.encode('utf-8')):08x}.json"


class TokenCache:
    """Tokens on disk, by cache key. `clock` returns epoch seconds (injected for tests)."""

    def __init__(self, folder: str | None = None, clock: Callable[[], float] = tokens.now) -> None:
        self.folder = folder or paths.cache_dir()
        self.clock = clock

    def path(self, key: str) -> str:
        """The entry file of `key`."""
        return os.path.join(self.folder, _file_name(key))

    def read(self, key: str) -> tokens.Token | None:
        """The cached token for `key`, or None (missing, damaged, unreadable, refused: all misses)."""
        try:
            data = fsutil.read_bytes(self.path(key))  # folder and file checked: see fsutil's rules
            if data is None:
                return None
            doc = fastjson.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("key") != key:
                return None
            expires = doc["expires_at"]
            return tokens.Token(str(doc["username"]), str(doc["secret"]),
                                None if expires is None else float(expires), float(doc["obtained_at"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.log(f"cache: entry for {key} unreadable ({type(exc).__name__}): a miss")
            return None
        except HelperError as exc:  # fsutil.UnsafePath: planted, never served
            log.log(f"cache: entry for {key} not used ({exc}): a miss")
            return None

    def write(self, key: str, token: tokens.Token, server: str) -> None:
        """Save `token`; an already expired one is never cached. Failures are logged, not raised."""
        if token.state(self.clock()) == tokens.EXPIRED:
            log.log(f"cache: token for {key} is already expired by the local clock; not cached")
            return
        doc = {"format": FORMAT, "key": key, "server": server, "username": token.username,
               "secret": token.secret, "expires_at": token.expires_at, "obtained_at": token.obtained_at}
        try:
            fsutil.ensure_private_dir(self.folder)
            fsutil.remove_stale_temps(self.path(key))  # callers hold the per-key lock: any temp file is dead
            fsutil.atomic_write(self.path(key), fastjson.dumps_flat(doc).encode("utf-8"))
        except (OSError, HelperError) as exc:
            log.log(f"cache: cannot write {self.path(key)} ({exc}); going on without it")

    def entry_holding(self, key: str, token: tokens.Token) -> tuple[str, str | None] | None:
        """The entry's (path, signature) if it holds `token` and did not change while read, else None.

        Whoever repeats an answer made from `token` pins this signature: any later refresh or removal of
        the entry, by any process, changes it.
        """
        path = self.path(key)
        before = fsutil.signature(path)
        again = self.read(key)
        if (before in (None, "-") or again is None or fsutil.signature(path) != before
                or (again.username, again.secret) != (token.username, token.secret)):
            return None
        return path, before

    def lock(self, key: str, blocking: bool = True, wait: float | None = None) -> fsutil.FileLock | _Unlocked | None:
        """The per-key refresh lock, already held; None when not blocking and another process holds it.

        A blocking caller waits up to `wait` seconds (LOCK_WAIT_S if None) with no hand-over, less once the
        holder's recorded pid is gone; if the lock cannot be taken at all (read-only or refused folder, a
        stuck holder) the caller goes on unlocked.
        """
        held = fsutil.FileLock(self.path(key)[:-5] + ".lock", timeout=LOCK_WAIT_S if wait is None else wait,
                               leave_gone_holder=True)
        try:
            fsutil.ensure_private_dir(self.folder)
            return held if held.acquire(wait=blocking) else None
        except HelperError as exc:
            log.log(f"cache: no lock for {key} ({exc}); refreshing unlocked")
            return _Unlocked()

    def entries(self) -> list[tuple[str, str, tokens.Token]]:
        """(server, key, token) of every readable entry, for `list` and `resolve`."""
        found = []
        try:
            if not fsutil.check_private_dir(self.folder):
                return []
            names = os.listdir(self.folder)
        except (OSError, HelperError) as exc:
            log.log(f"cache: not listed ({exc})")
            return []
        for name in names:
            if not name.endswith(".json"):
                continue
            try:
                data = fsutil.read_bytes(os.path.join(self.folder, name))  # no link, no FIFO, no other owner
                doc = fastjson.loads(data) if data is not None else None
                assert isinstance(doc, dict)
                token = self.read(str(doc["key"]))
                if token is not None:
                    found.append((str(doc["server"]), str(doc["key"]), token))
            except (OSError, ValueError, KeyError, TypeError, AttributeError, AssertionError, HelperError):
                continue
        return found


class _Unlocked:
    """Stands in for a lock that could not be taken."""

    def __enter__(self) -> _Unlocked:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def get_token(cache: TokenCache | None, key: str, server: str, fetch: Callable[[], tokens.Token],
              fetch_deadline: float | None = None) -> tokens.Token:
    """A token for `key`: from the cache while fresh, refreshed by one process at a time otherwise.

    `fetch_deadline` is the seconds `fetch` may take (the route's); waiters on another process's refresh
    wait that plus LOCK_MARGIN_S (LOCK_WAIT_S without one), then refresh unlocked.

    * fresh: served from the cache, no lock, no network.
    * stale (advisory window): whoever gets the lock without waiting refreshes; the others, and the
      refresher if the refresh fails, serve the still-valid token.
    * missing, expiring (mandatory window) or expired: everyone queues on the lock; the first refreshes,
      the rest find its result in the cache. A failed refresh raises.
    """
    if cache is None:
        return fetch()
    current = cache.read(key)
    state = current.state(cache.clock()) if current is not None else tokens.EXPIRED
    if current is not None and state == tokens.FRESH:
        return current
    if current is not None and state == tokens.STALE:
        held = cache.lock(key, blocking=False)
        if held is None:
            return current
        with held:
            again = cache.read(key)
            if again is not None and again.state(cache.clock()) == tokens.FRESH:
                return again
            try:
                token = fetch()
            except Exception as exc:  # backends raise their SDK's errors; any failure keeps the old token
                if current.state(cache.clock()) == tokens.EXPIRED:  # the failed refresh outlived it
                    raise
                log.log(f"refresh of {key} failed ({type(exc).__name__}: {exc}); serving the still-valid token")
                return current
            cache.write(key, token, server)
            return token
    held = cache.lock(key, wait=None if fetch_deadline is None else fetch_deadline + LOCK_MARGIN_S)
    assert held is not None
    with held:
        again = cache.read(key)
        if again is not None and again.state(cache.clock()) in (tokens.FRESH, tokens.STALE):
            return again
        token = fetch()
        cache.write(key, token, server)
        return token
