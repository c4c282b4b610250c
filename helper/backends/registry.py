"""Every backend kind in one table: how to load it, what its routes may say, and what it reads.

A new backend is one module and one row in `BACKENDS`: `config` validates routes from the row, the
`Switchboard` builds the backend with the row's loader, and tests/test_registry.py holds the PyInstaller
spec (botocore's service models) and the built-in routes to the table.

Rules:
* A loader imports its module with a literal `from .x import X` inside the function: PyInstaller follows
  only literal imports (never importlib by string), and a module-level import would put every backend,
  and the SDK each one wraps, on every `get`.
* This module is imported on every `get` (through `config`): it imports only `errors`, and its rows are
  small `__slots__` classes, not dataclasses (`import dataclasses` pulls in `inspect`, several ms).
* `env` and `files` describe what a backend reads, for people and tests: variable names, prefixes
  (`AWS_*`), or `<param>` for the variable or file a route parameter names.
"""

from __future__ import annotations

from ..errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from ..pod import PodIdentity
    from ..route import RouteSpec
    from .base import Backend
    from .token_base import TokenBackend

    class Board(Protocol):
        """What a factory may use of the `Switchboard`: the static store, and the pod a kubelet asks for."""

        @property
        def static(self) -> Backend: ...

        @property
        def pod(self) -> PodIdentity | None: ...

    #: builds a route's backend; `board` gives the static store and the pod (token backends only use it)
    Factory = Callable[[RouteSpec, Board], Backend]

# Route parameter types, as `config` checks them (the text is the error message's wording).
STRING = "string"  # a non-empty string
SECONDS = "seconds"  # a positive number of seconds, at most the parameter's cap
STRINGS = "strings"  # a non-empty list of non-empty strings

MAX_TIMEOUT_S = 300  # a helper call that waits longer than 5 minutes is a hang, whatever the route says
MAX_TTL_S = 30 * 24 * 3600  # a cached secret older than 30 days is no longer a token


class Param:
    """One route parameter: its type, the cap of a SECONDS value, its default and its allowed values."""

    __slots__ = ("cap", "choices", "default", "type")

    def __init__(self, type: str = STRING, *, cap: int = 0, default: object = None,
                 choices: tuple[str, ...] = ()) -> None:
        self.type = type
        self.cap = cap
        self.default = default  # descriptive: the backend module applies it (a test keeps both equal)
        self.choices = choices


class BackendKind:
    """One row: a backend kind's loader, route parameters, requirements and what it reads."""

    __slots__ = ("botocore_services", "env", "files", "loader", "name", "params", "requires", "requires_message",
                 "token")

    def __init__(self, name: str, loader: Callable[[], Factory], params: dict[str, Param], *, token: bool,
                 requires: tuple[frozenset[str], ...] = (), requires_message: str = "",
                 env: tuple[str, ...] = (), files: tuple[str, ...] = (),
                 botocore_services: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.loader = loader  # imports the module (literally) and returns its factory
        self.params = params
        self.token = token  # a token backend (cached, short-lived secrets) rather than a static one
        self.requires = requires  # alternative sets of parameters; a route must carry one of them
        self.requires_message = requires_message  # the config error when it carries none
        self.env = env
        self.files = files
        self.botocore_services = botocore_services  # the service models the frozen build must keep


# -- loaders: each returns build(spec, board) -> Backend, constructing exactly what the route asks for --

def _store() -> Factory:
    return lambda spec, board: board.static


def _none() -> Factory:
    from .base import Backend

    return lambda spec, board: Backend()


def _env() -> Factory:
    from .env import EnvBackend

    return lambda spec, board: EnvBackend.from_params(spec.params)


def _file() -> Factory:
    from .mounted import MountedFileBackend

    return lambda spec, board: MountedFileBackend(spec.params)


def _helper() -> Factory:
    from .delegate import DEFAULT_TIMEOUT_S, DelegateBackend

    def build(spec: RouteSpec, board: Board) -> Backend:
        timeout = spec.params.get("timeout", DEFAULT_TIMEOUT_S)
        return DelegateBackend(str(spec.params["helper"]), float(timeout))  # type: ignore[arg-type]

    return build


def _cached(cls: type[TokenBackend]) -> Factory:
    def build(spec: RouteSpec, board: Board) -> Backend:
        from ..cache import TokenCache

        return cls(spec, TokenCache(), board.pod)

    return build


def _ecr() -> Factory:
    from .ecr import EcrBackend

    return _cached(EcrBackend)


def _ecr_public() -> Factory:
    from .ecr import EcrPublicBackend

    return _cached(EcrPublicBackend)


def _gcp() -> Factory:
    from .gcp import GcpBackend

    return _cached(GcpBackend)


def _acr() -> Factory:
    from .acr import AcrBackend

    return _cached(AcrBackend)


def _exec() -> Factory:
    from .exec import ExecBackend

    return _cached(ExecBackend)


def _aws_secret() -> Factory:
    from .aws_secret import AwsSecretBackend

    return _cached(AwsSecretBackend)


# -- the table ---------------------------------------------------------------------------------------------

_AWS_PARAMS = ("profile", "role_arn", "external_id", "session_name")
_AWS_ENV = ("AWS_*",)  # botocore's whole chain: keys, profiles, SSO, web identity, container and instance roles
_AWS_FILES = ("~/.aws/config ($AWS_CONFIG_FILE)", "~/.aws/credentials ($AWS_SHARED_CREDENTIALS_FILE)",
              "~/.aws/sso/cache/", "$AWS_WEB_IDENTITY_TOKEN_FILE")
# the clients the helper creates (ecr, ecr-public or secretsmanager, sts for role_arn), and those botocore's
# credential chain creates: sts (web identity), sso and sso-oidc (SSO profiles), signin (`aws login` profiles)
_AWS_CHAIN_SERVICES = frozenset({"sts", "sso", "sso-oidc", "signin"})
_HTTP_ENV = ("HTTPS_PROXY", "NO_PROXY")  # urllib and requests read both spellings

_ROWS = (
    BackendKind("store", _store, {}, token=False,
                env=("SWITCHBOARD_STORE", "SWITCHBOARD_DATA_DIR", "SWITCHBOARD_PASSPHRASE", "XDG_DATA_HOME",
                     "LOCALAPPDATA", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "PYTHON_KEYRING_BACKEND"),
                files=("the OS keychain", "the encrypted store in the data folder")),
    BackendKind("none", _none, {}, token=False),
    BackendKind("env", _env, {"preset": Param(choices=("ngc", "ghcr", "dockerhub", "gitlab", "quay")),
                              "username": Param(), "username_env": Param(), "secret_env": Param()},
                token=False,
                requires=(frozenset({"preset"}), frozenset({"secret_env", "username"}),
                          frozenset({"secret_env", "username_env"})),
                requires_message="an env route needs secret_env and username (or username_env), or a preset",
                # the presets' variables (helper/backends/env.py PRESETS; a test keeps both equal)
                env=("<secret_env>", "<username_env>", "NGC_API_KEY", "GITHUB_ACTOR", "GITHUB_USERNAME",
                     "GITHUB_TOKEN", "DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN", "DOCKERHUB_PASSWORD",
                     "CI_REGISTRY", "CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD", "QUAY_USERNAME", "QUAY_PASSWORD")),
    BackendKind("file", _file, {"username": Param(), "username_file": Param(), "secret_file": Param(),
                                "dockerconfigjson": Param()},
                token=False,
                requires=(frozenset({"dockerconfigjson"}), frozenset({"secret_file", "username"}),
                          frozenset({"secret_file", "username_file"})),
                requires_message="a file route needs dockerconfigjson, or secret_file with username or username_file",
                files=("<dockerconfigjson>", "<secret_file>", "<username_file>")),
    BackendKind("helper", _helper, {"helper": Param(),
                                    "timeout": Param(SECONDS, cap=MAX_TIMEOUT_S, default=10.0)},
                token=False,
                requires=(frozenset({"helper"}),),
                requires_message="a helper route needs helper = \"osxkeychain\" (the docker-credential-<name> suffix)",
                env=("PATH", "SWITCHBOARD_DELEGATE_DEPTH"),
                files=("the program docker-credential-<helper> (on PATH, or an absolute path)",)),
    BackendKind("ecr", _ecr, {**{name: Param() for name in _AWS_PARAMS}, "region": Param(), "registry": Param()},
                token=True, env=_AWS_ENV, files=_AWS_FILES,
                botocore_services=frozenset({"ecr"}) | _AWS_CHAIN_SERVICES),
    BackendKind("ecr-public", _ecr_public, {name: Param() for name in _AWS_PARAMS},
                token=True, env=_AWS_ENV, files=_AWS_FILES,
                botocore_services=frozenset({"ecr-public"}) | _AWS_CHAIN_SERVICES),
    BackendKind("gcp", _gcp, {"impersonate": Param(), "workload_identity_provider": Param(),
                              "sts_endpoint": Param(), "iam_endpoint": Param(),
                              "scopes": Param(STRINGS, default=("https://www.googleapis.com/auth/cloud-platform",))},
                token=True,
                env=("GOOGLE_*", "CLOUDSDK_CONFIG", "GCE_METADATA_*", "APPDATA", "SYSTEMDRIVE", *_HTTP_ENV),
                files=("$GOOGLE_APPLICATION_CREDENTIALS",
                       "gcloud's application_default_credentials.json ($CLOUDSDK_CONFIG)")),
    BackendKind("acr", _acr, {"tenant": Param(), "client_id": Param(), "scope": Param()},
                token=True,
                env=("AZURE_*", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IMDS_ENDPOINT", "PROGRAMDATA", *_HTTP_ENV),
                files=("$AZURE_FEDERATED_TOKEN_FILE", "the Azure Arc agent's *.key file its endpoint names")),
    BackendKind("exec", _exec, {"command": Param(STRINGS), "timeout": Param(SECONDS, cap=MAX_TIMEOUT_S, default=10.0),
                                "ttl": Param(SECONDS, cap=MAX_TTL_S), "username": Param()},
                token=True,
                requires=(frozenset({"command"}),),
                requires_message="an exec route needs command = [\"program\", \"arg\"]",
                env=("PATH", "<the command's own>"),
                files=("<command> (the program it runs)",)),
    BackendKind("aws-secret", _aws_secret, {"secret_id": Param(), "region": Param(),
                                            **{name: Param() for name in _AWS_PARAMS},
                                            "ttl": Param(SECONDS, cap=MAX_TTL_S, default=15 * 60)},
                token=True,
                requires=(frozenset({"secret_id"}),),
                requires_message='an aws-secret route needs secret_id = "NAME" (or the secret\'s ARN)',
                env=_AWS_ENV, files=_AWS_FILES,
                botocore_services=frozenset({"secretsmanager"}) | _AWS_CHAIN_SERVICES),
)

#: kind -> row, in the order error messages list them
BACKENDS: dict[str, BackendKind] = {row.name: row for row in _ROWS}


def unknown_kind(kind: object) -> str:
    """The error for a backend name no row has: it names every kind."""
    return f"backend {kind!r} is not one of {', '.join(BACKENDS)}"


def lookup(kind: str) -> BackendKind:
    """The row of `kind`; ConfigError when there is none (config refuses such a route before this)."""
    row = BACKENDS.get(kind)
    if row is None:
        raise ConfigError(unknown_kind(kind))
    return row


def build(spec: RouteSpec, board: Board) -> Backend:
    """The backend for a route, built by its kind's loader."""
    return lookup(spec.backend).loader()(spec, board)
