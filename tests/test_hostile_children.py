"""Children and callers that never stop talking: every attack is run through the real executable, bounded
in time and memory, and shown to fail.

* an `exec` route whose command is `yes` or `cat /dev/zero`, and a delegated helper that prints without
  end: cut off at 1 MiB of stdout (helper/procs.py MAX_STDOUT), the process group killed, one line back
  (not-found for `exec`, whose failures are logged and answered not-found; an error line for a delegate);
* a child that floods stderr: the caller's stderr gets its first 64 KiB (MAX_STDERR) and no more, while a
  well-behaved child's message still reaches it, and a chatty child that answers still answers;
* 100 MiB piped into `get`, `store`, `erase` or `login --password-stdin`: refused after 16 MiB and one
  byte, with today's line, without reading the rest;
* an `http://` loopback Entra authority with `http_proxy` set: the client secret goes straight to the
  loopback server, never to the proxy (with a control showing urllib's default opener would send it there).

Time is measured with a monotonic clock; memory as the helper's peak RSS from `os.wait4` (its own
rusage, so other tests' children do not blur it), against a well-behaved run of the same executable.
Each run is limited to 2 GiB of address space and killed after 30 s, so that a regression fails the
test instead of the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from helper import procs
from helper.backends import entra, oauth_http
from tests.conftest import NOT_FOUND, helper_executable
from tests.loopback import Loopback, QuietHandler

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups, rusage and shell scripts")

MiB = 1 << 20
RUN_LIMIT_S = 30.0  # the watchdog: a run that takes longer is killed (and fails its test)
ADDRESS_SPACE_LIMIT = 2 << 30  # a safety net: a regression reading without bound hits MemoryError, not the OOM killer
HEAD_KEPT = 256 << 10  # what the tests keep of the helper's stdout/stderr (the rest is only counted)


class Run:
    """One run of the executable: exit code, output (head and total size), time, peak RSS, stdin consumed."""

    def __init__(self, code: int, out: bytes, out_total: int, err: bytes, err_total: int, seconds: float,
                 peak_rss: int, fed: int) -> None:
        self.code = code
        self.out = out.decode("utf-8", "replace")
        self.out_total = out_total
        self.err = err
        self.err_total = err_total
        self.seconds = seconds
        self.peak_rss = peak_rss
        self.fed = fed


def _limits() -> None:
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    except (ValueError, OSError):
        pass  # not enforced everywhere (macOS): the RSS and time checks still fail a regression


def _drain(pipe: int, head: bytearray, total: list[int]) -> None:
    while True:
        chunk = os.read(pipe, 1 << 16)
        if not chunk:
            break
        total[0] += len(chunk)
        if len(head) < HEAD_KEPT:
            head += chunk[:HEAD_KEPT - len(head)]
    os.close(pipe)


def _feed(pipe: int, chunks: Iterable[bytes], fed: list[int]) -> None:
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                written = os.write(pipe, view)
                fed[0] += written
                view = view[written:]
    except OSError:
        pass  # the helper closed its stdin: what matters is how much it took
    finally:
        os.close(pipe)


def run_measured(action: list[str], env: dict[str, str], stdin: Iterable[bytes] = (b"",)) -> Run:
    """Run the executable with `stdin` streamed in; measure it; kill its session past RUN_LIMIT_S."""
    proc = subprocess.Popen([helper_executable(), *action], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, bufsize=0, start_new_session=True,
                            preexec_fn=_limits)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    # the pipes as raw descriptors, owned by the threads below
    fd_in, fd_out, fd_err = (os.dup(pipe.fileno()) for pipe in (proc.stdin, proc.stdout, proc.stderr))
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        pipe.close()
    out, err, out_total, err_total, fed = bytearray(), bytearray(), [0], [0], [0]
    threads = [threading.Thread(target=_drain, args=(fd_out, out, out_total), daemon=True),
               threading.Thread(target=_drain, args=(fd_err, err, err_total), daemon=True),
               threading.Thread(target=_feed, args=(fd_in, stdin, fed), daemon=True)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    watchdog = threading.Timer(RUN_LIMIT_S, lambda: os.killpg(proc.pid, signal.SIGKILL))
    watchdog.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        watchdog.cancel()
    seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    for thread in threads:
        thread.join(5)
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return Run(proc.returncode, bytes(out), out_total[0], bytes(err), err_total[0], seconds, peak, fed[0])


def baseline_rss(routes: Path, tmp_path: Path) -> int:
    """The peak RSS of a well-behaved exec `get` by the same executable."""
    ok = tmp_path / "ok.sh"
    ok.write_text("#!/bin/sh\necho well-behaved\n")
    ok.chmod(0o755)
    saved = routes.read_text() if routes.exists() else ""
    routes.write_text(f'[[route]]\nmatch = "ok.example"\nbackend = "exec"\ncommand = ["{ok}"]\nusername = "u"\n')
    run = run_measured(["get"], dict(os.environ), [b"ok.example"])
    assert (run.code, run.out) == (0, '{"ServerURL":"ok.example","Username":"u","Secret":"well-behaved"}\n')
    routes.write_text(saved)
    return run.peak_rss


def gone(pid: int) -> bool:
    """Whether `pid` has exited (a zombie waiting for a reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def wait_gone(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return gone(pid)


def script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on PATH for docker-credential-<x> scripts."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


@pytest.fixture
def log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "switchboard.log"
    monkeypatch.setenv("SWITCHBOARD_LOG", str(path))
    return path


# -- stdout without end --------------------------------------------------------------------------------------

ENDLESS = {"yes": ["yes"], "cat /dev/zero": ["cat", "/dev/zero"]}


@pytest.mark.parametrize("name", list(ENDLESS))
def test_an_exec_command_that_never_stops_printing_is_cut_off_at_1_mib(
        name: str, routes: Path, tmp_path: Path, log_file: Path) -> None:
    base = baseline_rss(routes, tmp_path)
    command = [shutil.which(ENDLESS[name][0]) or pytest.skip(f"no {ENDLESS[name][0]}"), *ENDLESS[name][1:]]
    # a 20 s timeout: only the cap can stop it within the few seconds allowed below
    routes.write_text(f'[[route]]\nmatch = "corp.example"\nbackend = "exec"\ncommand = {json.dumps(command)}\n'
                      'username = "u"\ntimeout = 20\n')
    run = run_measured(["get"], dict(os.environ), [b"corp.example"])
    assert (run.code, run.out, run.err) == (1, NOT_FOUND + "\n", b"")  # exec's policy: a quiet not-found
    assert run.seconds < 5, run.seconds
    assert run.peak_rss < base + 32 * MiB, (run.peak_rss // MiB, base // MiB)
    logged = log_file.read_text()
    assert f"the exec command {command[0]} wrote more than 1 MiB to stdout and was stopped" in logged, logged


def test_the_whole_process_group_is_killed_past_the_cap(routes: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    cmd = script(tmp_path, "flood.sh", f"sleep 300 &\necho $! > '{pidfile}'\nexec yes")
    routes.write_text(f'[[route]]\nmatch = "corp.example"\nbackend = "exec"\ncommand = ["{cmd}"]\n'
                      'username = "u"\ntimeout = 20\n')
    run = run_measured(["get"], dict(os.environ), [b"corp.example"])
    assert (run.code, run.out) == (1, NOT_FOUND + "\n")
    assert run.seconds < 5, run.seconds
    assert wait_gone(int(pidfile.read_text())), "the command's background child outlived the cut-off"


def test_a_slow_trickle_under_the_cap_is_still_cut_off_by_the_timeout(routes: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    cmd = script(tmp_path, "trickle.sh", f"sleep 300 &\necho $! > '{pidfile}'\n"
                                         "while :; do printf x; sleep 0.05; done")
    routes.write_text(f'[[route]]\nmatch = "corp.example"\nbackend = "exec"\ncommand = ["{cmd}"]\n'
                      'username = "u"\ntimeout = 1\n')
    run = run_measured(["get"], dict(os.environ), [b"corp.example"])
    assert (run.code, run.out, run.err) == (1, NOT_FOUND + "\n", b"")
    assert 1 <= run.seconds < 6, run.seconds
    assert wait_gone(int(pidfile.read_text()))


def test_a_delegated_helper_that_prints_endlessly_gets_one_error_line(
        routes: Path, tmp_path: Path, bin_dir: Path) -> None:
    base = baseline_rss(routes, tmp_path)
    script(bin_dir, "docker-credential-chatty", "exec yes '{\"Username\": \"u\", \"Secret\": \"s\"}'")
    routes.write_text('[[route]]\nmatch = "corp.example"\nbackend = "helper"\nhelper = "chatty"\ntimeout = 20\n')
    run = run_measured(["get"], dict(os.environ), [b"corp.example"])
    assert run.code == 1
    assert run.out == ("docker-credential-chatty wrote more than 1 MiB to stdout and was stopped: "
                       "a credential answer is a few KB; fix the command\n")
    assert run.err == b""
    assert run.seconds < 5, run.seconds
    assert run.peak_rss < base + 32 * MiB, (run.peak_rss // MiB, base // MiB)


def test_an_answer_just_under_the_cap_is_still_read_whole(routes: Path, tmp_path: Path) -> None:
    """The cap is on the answer, not a truncation: a long (if odd) secret below it arrives intact."""
    secret = "s" * (procs.MAX_STDOUT - 100)
    source = tmp_path / "secret.txt"
    source.write_text(secret)
    cmd = script(tmp_path, "long.sh", f"cat '{source}'")
    routes.write_text(f'[[route]]\nmatch = "corp.example"\nbackend = "exec"\ncommand = ["{cmd}"]\nusername = "u"\n')
    run = run_measured(["get"], dict(os.environ), [b"corp.example"])
    assert run.code == 0
    assert run.out_total > procs.MAX_STDOUT - 100  # the whole JSON answer came back (only its head is kept)


# -- stderr without end --------------------------------------------------------------------------------------


def test_a_child_flooding_stderr_reaches_the_caller_only_up_to_64_kib(routes: Path, tmp_path: Path) -> None:
    base = baseline_rss(routes, tmp_path)
    cmd = script(tmp_path, "noisy.sh", "exec yes flood >&2")
    routes.write_text(f'[[route]]\nmatch = "corp.example"\nbackend = "exec"\ncommand = ["{cmd}"]\n'
                      'username = "u"\ntimeout = 2\n')
    run = run_measured(["get"], dict(os.environ), [b"corp.example"])
    assert (run.code, run.out) == (1, NOT_FOUND + "\n")  # it never answered: the timeout ended it
    assert run.err_total == procs.MAX_STDERR == 64 * 1024, run.err_total
    assert run.err == b"flood\n" * (procs.MAX_STDERR // 6) + b"flood\n"[:procs.MAX_STDERR % 6]
    assert run.seconds < 8, run.seconds
    assert run.peak_rss < base + 32 * MiB


def test_a_delegate_that_floods_stderr_and_then_answers_still_answers(routes: Path, bin_dir: Path) -> None:
    """The rest of the flood is read and dropped, so the child never blocks on a full pipe."""
    script(bin_dir, "docker-credential-verbose",
           "head -c 10485760 /dev/zero | tr '\\0' x >&2\necho '{\"Username\": \"u\", \"Secret\": \"s\"}'")
    routes.write_text('[[route]]\nmatch = "corp.example"\nbackend = "helper"\nhelper = "verbose"\ntimeout = 20\n')
    run = run_measured(["get"], dict(os.environ), [b"corp.example"])
    assert (run.code, json.loads(run.out)["Secret"]) == (0, "s")
    assert (run.err_total, run.err) == (procs.MAX_STDERR, b"x" * procs.MAX_STDERR)
    assert run.seconds < 8


def test_a_well_behaved_delegates_stderr_message_still_reaches_the_user(routes: Path, bin_dir: Path) -> None:
    script(bin_dir, "docker-credential-locked",
           "echo 'gpg: decryption failed: No secret key' >&2\necho 'pass store is locked'\nexit 1")
    routes.write_text('[[route]]\nmatch = "corp.example"\nbackend = "helper"\nhelper = "locked"\n')
    run = run_measured(["get"], dict(os.environ), [b"corp.example"])
    assert (run.code, run.out) == (1, "docker-credential-locked get failed: pass store is locked\n")
    assert run.err == b"gpg: decryption failed: No secret key\n"


# -- stdin without end ---------------------------------------------------------------------------------------


def hundred_mib(byte: bytes = b"a") -> Iterator[bytes]:
    chunk = byte * MiB
    for _ in range(100):
        yield chunk


@pytest.mark.parametrize("action", ["get", "store", "erase"])
def test_100_mib_on_stdin_is_refused_without_reading_it_all(action: str, routes: Path, tmp_path: Path) -> None:
    base = baseline_rss(routes, tmp_path)
    run = run_measured([action], dict(os.environ), hundred_mib())
    assert (run.code, run.out, run.err) == (1, "input is larger than 16 MiB\n", b"")  # today's line
    # 16 MiB and one byte, plus whatever the pipe (and, in the standalone build, the launcher) buffered
    assert run.fed < 18 * MiB, run.fed // MiB
    assert run.seconds < 10, run.seconds
    assert run.peak_rss < base + 48 * MiB, (run.peak_rss // MiB, base // MiB)


def test_login_password_stdin_reads_at_most_16_mib(tmp_path: Path) -> None:
    run = run_measured(["login", "big.example", "-u", "me", "--password-stdin"], dict(os.environ), hundred_mib())
    assert (run.code, run.out) == (1, "--password-stdin: the password is larger than 16 MiB\n")
    assert run.fed < 18 * MiB, run.fed // MiB
    assert run.seconds < 10


# -- a secret over plain http never through a proxy ----------------------------------------------------------


class Recorder:
    """What one loopback server received."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []


def serve(recorder: Recorder, answer: tuple[int, dict[str, object]]) -> Loopback:
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            recorder.requests.append((self.command, self.path, self.body()))
            self.send(answer[0], json.dumps(answer[1]).encode("utf-8"))

    return Loopback(Handler)


@pytest.fixture
def entra_and_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Recorder, Recorder]]:
    seen_by_entra, seen_by_proxy = Recorder(), Recorder()
    fake_entra = serve(seen_by_entra, (200, {"token_type": "Bearer", "expires_in": 3599, "access_token": "tok-1"}))
    proxy = serve(seen_by_proxy, (502, {"error": "the proxy read it"}))
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", fake_entra.url)
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant-1")
    monkeypatch.setenv("AZURE_CLIENT_ID", "client-1")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "sbx-entra-secret-Zq8")
    yield seen_by_entra, seen_by_proxy
    fake_entra.close()
    proxy.close()


def test_a_client_secret_to_a_loopback_http_authority_never_goes_through_http_proxy(
        entra_and_proxy: tuple[Recorder, Recorder]) -> None:
    seen_by_entra, seen_by_proxy = entra_and_proxy
    plan = entra.make_plan({}, "myreg.azurecr.io")
    assert plan.kind == entra.CLIENT_SECRET and plan.authority.startswith("http://127.0.0.1:")
    assert entra.entra_token(plan) == "tok-1"  # fetched directly
    assert seen_by_proxy.requests == []
    [(method, path, body)] = seen_by_entra.requests
    assert (method, path) == ("POST", "/tenant-1/oauth2/v2.0/token") and b"sbx-entra-secret-Zq8" in body

    # the control: urllib's default opener (the one the helper used before) sends the same POST, secret and
    # all, in clear to the proxy named by http_proxy
    url = f"{plan.authority}/{plan.tenant}/oauth2/v2.0/token"
    request = urllib.request.Request(url, data=b"client_secret=sbx-entra-secret-Zq8", method="POST")  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener().open(request, timeout=10)
    refused.value.close()
    [(_, proxied_path, proxied_body)] = seen_by_proxy.requests
    assert proxied_path == url and b"sbx-entra-secret-Zq8" in proxied_body


@pytest.mark.parametrize(("url", "direct"), [
    ("http://127.0.0.1:8080/t/oauth2/v2.0/token", True),
    ("http://[::1]:8080/t", True),
    ("http://localhost/t", True),
    ("https://127.0.0.2/t", True),
    ("https://localhost:8443/t", True),
    ("https://login.microsoftonline.com/t/oauth2/v2.0/token", False),
    ("https://myreg.azurecr.io/oauth2/exchange", False),
])
def test_which_urls_skip_the_proxy(url: str, direct: bool) -> None:
    assert oauth_http.direct(url) is direct
