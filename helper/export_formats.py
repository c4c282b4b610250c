"""The shapes `export` writes credentials in, for runtimes that cannot call a credential helper.

Each function takes the answers (`Exported`) and returns the text; none prints, none fetches.
../shared/FLEET.md §6 has the consumers' rules:

* `dockerconfigjson`: `{"auths": {KEY: {"username", "password", "auth"}}}`, compact, with Go's key order and
  HTML escapes, byte for byte what `kubectl create secret docker-registry` encodes; Docker Hub keyed
  `https://index.docker.io/v1/` as Docker keys it. Podman's `--authfile`, skopeo's and Apptainer's
  `docker-config.json` read the same file.
* `k8s-secret`: the `kubernetes.io/dockerconfigjson` Secret that `kubectl create secret docker-registry NAME
  --dry-run=client -o yaml` prints (without its `creationTimestamp: null`).
* `netrc` (Enroot, Pyxis): `machine HOST login USER password SECRET` on one line, in that order (Enroot reads
  the password as the sixth field, and evaluates a password that starts with `$` through `sh -c "echo ..."`),
  one line per registry host and per token realm host it needs (NGC's `authn.nvidia.com`, Docker Hub's
  `auth.docker.io`, GitLab.com's `gitlab.com`). curl matches `machine` against the host name alone: no port.
* `env`: shell-quoted `export` lines for Apptainer, Singularity and Charliecloud.
* `secret`: the secret alone, for `$(...)` and pipes.
"""

from __future__ import annotations

import base64
import shlex

from .backends.base import Credentials
from .errors import UsageError
from .hosts import RegistryKey

HUB_KEY = "https://index.docker.io/v1/"  # Docker's own key for Docker Hub in config.json
# registry host -> the hosts Enroot's curl must also find in the netrc: Docker Hub's registry is
# registry-1.docker.io behind the realm auth.docker.io; NGC's realm is authn.nvidia.com; GitLab.com's gitlab.com
NETRC_HOSTS: dict[str, tuple[str, ...]] = {
    "docker.io": ("registry-1.docker.io", "auth.docker.io"),
    "nvcr.io": ("nvcr.io", "authn.nvidia.com"),
    "registry.gitlab.com": ("registry.gitlab.com", "gitlab.com"),
}
ENV_NAMES = (("APPTAINER_DOCKER_USERNAME", "APPTAINER_DOCKER_PASSWORD"),
             ("SINGULARITY_DOCKER_USERNAME", "SINGULARITY_DOCKER_PASSWORD"),
             ("CH_IMAGE_USERNAME", "CH_IMAGE_PASSWORD"))
_DNS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


class Exported:
    """One exported registry: the name the user gave (scheme cut), its parsed key and the answer."""

    __slots__ = ("creds", "key", "name")

    def __init__(self, name: str, key: RegistryKey, creds: Credentials) -> None:
        self.name = name
        self.key = key
        self.creds = creds

    def docker_key(self) -> str:
        """The `auths` key: Docker Hub as Docker writes it, anything else as given."""
        return HUB_KEY if self.key.canonical == "docker.io" else self.name


def _go_json(doc: object) -> str:
    """JSON as Go's encoding/json writes it: compact, UTF-8, `<`, `>`, `&`, U+2028 and U+2029 escaped."""
    import json

    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def dockerconfigjson(entries: list[Exported]) -> str:
    """The `.dockerconfigjson` document (Go's map order: keys sorted)."""
    auths = {}
    for entry in sorted(entries, key=Exported.docker_key):
        user, secret = entry.creds.username, entry.creds.secret
        auths[entry.docker_key()] = {"username": user, "password": secret,
                                     "auth": base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")}
    return _go_json({"auths": auths})


def check_object_name(name: str, what: str, *, label: bool) -> str:
    """A Kubernetes object name (DNS-1123 subdomain) or namespace (DNS-1123 label), else UsageError."""
    limit = 63 if label else 253
    if (not name or len(name) > limit or not set(name) <= _DNS_CHARS or (label and "." in name)
            or not name[0].isalnum() or not name[-1].isalnum()):
        kind = "a DNS-1123 label" if label else "a DNS-1123 subdomain"
        raise UsageError(f"{what} {name!r} must be {kind}: lowercase letters, digits and '-'"
                         + ("" if label else " or '.'") + f", at most {limit} characters")
    return name


def k8s_secret(entries: list[Exported], name: str, namespace: str | None) -> str:
    """The Secret, as `kubectl create secret docker-registry --dry-run=client -o yaml` lays it out."""
    data = base64.b64encode(dockerconfigjson(entries).encode("utf-8")).decode("ascii")
    lines = ["apiVersion: v1", "data:", f"  .dockerconfigjson: {data}", "kind: Secret", "metadata:",
             f"  name: {name}"]
    if namespace:
        lines.append(f"  namespace: {namespace}")
    lines.append("type: kubernetes.io/dockerconfigjson")
    return "\n".join(lines) + "\n"


def registry_host(entry: Exported) -> str:
    """The registry's host name without port (`docker.io` for every spelling of Docker Hub)."""
    return "docker.io" if entry.key.canonical == "docker.io" else (entry.key.host or entry.name).lower()


def netrc_hosts(entry: Exported) -> tuple[str, ...]:
    """The `machine` names a registry needs: its host without port, and its token realm's host."""
    host = registry_host(entry)
    return NETRC_HOSTS.get(host, (host,))


def netrc(entries: list[Exported], dynamic: str | None, realms: dict[str, str]) -> str:
    """The netrc lines. `dynamic`: the command whose output is each password (Enroot runs it at each import)
    instead of the secret; `realms`: more realm hosts, registry host (no port) -> realm host, each for a
    registry exported here."""
    unused = set(realms) - {registry_host(entry) for entry in entries}
    if unused:
        raise UsageError(f"--realm names {', '.join(sorted(unused))}, which is not a registry exported here "
                         "(write the registry's host without its port)")
    machines: dict[str, tuple[str, str, str]] = {}  # machine -> (login, password field, whence)
    for entry in entries:
        login = entry.creds.username
        if not login or any(c.isspace() for c in login):
            raise UsageError(f"{entry.name}: a netrc login cannot be empty or hold a space "
                             f"(the username is {len(login)} characters)")
        secret = entry.creds.secret
        if any(c.isspace() for c in secret):
            # not even --dynamic helps: Enroot runs `echo $(...)` unquoted, and the shell splits the output
            raise UsageError(f"{entry.name}: the secret holds white space, which no netrc password can carry "
                             "(Enroot reads the sixth field, and splits a --dynamic password too); use "
                             "--format env or dockerconfigjson for this registry")
        if dynamic is None:
            if secret.startswith("$"):
                raise UsageError(f"{entry.name}: the secret starts with '$', which Enroot would run as a shell "
                                 f"command; use --dynamic")
            field = secret
        else:
            field = f"$({dynamic} {shlex.quote(entry.name)})"
        hosts = netrc_hosts(entry)
        extra = realms.get(registry_host(entry))
        for host in (*hosts, *((extra,) if extra else ())):
            known = machines.get(host)
            if known is not None and known[:2] != (login, field):
                raise UsageError(f"{entry.name} and {known[2]} both need `machine {host}` with other credentials: "
                                 "curl matches a netrc machine by host name alone, so two ports or realms of one "
                                 "host cannot differ")
            machines[host] = (login, field, entry.name)
    return "".join(f"machine {host} login {login} password {field}\n"
                   for host, (login, field, _) in machines.items())


def env(entry: Exported) -> str:
    """`export NAME='value'` lines for Apptainer, Singularity and Charliecloud."""
    lines = []
    for user_var, secret_var in ENV_NAMES:
        lines += [f"export {user_var}={shlex.quote(entry.creds.username)}",
                  f"export {secret_var}={shlex.quote(entry.creds.secret)}"]
    return "\n".join(lines) + "\n"


def secret(entry: Exported) -> str:
    """The secret alone, newline-terminated."""
    return entry.creds.secret + "\n"
