"""Private folders, atomic file replacement and an inter-process lock, on POSIX and Windows."""

from __future__ import annotations

import os
import stat
import sys
import time
from types import TracebackType

from .errors import StoreError

# A writer holds the lock for milliseconds. The timeout counts from the last hand-over, not from the
# first try: 64 writers queued on 2 cores may wait longer in all, but 20 s with no holder change is stuck.
LOCK_TIMEOUT_S = 20.0
_POLL_S = 0.005  # short sleeps: 32 parallel `store`s must not wait for each other for long


def ensure_private_dir(path: str) -> None:
    """Create `path` (and parents) as 0700; tighten an existing one we own. Raises StoreError."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        if sys.platform != "win32":
            mode = os.stat(path).st_mode & 0o777
            if mode & 0o077:
                os.chmod(path, 0o700)
    except OSError as exc:
        raise StoreError(f"cannot create the private folder {path}: {exc.strerror}; "
                         "set SWITCHBOARD_DATA_DIR to a writable folder") from None


def read_bytes(path: str) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def signature_of(info: os.stat_result) -> str:
    """A file's identity and version as the launcher compares them: dev:ino:size:mtime_ns:ctime_ns."""
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


def signature(path: str) -> str | None:
    """`signature_of` the file at `path`; "-" if it does not exist, None if that cannot be known."""
    try:
        return signature_of(os.stat(path))
    except (FileNotFoundError, NotADirectoryError):
        return "-"
    except (OSError, ValueError):
        return None


MAX_SIGNED_READ = 1024 * 1024  # an identity file (AWS config, a Google key) is a few KB: more is a mistake


def read_signed(path: str) -> tuple[bytes | None, str | None]:
    """A small regular file's bytes and the signature of the very file read (fstat before reading).

    (None, "-") when it does not exist; (None, signature or None) when it is no regular file (a FIFO would
    hang a plain open: it is opened non-blocking), is unreadable or larger than MAX_SIGNED_READ. A change
    after the read changes the path's signature, so whoever compares it later sees the file moved on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None, "-"
    except (OSError, ValueError):
        return None, signature(path)
    try:
        info = os.fstat(fd)
        sig = signature_of(info)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SIGNED_READ:
            return None, sig
        chunks = []
        while True:
            chunk = os.read(fd, MAX_SIGNED_READ + 1)
            if not chunk:
                break
            chunks.append(chunk)
            if sum(len(c) for c in chunks) > MAX_SIGNED_READ:
                return None, sig
        return b"".join(chunks), sig
    except OSError:
        return None, None
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, durable: bool = True) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never a mix.

    Temp file in the same folder (0600), fsync, rename over, fsync the folder: a SIGKILL or a power cut
    at any point leaves either version intact. `durable=False` skips both fsyncs, for files whose reader
    detects a torn write itself (a SIGKILL still leaves old or new; a power cut may leave garbage).
    """
    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}-{time.monotonic_ns()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable and sys.platform != "win32":
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_stale_temps(path: str) -> None:
    """Delete temp files a killed writer left behind. Call only while holding the lock."""
    folder = os.path.dirname(path) or "."
    prefix = f".{os.path.basename(path)}.tmp-"
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def _holder_mark(fd: int) -> tuple[int, int]:
    try:
        info = os.fstat(fd)
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)


class FileLock:
    """An exclusive lock on `path` between processes (flock on POSIX, msvcrt on Windows).

    The operating system releases it when the holder dies, even by SIGKILL, so no lock outlives its
    holder. Acquisition polls and gives up with a StoreError, never hanging, once `timeout` seconds pass
    without the lock changing hands.
    """

    def __init__(self, path: str, timeout: float = LOCK_TIMEOUT_S) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock, waiting up to `timeout` (StoreError after that) or not at all (False if taken)."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open the lock file {self.path}: {exc.strerror}") from None
        deadline = time.monotonic() + self.timeout
        last_holder = _holder_mark(fd)
        while True:
            try:
                _try_lock(fd)
                break
            except OSError:
                if not wait:
                    os.close(fd)
                    return False
                mark = _holder_mark(fd)
                if mark != last_holder:  # the lock changed hands: the queue moves, nobody is stuck
                    last_holder, deadline = mark, time.monotonic() + self.timeout
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise StoreError(f"{self.path} is locked by another process for more than "
                                     f"{self.timeout:.0f} s; check for a stuck docker-credential-switchboard "
                                     "process") from None
                time.sleep(_POLL_S)
        self._fd = fd
        try:  # leave a mark so that waiters see the queue move (the file's size and mtime change)
            os.write(fd, b".")
            if os.fstat(fd).st_size > 4096:
                os.ftruncate(fd, 0)
        except OSError:
            pass
        return True

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
