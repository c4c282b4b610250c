"""`kubelet-config`: a kubelet CredentialProviderConfig (`kubelet.config.k8s.io/v1`) for the routes in force.

Rules (the kubelet's side is FLEET.md 1.3 and 1.4, `pkg/credentialprovider/plugin/config.go` and `keyring.go`):

* `matchImages` is every pattern of the routing table (`router.all_routes`) whose route is not `none`, in the
  table's order, each text once (the first route with that text decides, so a `none` route takes its pattern
  out); then the hosts the static store lists. An env preset's host is there only when the preset would answer
  it (its variables set) or the static store has an entry for it: otherwise the plugin could only say nothing.
* A glob only selects which images the kubelet runs the plugin for, so a wider glob costs one exec, a narrower
  one loses credentials. Our `*` inside a label is one or more characters, the kubelet's zero or more: wider,
  kept. But our pattern without a port matches the host on any port, and the kubelet's glob without a port
  only the portless host: the portless glob is emitted with a warning for a routes file's pattern (the
  built-in cloud routes and env presets are never used with ports: no warning for them).
* A stored entry is emitted as its canonical key, `host[:port][/path]` (the kubelet matches `host/path` as a
  prefix), unless a glob already emitted covers it, or its route is `none`. An entry that names no host is
  left out with a warning; a store that cannot be read is a warning, and the routes still make the file.
* No glob at all is an error: the kubelet requires at least one.
* The document is written by hand (no YAML library in helper/): every string a double-quoted scalar with
  JSON's escapes, which YAML reads the same. Warnings go to stderr, one line each; stdout is the document
  only, and an error leaves stdout empty (the row sends errors to stderr), so `> file` never captures one.
"""

from __future__ import annotations

import argparse
import os
from typing import IO

from .. import NAME, hosts, inventory
from ..actions import Switchboard
from ..durations import parse_go as parse_go_duration
from ..errors import HelperError, UsageError
from ..patterns import Pattern
from ..pod import ANNOTATIONS
from ..route import RouteSpec
from ..router import BUILTIN, all_routes, route_for
from .kubelet import MAX_STATIC_CACHE_S

DESCRIPTION = f"""Prints on stdout the file the kubelet's --image-credential-provider-config names,
for this helper installed as NAME (default {NAME}) in its
--image-credential-provider-bin-dir; the kubelet runs it as `NAME kubelet`.
matchImages: the routes in force (routes files, built-in cloud routes, env
presets whose variables are set) and the hosts the static store holds.
Warnings (a route that also serves other ports, an entry left out) go to stderr.

Run it as the user the kubelet runs as (root), in the environment the kubelet
will have: the routes and the store it sees are the ones that count."""

PLUGIN_API_VERSION = "credentialprovider.kubelet.k8s.io/v1"
PLUGIN_ARGS = ("kubelet",)  # the plugin front end's word
DEFAULT_CACHE_DURATION = "5m"  # the kubelet caches a response this long when the plugin gives no cacheDuration
# The service-account annotations the cloud routes read in KEP-4412 mode (helper/pod.py): the role, the
# Google service account, the Entra client and tenant. Optional, so a pod without them still gets the plugin.
SA_ANNOTATION_KEYS = ANNOTATIONS

# What a glob may hold: our patterns' characters, a port's, a path's, an IPv6 literal's brackets (url.Parse and
# SplitHostPort take those off before any filepath.Match). No `?` or `\\`: filepath.Match's syntax, not ours.
_GLOB_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.*:/[]")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The provider's name, its cache duration, the KEP-4412 token mode and the routes file's variable."""
    parser.add_argument("--name", default=NAME, metavar="NAME",
                        help=f"the provider's name: the helper's file name in the kubelet's bin dir (default {NAME})")
    parser.add_argument("--default-cache-duration", default=DEFAULT_CACHE_DURATION, metavar="DUR",
                        help="how long the kubelet keeps an answer that names no duration, as a Go duration "
                             f"such as 10m, 1h30m or 0 (default {DEFAULT_CACHE_DURATION})")
    parser.add_argument("--service-account-audience", metavar="AUD",
                        help="KEP-4412: the kubelet passes the pod's service-account token for audience AUD "
                             "(feature gate KubeletServiceAccountTokenForCredentialProviders)")
    parser.add_argument("--require-service-account", action="store_true",
                        help="with --service-account-audience: only for pods whose service account is known")
    parser.add_argument("--config-env", action="store_true",
                        help="pass the routes file in force (SWITCHBOARD_CONFIG) and the SWITCHBOARD_SYSTEM_CONFIG, "
                             "_DATA_DIR, _CACHE_DIR and _STORE set here to the plugin (never the passphrase)")
    parser.add_argument("--static-cache", type=int, default=None, metavar="SECONDS",
                        help="the plugin's `kubelet --static-cache`: how long the kubelet keeps a stored "
                             "secret's answer (default: the plugin's, 300)")


def _quote(text: str) -> str:
    """`text` as a double-quoted scalar: JSON's escapes, every non-ASCII character escaped (YAML reads \\u and
    \\U; it would take a raw U+2028 as a line break)."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif char in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[char])
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _check_arguments(args: argparse.Namespace) -> None:
    name = args.name
    if not name or name in (".", "..") or "/" in name or " " in name or not name.isprintable():
        raise UsageError(f"kubelet-config: --name {name!r} must be a file name: no '/', no spaces, not '.' or '..'")
    try:
        seconds = parse_go_duration(args.default_cache_duration)
    except ValueError as exc:
        raise UsageError(f"kubelet-config: --default-cache-duration: {exc}; write a Go duration such as 5m, "
                         "1h30m or 0") from None
    if seconds < 0:
        raise UsageError(f"kubelet-config: --default-cache-duration {args.default_cache_duration!r} is negative; "
                         "the kubelet wants 0 or more")
    if args.service_account_audience is not None and not args.service_account_audience.strip():
        raise UsageError("kubelet-config: --service-account-audience must not be empty")
    if args.require_service_account and args.service_account_audience is None:
        raise UsageError("kubelet-config: --require-service-account needs --service-account-audience AUD")
    if args.static_cache is not None and not 0 <= args.static_cache <= MAX_STATIC_CACHE_S:
        raise UsageError(f"kubelet-config: --static-cache must be from 0 to {MAX_STATIC_CACHE_S} seconds")


_warn = inventory.warn
# a routes file's route for a built-in cloud pattern (a per-pod gcp route for `*-docker.pkg.dev`) is as portless
_BUILTIN_TEXTS = frozenset(text for _, texts in BUILTIN for text in texts)
# what --config-env passes on besides the routes file: where the plugin finds its routes, store and cache
PASSED_ON = ("SWITCHBOARD_SYSTEM_CONFIG", "SWITCHBOARD_DATA_DIR", "SWITCHBOARD_CACHE_DIR", "SWITCHBOARD_STORE")


def _builtin(spec: RouteSpec) -> bool:
    """A built-in cloud route or env preset (a routes file's route has `file:line` as its source)."""
    return spec.source.startswith("built-in")


def _inexpressible(glob: str) -> str | None:
    """Why `glob` cannot be a matchImages entry, or None."""
    if not glob or not set(glob) <= _GLOB_CHARS:
        return "it has characters a kubelet glob cannot carry"
    return None


def _stored_keys(board: Switchboard, raws: list[str]) -> list[hosts.RegistryKey]:
    """The canonical form of each stored key that names a registry (`host[:port][/path]`), sorted, each once;
    the others are left out with a warning."""
    found: dict[str, hosts.RegistryKey] = {}
    for raw in sorted(raws):
        key = hosts.parse(raw)
        if key.host is None or key.canonical is None:
            _warn(f"stored entry {raw!r} names no registry host the kubelet could match; left out")
            continue
        canonical = hosts.parse(key.canonical)
        found.setdefault(key.canonical, canonical)
    return list(found.values())


def _covers(pattern: Pattern, key: hosts.RegistryKey) -> bool:
    """Whether the kubelet glob of `pattern` matches every image under `key` (our match, and the same port)."""
    return key.host is not None and pattern.port == key.port and pattern.matches(key.host, key.port)


def _preset(spec: RouteSpec) -> str | None:
    """The env preset a built-in preset route stands for, else None (a routes file's `preset = ...` route is the
    user's: always emitted). Compared by name: the GitLab preset's route is built anew on every call."""
    return str(spec.params["preset"]) if _builtin(spec) and spec.backend == "env" and "preset" in spec.params else None


def _preset_answers(spec: RouteSpec, pattern: Pattern, stored: list[hosts.RegistryKey], board: Switchboard) -> bool:
    """Whether the env preset `spec` is the route in force for `pattern`'s host and would answer it: its
    variables are set, or the static store holds an entry for that host."""
    key = hosts.parse(pattern.text)
    if _preset(route_for(key, board.config).spec) != _preset(spec):
        return False  # another route claims the host: its own glob is there (or it is `none`)
    if inventory.preset_answers(spec):
        return True
    return any(entry.host == key.host and entry.port == key.port for entry in stored)


def match_images(board: Switchboard) -> list[str]:
    """The matchImages globs for the routes in force and the stored hosts; warnings on stderr."""
    stored = _stored_keys(board, inventory.stored(board))
    seen: set[str] = set()
    emitted: list[Pattern] = []
    globs: list[str] = []
    for pattern, spec in all_routes(board.config):
        if pattern.text in seen:
            continue
        seen.add(pattern.text)
        if spec.backend == "none":
            continue
        if _preset(spec) is not None and not _preset_answers(spec, pattern, stored, board):
            continue
        problem = _inexpressible(pattern.text)
        if problem:
            _warn(f"route {pattern.text} ({spec.source}) cannot be a kubelet matchImages glob: {problem}; left out")
            continue
        if pattern.port is None and not _builtin(spec) and pattern.text not in _BUILTIN_TEXTS:
            _warn(f"route {pattern.text} ({spec.source}) also serves {pattern.text}:PORT, which the kubelet cannot "
                  f'match with a glob; add "{pattern.text}:PORT" for each port you use')
        emitted.append(pattern)
        globs.append(pattern.text)
    for key in stored:
        text = key.canonical or ""
        if any(_covers(pattern, key) for pattern in emitted):
            continue
        route = route_for(key, board.config)
        if route.backend == "none":
            where = f"{route.pattern.text} ({route.spec.source})" if route.pattern else route.spec.source
            _warn(f"stored entry {text} is never used: route {where} makes it anonymous; left out")
            continue
        problem = _inexpressible(text)
        if problem:
            _warn(f"stored entry {text!r} cannot be a kubelet matchImages glob: {problem}; left out")
            continue
        globs.append(text)
    return list(dict.fromkeys(globs))


def render(args: argparse.Namespace, globs: list[str], env: dict[str, str]) -> str:
    """The CredentialProviderConfig document."""
    plugin_args = [*PLUGIN_ARGS, *([] if args.static_cache is None else ["--static-cache", str(args.static_cache)])]
    lines = [f"# The kubelet's --image-credential-provider-config, from `{NAME} kubelet-config`;",
             f"# the helper is {args.name} in the kubelet's --image-credential-provider-bin-dir.",
             "apiVersion: kubelet.config.k8s.io/v1",
             "kind: CredentialProviderConfig",
             "providers:",
             f"  - name: {_quote(args.name)}",
             f"    apiVersion: {_quote(PLUGIN_API_VERSION)}",
             "    matchImages:",
             *(f"      - {_quote(glob)}" for glob in globs),
             f"    defaultCacheDuration: {_quote(args.default_cache_duration)}",
             f"    args: [{', '.join(_quote(word) for word in plugin_args)}]"]
    if env:
        lines.append("    env:")
        for name, value in env.items():
            lines += [f"      - name: {_quote(name)}", f"        value: {_quote(value)}"]
    if args.service_account_audience is not None:
        lines += ["    tokenAttributes:",
                  f"      serviceAccountTokenAudience: {_quote(args.service_account_audience)}",
                  f"      cacheType: {_quote('ServiceAccount')}",
                  f"      requireServiceAccount: {'true' if args.require_service_account else 'false'}",
                  "      optionalServiceAccountAnnotationKeys:",
                  *(f"        - {_quote(key)}" for key in SA_ANNOTATION_KEYS)]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Print the document, or fail with one line before printing anything."""
    _check_arguments(args)
    board = Switchboard()
    globs = match_images(board)
    if not globs:
        raise HelperError("kubelet-config: no route or stored entry leaves the kubelet an image to match "
                          "(every route is `none`?); the kubelet requires at least one matchImages entry")
    env: dict[str, str] = {}
    if args.config_env:
        if board.config.path is not None:
            env["SWITCHBOARD_CONFIG"] = os.path.abspath(board.config.path)
        env.update((name, os.path.abspath(os.environ[name]) if name != "SWITCHBOARD_STORE" else os.environ[name])
                   for name in PASSED_ON if os.environ.get(name))
        if not env:
            _warn("--config-env: no routes file is in force and none of the variables is set; env is left out")
    stdout.write(render(args, globs, env))
    return 0
