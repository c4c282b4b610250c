"""Fast records: `get` answers the standalone build's front executable may give without starting Python.

The standalone build puts a small C program (packaging/launcher/launcher.c) in front of the frozen
helper. On a `get` it hashes its stdin and the environment variables an answer can depend on into a
fingerprint, and looks for `<cache dir>/fast/<fingerprint>`; on a miss it runs this helper with
`SWITCHBOARD_FAST_RECORD=<fingerprint>`. When this helper then answers from a token backend with a
token that is fresh (before its advisory refresh window), it writes the record; the next identical
`get` is answered in about a millisecond instead of a Python start. The launcher decides nothing this
helper has not already decided for the same stdin, the same environment and the same files, while the
same token is fresh.

Record format (text header, then the answer exactly as it went to stdout):

    docker-credential-switchboard fast/1
    <the fingerprint: the record's own file name, so that a copy under another name is never served>
    <serve until: epoch seconds, an integer; the launcher serves while time() < this>
    <answer length in bytes>
    <SHA-256 of the answer, hex>
    <number of files the answer depends on>
    <path>            \\ one pair per file: the routes file, the token cache entry, what the identity reads
    <signature>       /  dev:ino:size:mtime_ns:ctime_ns, or "-" for a file that does not exist
    <answer>

Rules that keep it honest:
* Only token answers are recorded (never a static secret: the encrypted store stays the only place
  those live), only while the cache is on (AWS_ECR_DISABLE_CACHE turns records off too), only with a
  serve-until before the token's advisory window, so a refresh always goes through Python.
* Each file's signature is taken BEFORE the helper reads it (the routes file before the routes are
  loaded, gcloud's file before the identity is named) and checked again after the answer: a file that
  changed during the call means no record. The token cache entry is pinned after the answer, only if
  it still holds the token served, so a refresh or a deleted cache by anybody ends the record.
* `store` and `erase` (so `login`, `logout`) delete every record; a `get` that Python answers any other
  way deletes the record it was handed; every write also deletes the records past their serve-until time.
* A token backend's `who` returns the files its identity was read from, signed as read
  (`fsutil.read_signed`); they reach the record through `Credentials.basis`, so the cache key and the
  pinned files come from one function. A file it forgets is a file whose change the launcher does not see.
* Files are 0600 in a 0700 folder, replaced atomically; the launcher refuses a file it does not own,
  one readable by others, a torn one (length and checksum) and any signature mismatch.
"""

from __future__ import annotations

import math
import os

from . import FAST_RECORD_VAR, fsutil, log, paths
from .errors import HelperError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .backends.base import Credentials, Signed

RECORD_VAR = FAST_RECORD_VAR  # set by the launcher, for this one call only (rules: helper/envrules.py)
MAGIC = "docker-credential-switchboard fast/1"
MAX_RECORD_BYTES = 64 * 1024  # the launcher's limit: a token answer is a few KB
MAX_DEPENDENCIES = 16  # the launcher's limit
NO_EXPIRY_SERVE_S = 3600  # a token with no known expiry goes back through Python hourly
_HEX = frozenset("0123456789abcdef")


def record_id(value: str | None) -> str | None:
    """The fingerprint the launcher passed, if it is one (64 lowercase hex digits), else None."""
    if value is not None and len(value) == 64 and set(value) <= _HEX:
        return value
    return None


def folder() -> str:
    """Where the records live: `fast/` in the token cache folder (cleared with it)."""
    return os.path.join(paths.cache_dir(), "fast")


signature = fsutil.signature  # the launcher's view of a file (fsutil.signature_of)


def signed(paths: tuple[str, ...]) -> Signed:
    """Each path with its signature now: call BEFORE reading the files."""
    return tuple((path, signature(path)) for path in paths)


class FastRecord:
    """The one `get` the launcher fingerprinted: what it read, and the record its answer leaves (or not).

    The protocol front end makes one when the launcher passed a fingerprint, `watch`es the routes file
    before the routes are read, and reports the outcome: `answered` writes a record when the answer
    rests on a cached token (`Credentials.basis`) that is still in its cache entry, `failed` (and any
    other answer) deletes the record. Nothing else in the helper knows the launcher exists.
    """

    __slots__ = ("read", "record")

    def __init__(self, record: str) -> None:
        self.record = record
        self.read: Signed = ()

    def watch(self, paths: tuple[str, ...]) -> None:
        """Sign `paths` now, before they are read: the answer depends on them."""
        self.read += signed(paths)

    def answered(self, answer: str, creds: Credentials) -> None:
        """`answer` went to stdout: record it if it may be repeated, else forget the record."""
        basis = creds.basis
        entry = basis.entry() if basis is not None else None
        if basis is None or entry is None:
            forget(self.record)
            return
        write(self.record, answer, creds.fresh_until, (*self.read, *basis.files, entry))

    def failed(self) -> None:
        """The get failed: no record may stand for it."""
        forget(self.record)


def render(record: str, answer: bytes, serve_until: int, depends_on: list[tuple[str, str]]) -> bytes:
    """The record's bytes (see the module docstring)."""
    from .digest import sha256_hex

    lines = [MAGIC, record, str(serve_until), str(len(answer)), sha256_hex(answer), str(len(depends_on))]
    for path, sig in depends_on:
        lines += [path, sig]
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape") + answer


def write(record: str, answer: str, fresh_until: float | None, depends_on: Signed,
          now: float | None = None) -> None:
    """Record `answer` for the launcher until `fresh_until`; when it cannot be recorded, forget it.

    `depends_on` holds each file with the signature it had before the answer read it (`signed`).
    """
    from . import tokens

    at = tokens.now() if now is None else now
    until = at + NO_EXPIRY_SERVE_S if fresh_until is None else fresh_until
    body = answer.encode("utf-8", "replace")  # what stdout (utf-8, errors=replace) sent
    if (not math.isfinite(until) or until - at < 1 or len(depends_on) > MAX_DEPENDENCIES
            or any(sig is None or sig != signature(path) or "\n" in path or "\0" in path or not path
                   for path, sig in depends_on)):
        forget(record)  # something changed while the answer was made, or cannot be checked: no record
        return
    data = render(record, body, math.floor(until), [(path, str(sig)) for path, sig in depends_on])
    if len(data) > MAX_RECORD_BYTES:
        forget(record)
        return
    try:
        fsutil.ensure_private_dir(paths.cache_dir())
        fsutil.ensure_private_dir(folder())
        # no fsync: a torn record fails its length or checksum and is a miss, never a wrong answer
        fsutil.atomic_write(os.path.join(folder(), record), data, durable=False)
    except (OSError, ValueError, HelperError) as exc:
        log.log(f"fast record not written ({type(exc).__name__}); the launcher will ask again")
        return
    prune(at)


def _own_folder() -> bool:
    """Whether the records folder exists and is the helper's own, in the cache folder (fsutil's rules).

    Nothing is listed, read or deleted through a folder another user could control: a `fast` link to
    /etc would otherwise have every `store` delete what it lists.
    """
    try:
        return fsutil.check_private_dir(paths.cache_dir()) and fsutil.check_private_dir(folder())
    except (OSError, HelperError) as exc:
        log.log(f"fast records left alone: {exc}")
        return False


def prune(now: float) -> None:
    """Delete the records past their serve-until time: each environment leaves one, nothing else ends them."""
    if not _own_folder():
        return
    try:
        names = os.listdir(folder())
    except OSError:
        return
    for name in names:
        path = os.path.join(folder(), name)
        try:
            if record_id(name) is None:  # a temp file: a killed writer's once it is a minute old
                if os.lstat(path).st_mtime < now - 60:
                    os.unlink(path)
                continue
            fd = fsutil.open_private(path, os.O_RDONLY)  # no link, no FIFO, no other owner
            with os.fdopen(fd, "rb") as handle:
                lines = handle.read(200).split(b"\n", 3)
            if len(lines) == 4 and lines[0] == MAGIC.encode() and int(lines[2]) > now:
                continue
            os.unlink(path)
        except (OSError, ValueError, HelperError):
            continue


def forget(record: str) -> None:
    """Delete one record, if it exists."""
    if not _own_folder():
        return
    try:
        os.unlink(os.path.join(folder(), record))
    except OSError:
        pass


def forget_all() -> None:
    """Delete every record: the stored secrets changed, so nothing recorded before may stand."""
    if not _own_folder():
        return
    try:
        names = os.listdir(folder())
    except OSError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(folder(), name))
        except OSError:
            pass
