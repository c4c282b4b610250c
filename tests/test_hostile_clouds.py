"""Broken clouds: a token endpoint slow past the timeouts, black-holed, refusing, resetting, answering 500s
or garbage, trickling its answer; the clock jumping forwards and backwards.

The helper must answer within its documented bound (ECR: 3 s connect, 10 s read, 2 attempts), serve a
still-valid cached token in the advisory window when the refresh fails, never serve an expired (or
expiring) one, and never hang.

* in-process: `helper.cache.get_token` over a `TokenCache` with an injected clock, driven by Hypothesis
  through random clock jumps, slow and failing fetches and short or already-expired tokens;
* process level: the real executable against loopback endpoints (tests/fake_aws.FakeEcr and raw
  sockets), all scenarios at once so that the slow ones share their wall time, with cache entries
  edited to stand for a clock that jumped.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from helper import tokens
from helper.backends.aws_client import CONNECT_TIMEOUT_S, MAX_ATTEMPTS, READ_TIMEOUT_S
from helper.cache import TokenCache, get_token
from tests.conftest import NOT_FOUND, Result, run_helper
from tests.fake_aws import ECR_HOST, FakeEcr, aws_env
from tests.soak import examples, figures, run_with_ecr_timeouts

HOUR = 3600.0
DAY = 24 * HOUR
START_UP_S = 5.0  # interpreter and botocore import, with a dozen helpers starting at once on 2 cores
BACKOFF_S = 2.0  # botocore's standard-mode back-off between attempts is under a second each
# botocore's `max_attempts` counts retries, so MAX_ATTEMPTS = 2 makes three attempts: the bounds below
# tolerate that; test_a_get_makes_the_documented_two_attempts holds the helper to its two.
ATTEMPTS = MAX_ATTEMPTS + 1


# -- in-process: the cache and its windows under a jumping clock ------------------------------------------

class Clock:
    def __init__(self, at: float = 1_700_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


class Failed(Exception):
    pass


step = st.tuples(
    st.one_of(st.floats(-3 * DAY, 3 * DAY), st.sampled_from([0.0, 1.0, -1.0, 10 * 60, 14 * 60, 16 * 60, 4 * 60, 6 * 60,
                                                             12 * HOUR, -12 * HOUR])),  # clock jump before the get
    st.sampled_from(["ok", "fail"]),  # what the token endpoint does
    st.one_of(st.floats(-HOUR, 13 * HOUR), st.sampled_from([12 * HOUR, HOUR, 60.0, 1.0, 0.0, -1.0])),  # lifetime
    st.floats(0, 120),  # how long a successful fetch takes (the clock moves meanwhile)
)


@examples(300)
@given(st.lists(step, min_size=1, max_size=25))
@example([(0.0, "ok", 12 * HOUR, 0.0), (12 * HOUR - 10 * 60, "fail", 0.0, 0.0),  # stale + outage: old token
          (7 * 60, "fail", 0.0, 0.0),  # mandatory window + outage: an error, never the old token
          (-DAY, "ok", HOUR, 0.0), (DAY, "fail", 0.0, 0.0)])  # jumps back, then past expiry
def test_a_jumping_clock_never_gets_an_expired_or_expiring_token_served(
        steps: list[tuple[float, str, float, float]]) -> None:
    clock = Clock()
    with tempfile.TemporaryDirectory() as folder:
        cache = TokenCache(folder, clock)
        for jump, outcome, lifetime, duration in steps:
            clock.at += jump
            before = cache.read("k")
            state = before.state(clock()) if before is not None else None
            fetched: list[tokens.Token] = []
            failed: list[bool] = []

            def fetch(outcome: str = outcome, lifetime: float = lifetime, duration: float = duration,
                      fetched: list[tokens.Token] = fetched, failed: list[bool] = failed) -> tokens.Token:
                started = clock()
                if outcome == "fail":
                    failed.append(True)
                    raise Failed("endpoint down")
                clock.at += duration
                token = tokens.Token("u", f"t{len(steps)}-{clock.at}-{lifetime}", clock() + lifetime, started)
                fetched.append(token)
                return token

            try:
                served = get_token(cache, "k", "srv", fetch)
            except Failed:
                assert failed, "an error without a failed fetch"
                assert state not in (tokens.FRESH, tokens.STALE), f"a {state} token was not served on failure"
                continue
            if state == tokens.FRESH:
                assert not fetched and not failed and before is not None and served.secret == before.secret
            if fetched:
                assert served is fetched[0], "a fresh fetch was not what got served"
                cached = cache.read("k")
                if fetched[0].state(clock()) == tokens.EXPIRED:
                    assert cached is None or cached.secret != served.secret, "an expired token was cached"
            else:
                assert before is not None and served.secret == before.secret
                assert served.state(clock()) in (tokens.FRESH, tokens.STALE), \
                    f"served a cached token that is {served.state(clock())} at the clock's time"
                if failed:
                    assert state == tokens.STALE


def test_a_slow_failed_refresh_in_the_advisory_window_never_serves_a_token_that_expired_meanwhile(
        tmp_path: Path) -> None:
    clock = Clock(0.0)
    cache = TokenCache(str(tmp_path), clock)
    cache.write("k", tokens.Token("u", "short-lived", 60.0, 0.0), "srv")  # a 60 s token (exec ttl = 60)
    clock.at = 35.0  # 25 s left: stale (advisory window from 30 s left), not yet expiring (15 s)

    def slow_failure() -> tokens.Token:
        clock.at += 30.0  # the command hangs until its timeout, then fails
        raise Failed("timed out")

    try:
        served = get_token(cache, "k", "srv", slow_failure)
    except Failed:
        return  # an error is a correct answer here
    assert served.state(clock()) != tokens.EXPIRED, f"served a token that expired {clock() - 60:.0f} s ago"


def test_a_cache_entry_with_a_nan_expiry_is_a_miss(tmp_path: Path) -> None:
    clock = Clock()
    cache = TokenCache(str(tmp_path), clock)
    cache.write("k", tokens.Token("u", "nan-token", math.nan, clock()), "srv")
    clock.at += 10 * 365 * DAY
    calls: list[int] = []

    def fetch() -> tokens.Token:
        calls.append(1)
        return tokens.Token("u", "new", clock() + HOUR, clock())

    assert get_token(cache, "k", "srv", fetch).secret == "new"
    assert calls == [1]


# -- process level: loopback endpoints that misbehave ----------------------------------------------------

class Blackhole:
    """A listening socket whose accept queue is full: connections never complete (SYNs are dropped)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(filler)
        time.sleep(0.1)
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", self.port))
            raise AssertionError("the black hole accepted a connection")
        except TimeoutError:
            pass
        finally:
            probe.close()
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.sock.close()


class RawServer:
    """Accepts connections and hands each to `handle` in a thread; counts them."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.handle = handle
        self.closed = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


def reset_at_once(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST


def trickle(closed: threading.Event) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 100000\r\n\r\n")
        while not closed.is_set():  # one byte every 0.3 s: no single read ever waits for the read timeout
            conn.sendall(b" ")
            time.sleep(0.3)
    return handle


def refused_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"




@pytest.fixture
def quiet_fake_ecr() -> Iterator[Callable[[], FakeEcr]]:
    """FakeEcr instances that do not print a traceback when a timed-out client hangs up."""
    made: list[FakeEcr] = []

    def make() -> FakeEcr:
        fake = FakeEcr()
        fake.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.close()


def edit_entry(folder: Path, left: float | None = None, **fields: float) -> str:
    """Rewrite the cache entry in `folder`: `left` s to live on a 12-hour token, or raw fields."""
    entry = next(folder.glob("ecr*.json"))
    doc = json.loads(entry.read_bytes())
    if left is not None:
        doc["expires_at"], doc["obtained_at"] = time.time() + left, time.time() - 12 * HOUR + left
    doc.update(fields)
    entry.write_text(json.dumps(doc))
    return str(doc["secret"])


def test_broken_endpoints_answer_within_the_bound_and_serve_only_valid_tokens(
        tmp_path: Path, quiet_fake_ecr: Callable[[], FakeEcr]) -> None:
    healthy = quiet_fake_ecr()
    seed = tmp_path / "seed"
    seeded = run_helper("get", ECR_HOST, env=aws_env(healthy.url, SWITCHBOARD_CACHE_DIR=str(seed)))
    assert seeded.code == 0  # a cached 12-hour token
    slow, failing, garbage, denied = quiet_fake_ecr(), quiet_fake_ecr(), quiet_fake_ecr(), quiet_fake_ecr()
    slow.delay = READ_TIMEOUT_S + 15  # beyond the read timeout on both attempts
    failing.mode, garbage.mode, denied.mode = "500", "garbage", "denied"
    hole, reset = Blackhole(), RawServer(reset_at_once)
    read_bound = ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + BACKOFF_S + START_UP_S
    connect_bound = ATTEMPTS * CONNECT_TIMEOUT_S + BACKOFF_S + START_UP_S
    quick = START_UP_S + BACKOFF_S + 3

    # name: (endpoint, how the cached entry looks (None: no cache), expected answer, bound in seconds)
    scenarios: dict[str, tuple[str, Callable[[Path], str] | None, str, float]] = {
        "cold, slow": (slow.url, None, "not-found", read_bound),
        "cold, black hole": (hole.url, None, "not-found", connect_bound),
        "cold, 500": (failing.url, None, "not-found", quick),
        "cold, garbage": (garbage.url, None, "not-found", quick),
        "cold, denied": (denied.url, None, "not-found", quick),
        "cold, refused": (refused_url(), None, "not-found", quick),
        "cold, reset": (reset.url, None, "not-found", quick),
        "stale, slow": (slow.url, lambda f: edit_entry(f, left=600), "old", read_bound),
        "stale, black hole": (hole.url, lambda f: edit_entry(f, left=600), "old", connect_bound),
        "stale, garbage": (garbage.url, lambda f: edit_entry(f, left=600), "old", quick),
        "expiring, 500": (failing.url, lambda f: edit_entry(f, left=60), "not-found", quick),
        "clock jumped past expiry, 500": (failing.url, lambda f: edit_entry(f, left=-1), "not-found", quick),
        "clock jumped past expiry, healthy": (healthy.url, lambda f: edit_entry(f, left=-1), "new", quick),
        "clock jumped back a day, 500": (failing.url, lambda f: edit_entry(
            f, obtained_at=time.time() + DAY, expires_at=time.time() + DAY + 12 * HOUR), "old", quick),
    }

    def run(name: str) -> tuple[str, Result, float, str]:
        endpoint, prepare, _, _ = scenarios[name]
        cache = tmp_path / name.replace(" ", "-").replace(",", "")
        old = ""
        if prepare is not None:
            shutil.copytree(seed, cache)
            old = prepare(cache)
        started = time.monotonic()
        result = run_helper("get", ECR_HOST, env=aws_env(endpoint, SWITCHBOARD_CACHE_DIR=str(cache)),
                            timeout=read_bound + 30)
        return name, result, time.monotonic() - started, old

    started = time.monotonic()
    with ThreadPoolExecutor(len(scenarios)) as pool:
        outcomes = list(pool.map(run, scenarios))
    wall = time.monotonic() - started
    try:
        problems = []
        for name, result, elapsed, old in outcomes:
            expected, bound = scenarios[name][2], scenarios[name][3]
            if result.err:
                problems.append(f"{name}: stderr {result.err[:200]!r}")
            if elapsed > bound:
                problems.append(f"{name}: answered after {elapsed:.1f} s, bound {bound:.0f} s")
            if expected == "not-found":
                if (result.code, result.out) != (1, NOT_FOUND + "\n"):
                    problems.append(f"{name}: {result.code} {result.out[:200]!r}, expected not-found")
                continue
            if result.code != 0:
                problems.append(f"{name}: {result.out[:200]!r}, expected a token")
                continue
            secret = json.loads(result.out)["Secret"]
            if (expected == "old") != (secret == old):
                problems.append(f"{name}: served {secret!r} (cached: {old!r}), expected the {expected} token")
        assert not problems, "\n".join(problems)
        # three gets met the 500s (cold, expiring, past expiry); the clock that jumped back made none
        assert 3 * MAX_ATTEMPTS <= failing.count() <= 3 * ATTEMPTS
        assert 2 * MAX_ATTEMPTS <= slow.count() <= 2 * ATTEMPTS
    finally:
        hole.close()
        reset.close()
    figures("broken endpoints", scenarios=len(scenarios), wall_s=round(wall, 1),
            slowest={n: round(e, 1) for n, _, e, _ in outcomes if e > quick})


def test_a_trickling_endpoint_cannot_hold_a_get_past_the_bound(tmp_path: Path) -> None:
    """With the timeouts scaled down to 1 s, the same arithmetic as the documented bound must hold."""
    closed = threading.Event()
    server = RawServer(trickle(closed))
    try:
        bound = ATTEMPTS * (1 + 1) + BACKOFF_S + START_UP_S
        proc, elapsed = run_with_ecr_timeouts(1, 1, ["get"], ECR_HOST.encode(),
                                              aws_env(server.url, SWITCHBOARD_CACHE_DIR=str(tmp_path / "cache")),
                                              timeout=bound + 5)
    finally:
        closed.set()
        server.close()
    assert proc is not None, f"still waiting after {elapsed:.0f} s: killed"
    assert (proc.returncode, proc.stdout) == (1, (NOT_FOUND + "\n").encode())
    assert elapsed < bound


def test_a_get_makes_the_documented_two_attempts(tmp_path: Path, quiet_fake_ecr: Callable[[], FakeEcr]) -> None:
    failing = quiet_fake_ecr()
    failing.mode = "500"
    result = run_helper("get", ECR_HOST, env=aws_env(failing.url, SWITCHBOARD_CACHE_DIR=str(tmp_path / "cache")))
    assert result.out == NOT_FOUND + "\n"
    assert failing.count() == MAX_ATTEMPTS == 2
