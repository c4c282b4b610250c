"""Private folders, atomic file replacement and an inter-process lock, on POSIX and Windows.

Rules for every file the helper keeps (the store, its key file, index and lock, token cache entries and
their locks, fast records), so that a folder or file another user planted is refused, never used:
* A private folder is a real folder (not a symbolic link) owned by the effective uid; `ensure_private_dir`
  creates it and every missing parent 0700 whatever the umask (`os.makedirs` gives the mode to the leaf
  only: under umask 000 the parents came out 0777 and another user could swap the folder) and tightens it
  to 0700. Reads check the folder too (`check_private_dir`), without changing it.
* Files are opened with O_NOFOLLOW and checked with fstat before a byte is read or written (`open_private`):
  a regular file, owned by the effective uid, with no second link. A `store.lock` symlink to /etc/passwd was
  once opened, locked and written to; a cache entry planted by another user was served.
* Root (euid 0) also refuses a folder or file it reaches through a folder another user owns or can write
  (group or other writable without the sticky bit), following symbolic links as the kernel does:
  `sudo -E`, a sudoers that keeps HOME, or a root CI step whose HOME is a workspace an earlier step wrote
  would otherwise let that user choose what root reads, writes and runs. This is OpenSSH's StrictModes
  rule and git's safe.directory. Other users skip the parents: a uid cannot create files owned by another
  uid, so the folder and file checks already stop a swapped parent from feeding them anything but their
  own files, and OpenShift-style arbitrary uids under a foreign HOME keep working.
* A missing folder or file is no problem on a read (nothing to serve): root with another user's HOME still
  gets a not-found, and its token cache is refused, logged and skipped (an optimisation).
* Windows has neither O_NOFOLLOW nor uids here: symbolic links and non-regular files are refused, owners
  are not checked.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from types import TracebackType

from . import paths
from .errors import StoreError

# A writer holds the lock for milliseconds. The timeout counts from the last hand-over, not from the
# first try: 64 writers queued on 2 cores may wait longer in all, but 20 s with no holder change is stuck.
LOCK_TIMEOUT_S = 20.0
_POLL_S = 0.005  # short sleeps: 32 parallel `store`s must not wait for each other for long
# A lock whose recorded holder is gone but that stays taken for this long is kept by a process the holder
# started (an inherited descriptor): waiting more does not help. The pause covers a new holder's first
# microseconds, between taking the lock and writing its pid.
HOLDER_GONE_S = 1.0
MAX_SYMLINKS = 40  # Linux's own limit on links followed in one path

_POSIX = sys.platform != "win32"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# never follow a final symlink; never block on a FIFO, never take a terminal, never leak into a child
_OPEN_FLAGS = (_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_BINARY", 0))


class UnsafePath(StoreError):
    """A helper folder or file another user could control: refused in one line, never read or written."""


def _who(uid: int) -> str:
    try:
        import pwd  # error messages only

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _setting(path: str) -> str:
    """The variable that moves the folder `path` is in: the cache's or the data folder's."""
    here, cache = os.path.abspath(path), os.path.abspath(paths.cache_dir())
    return "SWITCHBOARD_CACHE_DIR" if here == cache or here.startswith(cache + os.sep) else "SWITCHBOARD_DATA_DIR"


ROOT_RULE = ("root (euid 0) uses no file or folder that another user controls (the rule of git's "
             "safe.directory and OpenSSH's StrictModes)")


def _fix(setting: str, what: str = "a folder") -> str:
    if _POSIX and os.geteuid() == 0:
        return f"run as root with root's own HOME (sudo -H, not sudo -E) or set {setting} to {what} only root can write"
    return f"move it aside or set {setting} to {what} of yours"


def _refuse_dir(path: str, why: str, setting: str | None) -> UnsafePath:
    rule = f" and {ROOT_RULE}" if _POSIX and os.geteuid() == 0 else ""
    return UnsafePath(f"refusing the folder {path}: {why}{rule}; {_fix(setting or _setting(path))}")


def _refuse_file(path: str, why: str, setting: str | None) -> UnsafePath:
    return UnsafePath(f"refusing {path}: {why}, and the helper uses only regular files of its own; "
                      f"{_fix(setting or _setting(os.path.dirname(path)))}")


def distrust(info: os.stat_result) -> str | None:
    """Why root may not trust a folder or file with this status (another owner, writable by others), or None.

    The sticky bit (/tmp) makes a folder writable by others safe: they cannot rename what root put there.
    """
    if info.st_uid != 0:
        return f"is owned by {_who(info.st_uid)}"
    if info.st_mode & 0o022 and not (stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX):
        return f"is writable by other users (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def path_problem(path: str) -> tuple[bool, str | None]:
    """For root: walk `path` as the kernel would and judge every folder and symbolic link it goes through.

    (whether the path exists, the first problem found or None). Symbolic links are followed (a link is
    judged by its owner; the folders it leads through by `distrust`); the last component is not judged: the
    caller judges what it opens. The walk goes on past a problem, so that a path that does not exist is
    (False, ...): nothing can be read there, and a read may answer not-found instead of an error.
    """
    full = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    todo = [part for part in full.split(os.sep) if part not in ("", ".")]
    current = os.sep
    problem = None
    why = distrust(os.stat(current))
    if why:
        problem = f"{current} {why}"
    hops = 0
    while todo:
        name = todo.pop(0)
        if name == "..":
            current = os.path.dirname(current)
            continue
        step = os.path.join(current, name)
        try:
            info = os.lstat(step)
        except (FileNotFoundError, NotADirectoryError):
            return False, problem
        except OSError as exc:
            return True, problem or f"{step} cannot be checked ({exc.strerror})"
        if stat.S_ISLNK(info.st_mode):
            if info.st_uid != 0 and problem is None:
                problem = f"the symbolic link {step} is owned by {_who(info.st_uid)}"
            hops += 1
            if hops > MAX_SYMLINKS:
                return True, problem or f"{path} goes through more than {MAX_SYMLINKS} symbolic links"
            target = os.readlink(step)
            if os.path.isabs(target):
                current = os.sep
            todo[:0] = [part for part in target.split(os.sep) if part not in ("", ".")]
            continue
        if todo and problem is None:  # a folder on the way: whoever can write it can swap what follows
            why = distrust(info)
            if why:
                problem = f"{step} {why}"
        current = step
    return True, problem


def check_private_dir(path: str, setting: str | None = None) -> bool:
    """Whether the private folder `path` exists; one another user could control raises UnsafePath.

    True: a real folder (no symbolic link) of the effective uid, reached (for root) through folders only root
    controls. False: it, or a folder on its way, does not exist. UnsafePath (a StoreError) in one line
    naming the folder, why, and the variable that moves it (`setting`, else SWITCHBOARD_CACHE_DIR or
    SWITCHBOARD_DATA_DIR by where it is). Changes nothing: `ensure_private_dir` tightens the mode.
    """
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise StoreError(f"cannot use the folder {path}: {exc.strerror}; set {setting or _setting(path)} "
                         "to a folder of yours") from None
    if stat.S_ISLNK(info.st_mode):
        raise _refuse_dir(path, "it is a symbolic link, and a private folder must be a real folder", setting)
    if not stat.S_ISDIR(info.st_mode):
        raise _refuse_dir(path, "it is not a folder", setting)
    if not _POSIX:
        return True
    euid = os.geteuid()
    if info.st_uid != euid:
        raise _refuse_dir(path, f"it is owned by {_who(info.st_uid)}, not by {_who(euid)} who runs the helper",
                          setting)
    if euid == 0:
        exists, problem = path_problem(path)
        if problem:
            raise _refuse_dir(path, problem, setting)
        return exists
    return True


def _make_dirs(path: str) -> None:
    # one folder at a time, each 0700: os.makedirs gives `mode` to the leaf only, parents get 0777 - umask
    if os.path.isdir(path):
        return
    head, tail = os.path.split(path)
    if not tail:
        head, tail = os.path.split(head)
    if head and tail and head != path:
        _make_dirs(head)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return  # made meanwhile, or not a folder: judged by check_private_dir
    if _POSIX:  # an odd umask (0277) takes bits away from 0700: give them back, on the folder just made
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(path, 0o700)


def ensure_private_dir(path: str, setting: str | None = None) -> None:
    """Create `path` and its missing parents 0700; tighten an existing one we own; refuse one we may not use.

    Raises StoreError (UnsafePath for a symbolic link, a folder of another uid, or, for root, a folder
    reached through one another user controls; nothing is created then). `setting` names the variable
    that moves the folder, for the message (default: by where it is).
    """
    if _POSIX and os.geteuid() == 0:
        _, problem = path_problem(path)  # before creating anything inside a folder another user controls
        if problem:
            raise _refuse_dir(path, problem, setting)
    try:
        _make_dirs(path)
    except OSError as exc:
        raise StoreError(f"cannot create the private folder {path}: {exc.strerror}; "
                         f"set {setting or _setting(path)} to a writable folder") from None
    if not check_private_dir(path, setting):
        raise StoreError(f"cannot create the private folder {path}: it vanished; "
                         f"set {setting or _setting(path)} to a writable folder")
    if _POSIX and os.lstat(path).st_mode & 0o077:
        try:
            os.chmod(path, 0o700)  # ours, no symbolic link (just checked); an older helper may have made it 0777
        except OSError as exc:
            raise StoreError(f"cannot make the private folder {path} 0700: {exc.strerror}; "
                             f"set {setting or _setting(path)} to a folder of yours") from None


def file_problem(info: os.stat_result) -> str | None:
    """Why an opened helper file may not be used (not regular, another owner, a second link), or None."""
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if _POSIX:
        euid = os.geteuid()
        if info.st_uid != euid:
            return f"it is owned by {_who(info.st_uid)}, not by {_who(euid)} who runs the helper"
        if info.st_nlink > 1:  # 0 is fine: a writer renamed a new version over the one we opened
            return f"it has {info.st_nlink} hard links (another name could read or change it)"
    return None


def open_private(path: str, flags: int, setting: str | None = None) -> int:
    """A descriptor of the helper file `path`, verified before anything is read or written through it.

    Opened with O_NOFOLLOW (and non-blocking: a FIFO never hangs us), then fstat: a regular file of the
    effective uid with no second link, else closed and UnsafePath. `flags` may add O_CREAT (mode 0600). Other
    failures raise OSError (FileNotFoundError when it does not exist). The folder is the caller's to check.
    """
    if not _NOFOLLOW and os.path.islink(path):  # Windows: no O_NOFOLLOW
        raise _refuse_file(path, "it is a symbolic link", setting)
    try:
        fd = os.open(path, flags | _OPEN_FLAGS, 0o600)
    except FileNotFoundError:
        raise
    except OSError:
        if os.path.islink(path):  # ELOOP (EMLINK on BSD) from O_NOFOLLOW
            raise _refuse_file(path, "it is a symbolic link", setting) from None
        raise
    try:
        problem = file_problem(os.fstat(fd))
    except OSError:
        os.close(fd)
        raise
    if problem:
        os.close(fd)
        raise _refuse_file(path, problem, setting)
    return fd


def read_bytes(path: str) -> bytes | None:
    """The bytes of the helper file `path`, or None when it (or its folder) does not exist.

    Its folder is checked (`check_private_dir`) and the file opened by `open_private`: UnsafePath (a
    StoreError, one line) for a file or folder another user could have planted; OSError otherwise.
    """
    if not check_private_dir(os.path.dirname(path) or "."):
        return None
    try:
        fd = open_private(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


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
    data, _, sig = _read_regular(path)
    return data, sig


def read_with_stat(path: str) -> tuple[bytes | None, os.stat_result | None]:
    """`read_signed`'s read, with the fstat of the very file read (its owner and mode) rather than its signature;
    (None, None) when it is missing, no regular file, unreadable or too large."""
    data, info, _ = _read_regular(path)
    return (data, info) if data is not None else (None, None)


def _read_regular(path: str) -> tuple[bytes | None, os.stat_result | None, str | None]:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None, None, "-"
    except (OSError, ValueError):
        return None, None, signature(path)
    try:
        info = os.fstat(fd)
        sig = signature_of(info)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SIGNED_READ:
            return None, info, sig
        chunks = []
        while True:
            chunk = os.read(fd, MAX_SIGNED_READ + 1)
            if not chunk:
                break
            chunks.append(chunk)
            if sum(len(c) for c in chunks) > MAX_SIGNED_READ:
                return None, info, sig
        return b"".join(chunks), info, sig
    except OSError:
        return None, None, None
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, durable: bool = True) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never a mix.

    Temp file in the same folder (0600), fsync, rename over, fsync the folder: a SIGKILL or a power cut
    at any point leaves either version intact. `durable=False` skips both fsyncs, for files whose reader
    detects a torn write itself (a SIGKILL still leaves old or new; a power cut may leave garbage).
    The temp file is created O_EXCL (never through a planted link) and renamed over `path`, which replaces
    a link or a planted file rather than writing into it.
    """
    folder = os.path.dirname(path) or "."
    check_private_dir(folder)  # a folder another user could control raises UnsafePath; a missing one fails below
    replace_file(path, data, durable=durable)


def kept_owner(info: os.stat_result) -> tuple[int, int] | None:
    """The owner to give a replacement of the file `info` describes: its own when root rewrites another user's
    file (`sudo ... configure docker` must not leave her config.json root's), else None (the writer's)."""
    as_root = sys.platform != "win32" and os.geteuid() == 0
    return (info.st_uid, info.st_gid) if as_root and (info.st_uid, info.st_gid) != (0, 0) else None


def replace_file(path: str, data: bytes, *, durable: bool = True, mode: int = 0o600,
                 owner: tuple[int, int] | None = None) -> None:
    """Replace `path` with `data` atomically: a temp file (created O_EXCL, `mode`, `owner` if given) in the
    same folder, fsync, rename over, fsync the folder. No check of the folder: `atomic_write` is that, for
    the helper's own files; this is also for files of the user's clients (config.json, auth.json)."""
    folder = os.path.dirname(path) or "."
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}-{time.monotonic_ns()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            if sys.platform != "win32":
                if owner is not None:
                    os.fchown(handle.fileno(), *owner)
                os.fchmod(handle.fileno(), mode)  # whatever the umask
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


def _holder_mark(fd: int) -> tuple[int, int, bytes]:
    # what a waiter watches: the record a holder writes (its pid and a stamp), the file's mtime and size
    try:
        info = os.fstat(fd)
        record = os.pread(fd, 64, 0) if _POSIX else b""  # Windows: the locked byte cannot be read
    except OSError:
        return (0, 0, b"")
    return (info.st_mtime_ns, info.st_size, record)


def _holder_pid(mark: tuple[int, int, bytes]) -> int | None:
    word = mark[2].split(b" ", 1)[0]
    pid = int(word) if word.isdigit() and len(word) < 10 else 0
    return pid if pid > 0 and pid != os.getpid() else None


def _alive(pid: int) -> bool:
    if not _POSIX:
        return True  # os.kill on Windows terminates: never ask there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it exists, as another user
    return True


class FileLock:
    """An exclusive lock on `path` between processes (flock on POSIX, msvcrt on Windows).

    The operating system releases it when the holder dies, even by SIGKILL, so no lock outlives its
    holder. Acquisition polls and gives up with a StoreError, never hanging, once `timeout` seconds pass
    without the lock changing hands. The lock file is opened without following a link and verified
    (`open_private`) before it is locked or written; its folder must be private (`check_private_dir`).

    The holder writes `<pid> <time_ns>` into the file: waiters see the queue move (the record changes)
    and name the holder when they give up. With `leave_gone_holder`, a waiter stops (StoreError) once the
    recorded holder has been gone for HOLDER_GONE_S while the lock stays taken: a process the holder
    started kept its descriptor, and nothing will release it soon. A pid from another PID namespace (a
    cache shared with a container) also looks gone; that costs the caller one unlocked refresh.
    """

    def __init__(self, path: str, timeout: float = LOCK_TIMEOUT_S, leave_gone_holder: bool = False) -> None:
        self.path = path
        self.timeout = timeout
        self.leave_gone_holder = leave_gone_holder
        self._fd: int | None = None

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock, waiting up to `timeout` (StoreError after that) or not at all (False if taken)."""
        if self._fd is not None:
            return True
        try:
            check_private_dir(os.path.dirname(self.path) or ".")
            fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise StoreError(f"cannot open the lock file {self.path}: {exc.strerror}") from None
        deadline = time.monotonic() + self.timeout
        last_holder = _holder_mark(fd)
        gone_since: float | None = None
        waiting = False
        while True:
            try:
                _try_lock(fd)
                break
            except OSError:
                if not wait:
                    os.close(fd)
                    return False
                now = time.monotonic()
                mark = _holder_mark(fd)
                if mark != last_holder:  # the lock changed hands: the queue moves, nobody is stuck
                    last_holder, deadline, gone_since = mark, now + self.timeout, None
                pid = _holder_pid(mark)
                if not waiting:
                    waiting = True
                    from . import log

                    log.log(f"{self.path} is held by {f'pid {pid}' if pid else 'another process'}; "
                            f"waiting up to {self.timeout:g} s")
                if self.leave_gone_holder and pid is not None and not _alive(pid):
                    gone_since = now if gone_since is None else gone_since
                    if now - gone_since >= HOLDER_GONE_S:
                        os.close(fd)
                        raise StoreError(f"{self.path} stays locked, but its holder (pid {pid}) is gone: a "
                                         "process it started keeps the lock") from None
                else:
                    gone_since = None
                if now > deadline:
                    os.close(fd)
                    holder = f"process {pid}" if pid else "another process"
                    raise StoreError(f"{self.path} is locked by {holder} for more than {self.timeout:.0f} s; "
                                     "check for a stuck docker-credential-switchboard process") from None
                time.sleep(_POLL_S)
        self._fd = fd
        try:  # the holder's record: waiters see the queue move and can tell who holds the lock
            record = f"{os.getpid()} {time.time_ns()}\n".encode()
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, record)
            os.ftruncate(fd, len(record))
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
