"""Run a child program with its input on stdin, bounded in time and in memory, without ever hanging.

Used by the `helper` backend (delegated credential helpers) and by `exec` routes. The child runs in its
own process group so that a timeout, or an answer past the cap, kills it and anything it started;
secrets travel on stdin, never in argv.

Bounds, each because a child is the user's program, not ours, and may misbehave:

* stdout is read in chunks of `CHUNK` and kept up to `MAX_STDOUT` (1 MiB): a credential answer is a
  few KB (a JWT runs to ~10 KB). Past it the process group is killed and the call fails with one line
  that says so. Never more than the cap and one chunk is held: a review measured `exec` routes of
  `yes` reading 2.3 GiB into memory in one second before this bound.
* stderr is forwarded to ours as it arrives, as it was when the child inherited it (a delegate's
  "not logged in" or a prompt to touch a security key must reach the user while the child waits), but
  only the first `MAX_STDERR` (64 KiB) of it; the rest is read and dropped, so that a chatty child
  neither floods the caller (Docker Compose and BuildKit show a helper's stderr in their UI, CI keeps it
  in its logs) nor blocks on a full pipe before it answers. Forwarded, not captured-then-printed: a
  prompt shown after the child exits is useless. The one thing lost against plain inheritance is a
  terminal: the child's stderr is a pipe, never a TTY.
* the timeout covers the whole run (start to exit and stdout's end), as `communicate` did.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading  # imported by subprocess already: free
import time

from . import log
from .errors import HelperError

TYPE_CHECKING = False  # `typing` is not on the hot path; mypy still sees the import
if TYPE_CHECKING:
    from typing import IO

MAX_STDOUT = 1 << 20  # 1 MiB: ample for any credential answer, a hard stop for `yes` or `cat /dev/zero`
MAX_STDERR = 64 << 10  # 64 KiB forwarded: a page of error text or a prompt; more is a flood
CHUNK = 64 << 10  # one pipe buffer on Linux: the most ever held beyond a cap
STDERR_GRACE_S = 0.25  # after the child exits, its last stderr lines reach ours before our answer does
KILL_WAIT_S = 2.0  # reaping a SIGKILLed child; a stuck one (uninterruptible I/O) is left behind


class ChildResult:
    """Exit status and output of a finished child."""

    __slots__ = ("returncode", "stdout")

    def __init__(self, returncode: int, stdout: bytes) -> None:
        self.returncode = returncode
        self.stdout = stdout


class _Reader:
    """The child's stdout, read in chunks until EOF or past `MAX_STDOUT` (then it stops reading)."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self.pipe = pipe
        self.data = bytearray()
        self.over = False
        self.done = threading.Event()

    def run(self) -> None:
        read = self.pipe.read
        try:
            while True:
                chunk = read(CHUNK)  # unbuffered: whatever the pipe holds, at most CHUNK
                if not chunk:
                    break
                self.data += chunk
                if len(self.data) > MAX_STDOUT:
                    self.over = True
                    break
        except (OSError, ValueError):
            pass
        finally:
            self.done.set()
            _close(self.pipe)


def _forward_stderr(pipe: IO[bytes], what: str) -> None:
    """Copy the child's stderr to ours up to `MAX_STDERR`, then read and drop the rest until EOF."""
    stream = sys.stderr
    sink = getattr(stream, "buffer", None)
    passed = 0
    read = pipe.read
    try:
        while True:
            chunk = read(CHUNK)
            if not chunk:
                break
            if passed >= MAX_STDERR:
                continue
            part = chunk[:MAX_STDERR - passed]
            passed += len(part)
            try:
                if sink is not None:
                    sink.write(part)
                    sink.flush()
                elif stream is not None:
                    stream.write(part.decode("utf-8", "replace"))
                    stream.flush()
            except (OSError, ValueError):
                pass  # our stderr is gone: the child's message has nowhere to go, its answer still matters
            if len(part) < len(chunk):
                log.log(f"{what} wrote more than {MAX_STDERR // 1024} KiB to stderr; the rest was dropped")
    except (OSError, ValueError):
        pass
    finally:
        _close(pipe)


def _feed(pipe: IO[bytes], data: bytes) -> None:
    """Write `data` to the child's stdin and close it; a child that does not read it is not an error."""
    write = pipe.write
    view = memoryview(data)
    try:
        while view:
            written = write(view)
            view = view[written or 0:]
    except (OSError, ValueError):
        pass  # it exited, or closed its stdin: its answer (or its exit status) says the rest
    finally:
        _close(pipe)


def _close(pipe: IO[bytes]) -> None:
    try:
        pipe.close()
    except OSError:
        pass


def run_child(argv: list[str], data: bytes | None, timeout: float, what: str) -> ChildResult:
    """Run `argv`, feed `data` (or /dev/null), return its stdout. Raises HelperError on timeout, on stdout
    past `MAX_STDOUT` (the process group is killed in both cases) or when it cannot be started.

    The child's stderr reaches ours, its first `MAX_STDERR` bytes: the user's terminal, as it would be if
    the client ran the child.
    """
    kwargs: dict[str, object] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    # The store's passphrase is ours alone: a delegated helper or an exec command never inherits it.
    env = {name: value for name, value in os.environ.items() if name != "SWITCHBOARD_PASSPHRASE"}
    deadline = time.monotonic() + timeout
    try:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env,
                                 **kwargs)  # type: ignore[call-overload]
    except OSError as exc:
        raise HelperError(f"cannot run {what} ({argv[0]}): {exc.strerror}") from None
    assert child.stdout is not None and child.stderr is not None
    reader = _Reader(child.stdout)
    workers = [threading.Thread(target=reader.run, daemon=True),
               threading.Thread(target=_forward_stderr, args=(child.stderr, what), daemon=True)]
    if data is not None:
        workers.append(threading.Thread(target=_feed, args=(child.stdin, data), daemon=True))
    for worker in workers:
        worker.start()
    try:
        if not reader.done.wait(timeout):
            raise HelperError(f"{what} did not answer within {timeout:g} s")
        if reader.over:
            raise HelperError(f"{what} wrote more than {MAX_STDOUT // (1 << 20)} MiB to stdout and was stopped: "
                              "a credential answer is a few KB; fix the command")
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # it closed stdout but went on running
            raise HelperError(f"{what} did not answer within {timeout:g} s") from None
    except HelperError:
        _kill_group(child)
        workers[1].join(STDERR_GRACE_S)
        raise
    workers[1].join(STDERR_GRACE_S)  # a grandchild may hold stderr open: today's behaviour never waited on it
    return ChildResult(child.returncode, bytes(reader.data))


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    try:
        if sys.platform == "win32":
            child.kill()
        else:
            os.killpg(child.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        child.wait(KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        pass  # the kernel has the SIGKILL; do not wait for it
