"""Shared pieces of the hostile tests (`tests/test_hostile_*.py`): the soak switch and fault injection.

Short and long modes
--------------------
By default the hostile tests run their short CI versions: together they add about three minutes on a
2-core machine. `SWITCHBOARD_SOAK` selects a longer soak:

* unset, empty or `0`: the CI figures;
* `1`: every duration, iteration count and Hypothesis example budget is multiplied by 10;
* any other number `N`: multiplied by `N` (`SWITCHBOARD_SOAK=60` turns the 25-second load test into a
  25-minute one).

In CI mode Hypothesis is derandomised (the same examples on every run, so CI never flakes on a newly
drawn input); in soak mode it draws fresh examples. It never writes an example database.

    SWITCHBOARD_SOAK=1 .venv/bin/python -m pytest tests/test_hostile_*.py -q

Fault injection
---------------
`KILL_AT` wraps the helper's own entry point (`helper.cli.run`) and SIGKILLs the process at a chosen
point of an atomic write: `before-rename` (the temp file is written and fsynced, the lock is held, the
target is untouched) or `after-rename` (the target is replaced, the lock is still held). That is the
worst moment a random kill can hit, reached on every run instead of once in a hundred.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, settings


def _factor() -> float:
    raw = os.environ.get("SWITCHBOARD_SOAK", "").strip()
    if raw in ("", "0", "false", "no"):
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        return 10.0
    return 10.0 if value == 1 else max(value, 1.0)


FACTOR = _factor()
SOAK = FACTOR > 1


def scaled(count: int) -> int:
    """An iteration count for this mode."""
    return max(1, round(count * FACTOR))


def seconds(duration: float) -> float:
    """A duration for this mode."""
    return duration * FACTOR


def examples(count: int) -> settings:
    """Hypothesis settings for a hostile-input property: `count` examples in CI, scaled in soak mode."""
    return settings(max_examples=scaled(count), deadline=None, database=None, derandomize=not SOAK,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example],
                    print_blob=True)


def figures(test: str, **numbers: object) -> None:
    """Print the figures of a run (visible with `pytest -s` or `-rP`)."""
    print(f"FIGURES {test}: " + ", ".join(f"{name}={value}" for name, value in numbers.items()))


# -- files ----------------------------------------------------------------------------------------------

def data_dir(home: Path) -> Path:
    """The helper's data folder under conftest's isolated HOME."""
    return home / ".local/share/docker-credential-switchboard"


def cache_dir(home: Path) -> Path:
    """The helper's token cache folder under conftest's isolated HOME."""
    return home / ".cache/docker-credential-switchboard"


def temp_files(folder: Path) -> list[str]:
    """Temp files an atomic write leaves behind when its writer dies (`.<name>.tmp-<pid>-<ns>`)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def lock_is_free(path: Path) -> bool:
    """Whether nobody holds the flock on `path` (taken and released at once, without waiting)."""
    import fcntl

    if not path.exists():
        return True
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


# -- processes ------------------------------------------------------------------------------------------

KILL_AT = r"""
import os, signal, sys

point, prefix = sys.argv[1], sys.argv[2]
real_fsync, real_replace = os.fsync, os.replace


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def fsync(fd):
    real_fsync(fd)
    if point == "before-rename":
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith("." + prefix) and ".tmp-" in name:
            die()


def replace(src, dst, *args, **kwargs):
    real_replace(src, dst, *args, **kwargs)
    if point == "after-rename" and os.path.basename(dst).startswith(prefix):
        die()


os.fsync, os.replace = fsync, replace
from helper import cli

sys.argv = ["docker-credential-switchboard", *sys.argv[3:]]
cli.run()
"""


def run_killed_at(point: str, prefix: str, argv: list[str], data: bytes, env: dict[str, str],
                  timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run the helper's code with `argv`, SIGKILLed at `point` of the atomic write of a file named `prefix*`.

    Returns the finished process: returncode -9 when the kill point was reached.
    """
    return subprocess.run([sys.executable, "-c", KILL_AT, point, prefix, *argv], input=data, capture_output=True,
                          env=env, timeout=timeout)


PATCHED_TIMEOUTS = r"""
import sys
from helper.backends import aws_client

aws_client.CONNECT_TIMEOUT_S = float(sys.argv[1])
aws_client.READ_TIMEOUT_S = float(sys.argv[2])
from helper import cli

sys.argv = ["docker-credential-switchboard", *sys.argv[3:]]
cli.run()
"""


def run_with_ecr_timeouts(connect: float, read: float, argv: list[str], data: bytes, env: dict[str, str],
                          timeout: float) -> tuple[subprocess.CompletedProcess[bytes] | None, float]:
    """Run the helper's code with ECR's connect and read timeouts scaled down; (process or None if it
    had to be killed after `timeout` seconds, elapsed seconds)."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", PATCHED_TIMEOUTS, str(connect), str(read), *argv],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        return None, time.monotonic() - started
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), time.monotonic() - started
