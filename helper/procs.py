"""Run a child program with its input on stdin, bounded by a timeout, without ever hanging.

Used by the `helper` backend (and later `exec`). The child runs in its own process group so that a
timeout kills it and anything it started; secrets travel on stdin, never in argv.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from .errors import HelperError


class ChildResult:
    """Exit status and output of a finished child."""

    __slots__ = ("returncode", "stdout")

    def __init__(self, returncode: int, stdout: bytes) -> None:
        self.returncode = returncode
        self.stdout = stdout


def run_child(argv: list[str], data: bytes | None, timeout: float, what: str) -> ChildResult:
    """Run `argv`, feed `data` (or /dev/null), return its stdout. Raises HelperError on timeout or exec failure.

    The child's stderr is inherited: it is the user's terminal, as it would be if the client ran the child.
    """
    kwargs: dict[str, object] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    # The store's passphrase is ours alone: a delegated helper or an exec command never inherits it.
    env = {name: value for name, value in os.environ.items() if name != "SWITCHBOARD_PASSPHRASE"}
    try:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, env=env, **kwargs)  # type: ignore[call-overload]
    except OSError as exc:
        raise HelperError(f"cannot run {what} ({argv[0]}): {exc.strerror}") from None
    try:
        out, _ = child.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(child)
        raise HelperError(f"{what} did not answer within {timeout:g} s") from None
    return ChildResult(child.returncode, out or b"")


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    try:
        if sys.platform == "win32":
            child.kill()
        else:
            os.killpg(child.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        child.communicate(timeout=2)
    except (subprocess.TimeoutExpired, ValueError):
        pass  # a grandchild that escaped the group keeps the pipe open; do not wait for it
