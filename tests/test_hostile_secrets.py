"""Secret hygiene: with SWITCHBOARD_DEBUG=1 and SWITCHBOARD_LOG set, every action and management command
keeps every secret out of stderr, the log, error messages and the argv of every process it starts; every
file it creates is 0600 in a 0700 folder (under a umask of 000); the encrypted store holds no plaintext.

Secrets come from every direction at once: `store` and `login --password-stdin` on stdin, a delegated
helper (`backend = "helper"`) and an `exec` command that print them, an `env` route (NGC_API_KEY), ECR
(AWS_SECRET_ACCESS_KEY in, a token out, against tests/fake_aws.FakeEcr), and the store's passphrase.
The delegated helper and the exec command record their own argv, their parent's (the switchboard
process) and their environment from /proc.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helper import tokens
from helper.backends.base import Credentials
from tests.conftest import Result, call, run_helper
from tests.fake_aws import ECR_HOST, FakeEcr
from tests.soak import cache_dir, data_dir, examples, figures

SECRETS = {
    "store": "sbx-store-Qm7t2Lw9",
    "login": "sbx-login-Vr4k8Pz1",
    "delegated": "sbx-delegated-Hn3c6Xy5",
    "exec": "sbx-exec-Jd9s1Fq4",
    "exec-broken": "sbx-execbroken-Tb2w7Ne8",
    "env": "sbx-env-Ka5m3Rv6",
    "aws": "sbx-aws-Zp8g4Uc2",
    "passphrase": "sbx-passphrase-Lx6h9Dj3",
    "final": "sbx-final-\u00fc<&>\"\\-Wq1e5Ys7",
    "ecr token": "token-1",
}
FROM_STDIN = ("store", "login", "delegated", "final")  # secrets only ever on the helper's stdin

RECORDER = r'''#!{python}
import json, os, sys, time

def record(kind):
    def read(path):
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    found = {{"self": read("/proc/self/cmdline"), "parent": read(f"/proc/{{os.getppid()}}/cmdline"),
             "environ": read("/proc/self/environ")}}
    with open(os.path.join({records!r}, f"{{kind}}-{{os.getpid()}}-{{time.monotonic_ns()}}.json"), "w") as out:
        json.dump(found, out)
'''

DELEGATE = RECORDER + r'''
action, db = sys.argv[1], {db!r}
record("delegate-" + action)
entries = json.load(open(db)) if os.path.exists(db) else {{}}
data = sys.stdin.read() if action != "list" else ""
if action == "store":
    doc = json.loads(data)
    if doc["Username"] == "fail-echo":
        print("cannot store " + data)
        sys.exit(1)
    entries[doc["ServerURL"]] = [doc["Username"], doc["Secret"]]
    json.dump(entries, open(db, "w"))
elif action == "get":
    key = data.strip()
    if key not in entries:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": key, "Username": entries[key][0], "Secret": entries[key][1]}}))
elif action == "erase":
    entries.pop(data.strip(), None)
    json.dump(entries, open(db, "w"))
else:
    print(json.dumps({{k: v[0] for k, v in entries.items()}}))
'''

EXEC = RECORDER + r'''
record("exec")
sys.stdin.read()
print({answer!r})
'''


class Rig:
    def __init__(self, tmp_path: Path, env: dict[str, str], fake: FakeEcr) -> None:
        self.tmp = tmp_path
        self.env = env
        self.fake = fake
        self.log = Path(env["SWITCHBOARD_LOG"])
        self.records = tmp_path / "records"
        self.runs: list[tuple[str, Result]] = []

    def run(self, argv: list[str], data: str | bytes | None = b"", allowed: tuple[str, ...] = (),
            env: dict[str, str] | None = None) -> Result:
        """Run the executable; `allowed` names the secrets its stdout may carry (a get's answer)."""
        result = run_helper(argv, data, env=env or self.env, timeout=60)
        self.runs.append((" ".join(argv) + f" <- {data!r:.80}", result))
        for name, secret in SECRETS.items():
            assert secret not in result.err, f"{argv}: the {name} secret on stderr"
            if name not in allowed:
                assert secret not in result.out, f"{argv}: the {name} secret on stdout: {result.out[:300]!r}"
        return result


def write_script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def rig(tmp_path: Path, routes: Path) -> Iterator[Rig]:
    fake = FakeEcr()
    records = tmp_path / "records"
    records.mkdir()
    python = sys.executable
    delegate = write_script(tmp_path / "docker-credential-recorder",
                            DELEGATE.format(python=python, records=str(records), db=str(tmp_path / "delegate.json")))
    good = write_script(tmp_path / "exec-good", EXEC.format(python=python, records=str(records), answer=json.dumps(
        {"Username": "robot", "Secret": SECRETS["exec"]})))
    broken = write_script(tmp_path / "exec-broken", EXEC.format(python=python, records=str(records),
                                                                answer='{"Secret": "' + SECRETS["exec-broken"]))
    routes.write_text(
        f'[[route]]\nmatch = "deleg.hostile.example"\nbackend = "helper"\nhelper = "{delegate}"\n\n'
        f'[[route]]\nmatch = "exec.hostile.example"\nbackend = "exec"\ncommand = ["{good}", "--flag"]\nttl = 600\n\n'
        f'[[route]]\nmatch = "broken.hostile.example"\nbackend = "exec"\ncommand = ["{broken}"]\nusername = "u"\n\n'
        '[[route]]\nmatch = "nvcr.io"\nbackend = "env"\npreset = "ngc"\n')
    env = dict(os.environ, SWITCHBOARD_DEBUG="1", SWITCHBOARD_LOG=str(tmp_path / "logs" / "switchboard.log"),
               SWITCHBOARD_PASSPHRASE=SECRETS["passphrase"], NGC_API_KEY=SECRETS["env"], AWS_ENDPOINT_URL=fake.url,
               AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY=SECRETS["aws"], AWS_REGION="us-east-1")
    (tmp_path / "logs").mkdir()
    old_umask = os.umask(0)  # the helper must not rely on the caller's umask for its modes
    try:
        yield Rig(tmp_path, env, fake)
    finally:
        os.umask(old_umask)
        fake.close()


def store_payload(key: str, user: str, secret: str) -> str:
    return json.dumps({"ServerURL": key, "Username": user, "Secret": secret})


def test_no_secret_leaves_by_a_side_door(rig: Rig, isolated_home: Path) -> None:
    run = rig.run
    # protocol actions on the static (passphrase-protected, encrypted) store
    assert run(["store"], store_payload("store.hostile.example", "u", SECRETS["store"])).code == 0
    assert json.loads(run(["get"], "store.hostile.example", allowed=("store",)).out)["Secret"] == SECRETS["store"]
    run(["list"], None)
    # management commands
    login = ["login", "-u", "me", "--password-stdin", "--no-verify"]  # the check is tests/test_login_check.py's
    assert run([*login, "login.hostile.example"], SECRETS["login"] + "\n").code == 0
    assert json.loads(run(["get"], "login.hostile.example", allowed=("login",)).out)["Secret"] == SECRETS["login"]
    for host in ("login.hostile.example", "deleg.hostile.example", "exec.hostile.example", "nvcr.io", ECR_HOST,
                 "broken.hostile.example"):
        assert run(["resolve", host]).code == 0
    assert run(["routes"]).code == 0
    # a delegated helper
    assert run(["store"], store_payload("deleg.hostile.example", "d", SECRETS["delegated"])).code == 0
    assert json.loads(run(["get"], "deleg.hostile.example", allowed=("delegated",)).out)["Secret"] == \
        SECRETS["delegated"]
    assert run(["erase"], "deleg.hostile.example").code == 0
    # an exec command, a broken one, an env route, ECR
    for _ in range(2):
        assert json.loads(run(["get"], "exec.hostile.example", allowed=("exec",)).out)["Secret"] == SECRETS["exec"]
    assert run(["get"], "broken.hostile.example").code == 1
    assert json.loads(run(["get"], "nvcr.io", allowed=("env",)).out)["Secret"] == SECRETS["env"]
    assert json.loads(run(["get"], ECR_HOST, allowed=("ecr token",)).out)["Secret"] == SECRETS["ecr token"]
    assert run(["resolve", ECR_HOST]).code == 0  # now with a cached token to describe
    run(["list"], None)
    # error paths with the secret in the input
    secret = SECRETS["store"]
    for bad in ('{"ServerURL":"x.example","Username":"u","Secret":"' + secret,
                '{"ServerURL":"x.example","Username":"u","Secret":["' + secret + '"]}',
                '{"ServerURL":"x.example","Username":"u","Secret":{"' + secret + '":1}}',
                '{"ServerURL":"x.example","Username":"u","Secret":"' + secret + '"} ' + secret,
                '{"ServerURL":"x.example","Secret":"' + secret + '"}',
                '{"ServerURL":"","Username":"u","Secret":"' + secret + '"}',
                '{"ServerURL":"x\\u0000y","Username":"u","Secret":"' + secret + '"}',
                '{"ServerURL":"x.example","Username":"u","Secret":"' + secret + '\\ud800"}'):
        assert run(["store"], bad).code == 1
    assert run(["store"], b'{"ServerURL":"x","Username":"u","Secret":"' + secret.encode() + b'\xff"}').code == 1
    wrong = dict(rig.env, SWITCHBOARD_PASSPHRASE="wrong-passphrase")
    assert run(["get"], "store.hostile.example", env=wrong).code == 1
    assert run(["store"], store_payload("other.example", "u", SECRETS["store"]), env=wrong).code == 1
    assert run([*login, "other.example"], SECRETS["login"], env=wrong).code == 1
    # forget, then keep one final secret in the store for the at-rest checks
    assert run(["logout", "login.hostile.example"]).code == 0
    assert run(["erase"], "store.hostile.example").code == 0
    assert run(["store"], store_payload("final.hostile.example", "f", SECRETS["final"])).code == 0
    # and the embedded default: a key-file store (no passphrase), in its own data folder
    keyfile_store = rig.tmp / "keyfile-store"
    keyfile_env = {k: v for k, v in rig.env.items() if k != "SWITCHBOARD_PASSPHRASE"}
    keyfile_env["SWITCHBOARD_DATA_DIR"] = str(keyfile_store)
    assert run(["store"], store_payload("final.hostile.example", "f", SECRETS["final"]), env=keyfile_env).code == 0
    assert run([*login, "k.example"], SECRETS["login"], env=keyfile_env).code == 0
    assert (keyfile_store / "store.key").is_file()

    # the log: written (debug said things), never a secret
    log = rig.log.read_text()
    assert "switchboard[" in log and len(log.splitlines()) >= 10
    for name, value in SECRETS.items():
        assert value not in log, f"the {name} secret in the log"

    # the processes the helper started: their argv, their parent's (switchboard's), their environment
    records = [json.loads(p.read_text()) for p in rig.records.iterdir()]
    kinds = sorted({p.name.split("-")[0] + "-" + p.name.split("-")[1] for p in rig.records.iterdir()})
    assert len(records) >= 5 and any(k.startswith("delegate-store") for k in kinds) and \
        any(k.startswith("exec") for k in kinds), kinds
    for found in records:
        for name, value in SECRETS.items():
            assert value not in found["self"] and value not in found["parent"], f"the {name} secret in an argv"
            if name in FROM_STDIN:
                assert value not in found["environ"], f"the {name} secret in a child's environment"
        assert "docker-credential-recorder" in found["self"] or "/exec-" in found["self"]
        assert "docker-credential-switchboard" in found["parent"], found["parent"]  # the parent is the helper

    # every file and folder the helper made: 0600 files in 0700 folders, even under umask 000
    made = [data_dir(isolated_home), cache_dir(isolated_home), keyfile_store]
    checked = 0
    for top in made:
        assert top.is_dir()
        for folder, _, names in os.walk(top):
            assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
            for name in names:
                mode = stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode)
                assert mode == 0o600, (os.path.join(folder, name), oct(mode))
                checked += 1
    assert stat.S_IMODE(rig.log.stat().st_mode) == 0o600

    # at rest: no stdin-borne secret in any form in the data folder; no credential in the cache
    at_rest = b"".join(p.read_bytes() for folder in (data_dir(isolated_home), keyfile_store)
                       for p in folder.iterdir() if p.is_file())
    for name in (*FROM_STDIN, "passphrase"):
        value = SECRETS[name]
        for form in (value.encode(), json.dumps(value).encode(), json.dumps(value, ensure_ascii=False).encode(),
                     base64.b64encode(value.encode()), value.encode("utf-16-le")):
            assert form not in at_rest, f"the {name} secret readable in the data folder"
    cached = b"".join(p.read_bytes() for p in cache_dir(isolated_home).iterdir() if p.is_file())
    for name in ("aws", "passphrase", *FROM_STDIN):
        assert SECRETS[name].encode() not in cached, f"the {name} secret in the token cache"
    assert call("get", "final.hostile.example").code == 1  # (the test process has no passphrase: sealed)
    figures("secret hygiene", executable_runs=len(rig.runs), child_processes_recorded=len(records),
            files_mode_checked=checked, log_lines=len(log.splitlines()), secrets=len(SECRETS))


def test_a_failing_delegate_that_echoes_its_input_does_not_leak_the_secret(rig: Rig) -> None:
    result = run_helper(["store"], store_payload("deleg.hostile.example", "fail-echo", SECRETS["delegated"]),
                        env=rig.env)
    assert result.code == 1 and result.out.count("\n") == 1
    assert SECRETS["delegated"] not in result.err
    assert SECRETS["delegated"] not in rig.log.read_text(), "the secret reached the log"
    assert SECRETS["delegated"] not in result.out, "the secret reached the error message"


# -- in-process: error text built from hostile store payloads never quotes the secret --------------------

MARKER = "sbx-marker-Gf4n8Kq2"


def mutate(doc: dict[str, object], how: str, where: int, junk: str) -> bytes:
    text = json.dumps(doc)
    end = text.index(MARKER) + len(MARKER)
    if how == "truncate":  # after the secret, so that the whole secret is still there to be quoted
        return text[: end + where % (len(text) - end + 1)].encode()
    if how == "insert":
        at = where % (len(text) + 1)
        return (text[:at] + junk + text[at:]).encode("utf-8", "surrogatepass")
    if how == "append":
        return (text + junk + MARKER).encode("utf-8", "surrogatepass")
    return text.encode() + junk.encode("utf-8", "surrogatepass") + b"\xff"


secret_docs = st.one_of(
    st.just({"ServerURL": "x.example", "Username": "u", "Secret": MARKER}),
    st.builds(lambda v: {"ServerURL": "x.example", "Username": "u", "Secret": v},
              st.sampled_from([[MARKER], {MARKER: 1}, {"a": MARKER}, [[MARKER]], MARKER + "\ud800",
                               "\ud800" + MARKER])),
    st.builds(lambda s: {"ServerURL": s, "Username": "u", "Secret": MARKER},
              st.sampled_from(["", " ", 5, None, "a\nb", "x\u0000y", ["x"]])),
    st.builds(lambda u: {"ServerURL": "x.example", "Username": u, "Secret": MARKER},
              st.sampled_from(["", None, 5, ["u"], {"u": 1}])),
)


@examples(150)
@given(secret_docs, st.sampled_from(["truncate", "insert", "append", "bytes"]), st.integers(0, 10_000),
       st.text(max_size=5))
def test_error_messages_never_quote_the_secret(tmp_path_factory: pytest.TempPathFactory,
                                               monkeypatch: pytest.MonkeyPatch, doc: dict[str, object], how: str,
                                               where: int, junk: str) -> None:
    log = tmp_path_factory.mktemp("log") / "log"
    monkeypatch.setenv("SWITCHBOARD_DEBUG", "1")
    monkeypatch.setenv("SWITCHBOARD_LOG", str(log))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        result = call("store", mutate(doc, how, where, junk))
    assert result.code in (0, 1)
    assert MARKER not in result.out and MARKER not in err.getvalue()
    assert not log.exists() or MARKER not in log.read_text()


def test_reprs_never_show_a_secret() -> None:
    creds = Credentials("user", MARKER)
    token = tokens.Token("user", MARKER, 1.0, 0.0)
    for text in (repr(creds), str(creds), repr(token), str(token), f"{creds!r} {token!r}"):
        assert MARKER not in text
