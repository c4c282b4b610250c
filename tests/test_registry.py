"""The backend registry is the one place a backend kind is named: config, the Switchboard and the frozen build
all follow the table, and a new backend is one module and one row."""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helper import config, router
from helper.actions import Switchboard
from helper.backends import registry
from helper.backends.base import Backend, Credentials
from helper.backends.registry import SECONDS, STRINGS, BackendKind, Param
from helper.backends.store import StaticStore
from helper.backends.token_base import TokenBackend
from helper.cache import TokenCache
from helper.errors import ConfigError, CredentialsNotFound
from helper.hosts import RegistryKey
from helper.route import RouteSpec
from tests.conftest import NOT_FOUND, ROOT, call, get_in_fresh_process

KINDS = ("store", "none", "env", "file", "helper", "ecr", "ecr-public", "gcp", "acr", "exec", "aws-secret")
TOKEN_KINDS = {"ecr", "ecr-public", "gcp", "acr", "exec", "aws-secret"}

# A backend written as a user of the registry would write one: its own module, nothing else touched.
PLUGIN = '''
"""A backend that reads its secret from the file a route names."""
from helper.backends.base import Backend, Credentials
from helper.errors import CredentialsNotFound


class SecretFileBackend(Backend):
    kind = "secret-file"

    def __init__(self, path, username):
        self.path = path
        self.username = username

    def get(self, key):
        try:
            with open(self.path, encoding="utf-8") as handle:
                return Credentials(self.username, handle.read().strip())
        except FileNotFoundError:
            raise CredentialsNotFound() from None
'''


def _load_plugin() -> registry.Factory:
    from switchboard_test_plugin import SecretFileBackend  # type: ignore[import-not-found]

    return lambda spec, board: SecretFileBackend(str(spec.params["path"]), str(spec.params.get("username", "bot")))


PLUGIN_ROW = BackendKind("secret-file", _load_plugin, {"path": Param(), "username": Param(), "ttl": Param(SECONDS,
                                                                                                          cap=60)},
                         token=False, requires=(frozenset({"path"}),),
                         requires_message="a secret-file route needs path = \"/run/secrets/x\"", files=("<path>",))


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin module on sys.path and its row in the table (both undone after the test)."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "switchboard_test_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "switchboard_test_plugin", raising=False)
    monkeypatch.setitem(registry.BACKENDS, "secret-file", PLUGIN_ROW)


def _board() -> Switchboard:
    return Switchboard(config.Config(None, [], None), static=StaticStore(Backend()))


def _minimal_params(row: BackendKind) -> dict[str, object]:
    """A valid parameter set for `row`: its first required set, with a value of each parameter's type."""
    samples: dict[str, object] = {SECONDS: 1, STRINGS: ["prog"]}
    need = sorted(row.requires[0]) if row.requires else []
    return {name: samples.get(row.params[name].type, (row.params[name].choices or ("x",))[0]) for name in need}


def _route(host: str, backend: str, params: dict[str, object]) -> str:
    lines = ["[[route]]", f'match = "{host}"', f'backend = "{backend}"']
    lines += [f"{name} = {json.dumps(value)}" for name, value in params.items()]
    return "\n".join(lines) + "\n"


# -- (1) a new backend is one module and one row ---------------------------------------------------------------

def test_a_backend_added_by_one_module_and_one_row_answers_a_get(plugin: None, routes: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    routes.write_text(_route("vault.example", "secret-file", {"path": str(secret), "username": "robot"}))
    assert call("get", "vault.example").json() == {"ServerURL": "vault.example", "Username": "robot",
                                                    "Secret": "s3cret"}
    secret.unlink()  # its not-found falls back to the static store, as every backend's does
    assert call("get", "vault.example").out == NOT_FOUND + "\n"


@pytest.mark.parametrize("params, expected", [
    ({}, 'route 1: a secret-file route needs path = "/run/secrets/x"'),
    ({"path": "/p", "region": "x"}, "route 1: unknown parameter 'region' for backend 'secret-file' "
                                    "(allowed: path, ttl, username)"),
    ({"path": "/p", "ttl": 61}, "route 1: 'ttl' must be a positive number of seconds, at most 60"),
    ({"path": ""}, "route 1: 'path' must be a non-empty string"),
])
def test_the_new_rows_parameters_are_validated_from_the_row(
        plugin: None, routes: Path, params: dict[str, object], expected: str) -> None:
    routes.write_text(_route("vault.example", "secret-file", params))
    assert call("get", "vault.example").out == f"{routes}:1: {expected}\n"


def test_the_new_kind_is_named_in_the_unknown_kind_error(plugin: None, routes: Path) -> None:
    routes.write_text(_route("a.io", "vault", {}))
    assert call("get", "a.io").out.rstrip("\n").endswith(", exec, aws-secret, secret-file")


# -- (2) an unknown kind is one config error, generated from the table -------------------------------------------

def test_an_unknown_kind_is_a_config_error_naming_every_kind(routes: Path) -> None:
    routes.write_text(_route("a.io", "vault", {}))
    result = call("get", "a.io")
    assert (result.code, result.out) == (1, f"{routes}:1: route 1: backend 'vault' is not one of store, none, env, "
                                            "file, helper, ecr, ecr-public, gcp, acr, exec, aws-secret\n")


def test_the_switchboard_refuses_an_unknown_kind_instead_of_falling_through_to_exec() -> None:
    spec = RouteSpec([], "vault", {"command": ["/bin/echo", "s"]}, "test")
    with pytest.raises(ConfigError) as caught:
        _board().backend(spec)
    assert str(caught.value) == registry.unknown_kind("vault")
    assert str(caught.value).endswith("is not one of store, none, env, file, helper, ecr, ecr-public, gcp, acr, exec, "
                                    "aws-secret")


def test_a_non_string_backend_is_the_same_error(routes: Path) -> None:
    routes.write_text('[[route]]\nmatch = "a.io"\nbackend = ["ecr"]\n')
    assert call("get", "a.io").out == f"{routes}:1: route 1: backend ['ecr'] is not one of store, none, env, file, " \
                                      "helper, ecr, ecr-public, gcp, acr, exec, aws-secret\n"


# -- (3) every kind named anywhere is a row ---------------------------------------------------------------------

def test_the_table_holds_exactly_the_known_kinds_in_order() -> None:
    assert tuple(registry.BACKENDS) == KINDS
    assert {name for name, row in registry.BACKENDS.items() if row.token} == TOKEN_KINDS
    assert all(name == row.name for name, row in registry.BACKENDS.items())


def test_every_builtin_route_kind_is_a_row() -> None:
    builtin = {kind for kind, _ in router.BUILTIN} | {spec.backend for spec in router.builtin_routes()}
    assert builtin == {"ecr", "ecr-public", "gcp", "acr"}
    assert builtin <= set(registry.BACKENDS)
    assert router.DEFAULT_ROUTE.backend in registry.BACKENDS


@pytest.mark.parametrize("kind", KINDS)
def test_config_accepts_each_row_with_its_minimal_parameters_and_only_its_parameters(kind: str) -> None:
    row = registry.BACKENDS[kind]
    parsed = config.parse(_route("a.io", kind, _minimal_params(row)), "routes.toml")
    assert [spec.backend for spec in parsed.routes] == [kind]
    assert config.PARAMS[kind] == frozenset(row.params)
    if row.requires:
        with pytest.raises(ConfigError, match="route 1: " + row.requires_message.replace("(", r"\(")
                           .replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
            config.parse(_route("a.io", kind, {}), "routes.toml")


def test_env_presets_agree_with_the_env_backend() -> None:
    from helper.backends import env

    assert config.ENV_PRESETS == registry.BACKENDS["env"].params["preset"].choices == tuple(env.PRESETS)
    variables = {name for preset in env.PRESETS.values() for names in preset[1:] for name in names}
    assert variables <= set(registry.BACKENDS["env"].env)


def test_declared_defaults_agree_with_the_backend_modules() -> None:
    from helper.backends import aws_secret, delegate, exec, gcp

    assert registry.BACKENDS["helper"].params["timeout"].default == delegate.DEFAULT_TIMEOUT_S
    assert registry.BACKENDS["exec"].params["timeout"].default == exec.DEFAULT_TIMEOUT_S
    assert registry.BACKENDS["gcp"].params["scopes"].default == gcp.DEFAULT_SCOPES
    assert registry.BACKENDS["aws-secret"].params["ttl"].default == aws_secret.DEFAULT_TTL_S


# -- (4) the frozen build keeps what the table says --------------------------------------------------------------

def test_the_spec_keeps_exactly_the_botocore_services_the_table_names() -> None:
    tree = ast.parse((ROOT / "packaging" / "switchboard.spec").read_text(encoding="utf-8"))
    values = [ast.literal_eval(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == "BOTOCORE_SERVICES" for t in node.targets)]
    assert len(values) == 1
    table = set().union(*(row.botocore_services for row in registry.BACKENDS.values()))
    assert values[0] == table == {"ecr", "ecr-public", "secretsmanager", "sts", "sso", "sso-oidc", "signin"}


def test_every_loader_imports_its_module_literally() -> None:
    tree = ast.parse(Path(inspect.getsourcefile(registry) or "").read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
             for alias in node.names} | {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"importlib", "import_module", "__import__"}  # PyInstaller cannot follow those
    for name, row in registry.BACKENDS.items():
        body = ast.parse(textwrap.dedent(inspect.getsource(row.loader)))
        modules = [node.module for node in ast.walk(body) if isinstance(node, ast.ImportFrom) and node.level == 1]
        assert modules or name == "store", name  # store hands back the Switchboard's own static store


# -- (5) each loader builds a working backend --------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_each_loader_builds_its_backend(kind: str) -> None:
    board = _board()
    spec = config.parse(_route("a.io", kind, _minimal_params(registry.BACKENDS[kind])), "r").routes[0]
    backend = board.backend(spec)
    assert backend is board.static if kind == "store" else isinstance(backend, Backend)
    if kind == "none":
        assert type(backend) is Backend
    elif kind != "store":
        assert backend.kind == kind
    assert isinstance(backend, TokenBackend) == (kind in TOKEN_KINDS)
    if isinstance(backend, TokenBackend):
        assert backend.spec is spec and isinstance(backend.cache, TokenCache)


def test_the_built_backends_answer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    board, key = _board(), RegistryKey("a.io")
    monkeypatch.setenv("NGC_API_KEY", "nvapi-x")
    env_backend = registry.build(RouteSpec([], "env", {"preset": "ngc"}, "t"), board)
    assert env_backend.get(key) == Credentials("$oauthtoken", "nvapi-x")
    (tmp_path / "pw").write_text("pw\n")
    file_backend = registry.build(RouteSpec([], "file", {"secret_file": str(tmp_path / "pw"),
                                                                "username": "u"}, "t"), board)
    assert file_backend.get(key) == Credentials("u", "pw")
    with pytest.raises(CredentialsNotFound):
        registry.build(RouteSpec([], "none", {}, "t"), board).get(key)
    helper = registry.build(RouteSpec([], "helper", {"helper": "pass"}, "t"), board)
    timed = registry.build(RouteSpec([], "helper", {"helper": "pass", "timeout": 3}, "t"), board)
    assert (getattr(helper, "timeout", None), getattr(timed, "timeout", None)) == (10.0, 3.0)


# -- the hot path ------------------------------------------------------------------------------------------------

def test_reading_the_table_imports_no_backend_module() -> None:
    probe = "import sys, helper.config\nprint(sorted(m for m in sys.modules if m.startswith('helper.backends')))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert ast.literal_eval(out) == ["helper.backends", "helper.backends.registry"]


def test_a_get_imports_only_its_own_backend_module(routes: Path) -> None:
    routes.write_text(_route("nvcr.io", "env", {"preset": "ngc"}))
    code, out, modules = get_in_fresh_process("nvcr.io", dict(os.environ, NGC_API_KEY="nvapi-x"))
    assert (code, json.loads(out)["Secret"]) == (0, "nvapi-x")
    others = {f"helper.backends.{name}" for name in ("ecr", "gcp", "acr", "exec", "delegate", "mounted", "token_base",
                                                     "aws_client", "aws_secret")}
    assert "helper.backends.env" in modules and not modules & others


# how a token is fetched or a command found, not whose token it is: a change never makes a cached token wrong
HOW_NOT_WHO = {"HTTPS_PROXY", "NO_PROXY", "PATH"}


def test_what_every_token_backend_reads_is_in_the_launchers_fingerprint() -> None:
    # the launcher repeats token answers only: a variable a token row reads that it neither fingerprints nor
    # declares irrelevant would let it repeat an answer Python would no longer give
    from helper import envrules

    unseen = []
    for row in registry.BACKENDS.values():
        for name in row.env if row.token else ():
            if name.startswith("<") or name in HOW_NOT_WHO:
                continue
            probe = name[:-1] + "ANY" if name.endswith("*") else name
            if not envrules.fingerprinted(probe) and name not in envrules.IRRELEVANT:
                unseen.append(f"{row.name}: {name}")
    assert unseen == []
    # control: a row naming a variable outside the fingerprint is caught
    assert not envrules.fingerprinted("VAULT_ADDR") and "VAULT_ADDR" not in envrules.IRRELEVANT
