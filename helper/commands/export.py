"""`export`: credentials in the shape a runtime that cannot call a helper reads (helper/export_formats.py).

Rules:
* Every host goes through the same routes as a `get`: an ECR, ACR or GCP host exports a fresh token, a
  stored host its secret. All answers are gathered before anything is written: a host with no credentials
  is an error naming it (with the cloud's reason when a token backend failed), and nothing is written.
* A token's expiry goes to stderr, one line per host (no format here has a field for it that every reader
  ignores); `--min-valid` refuses a token that expires sooner.
* The output goes to stdout, or to `--out FILE`, replaced atomically at 0600: never a partial file, and
  never more readable than a secret should be. Nothing but the requested output ever holds a secret.
"""

from __future__ import annotations

import argparse
import shlex
import time
from typing import IO

from .. import NAME, export_formats, fsutil, inventory
from ..actions import Switchboard
from ..durations import format_go, parse_go
from ..errors import CredentialsNotFound, HelperError, TokenUnavailable, UsageError
from ..export_formats import Exported
from ..hosts import split_hostport
from . import registry_key

DESCRIPTION = """Formats (for whom):
  dockerconfigjson  Podman/skopeo --authfile, Apptainer's docker-config.json, a
                    Kubernetes .dockerconfigjson
  k8s-secret        a kubernetes.io/dockerconfigjson Secret (--name, --namespace),
                    as `kubectl create secret docker-registry` makes it
  netrc             Enroot/Pyxis ($ENROOT_CONFIG_PATH/.credentials); --dynamic writes
                    $(...) passwords that ask this helper at each import
  env               one host: export lines for Apptainer, Singularity, Charliecloud
  secret            one host: the secret alone
Hosts: the HOSTs named, --all (the static store's entries and the env presets
whose variables are set) and --routes (the literal hosts of the routes files).
A token's expiry is printed on stderr."""

FORMATS = ("dockerconfigjson", "k8s-secret", "netrc", "env", "secret")
ONE_HOST = ("env", "secret")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The format, the hosts, where to write, and the formats' own options."""
    parser.add_argument("hosts", nargs="*", metavar="HOST", help="registries to export (host[:port][/path])")
    parser.add_argument("--format", required=True, choices=FORMATS, help="the shape to write")
    parser.add_argument("--all", action="store_true", help="every stored entry and env preset whose variables are set")
    parser.add_argument("--routes", action="store_true", help="every literal host of the routes files in force")
    parser.add_argument("--out", metavar="FILE", help="write FILE atomically at 0600 instead of stdout (`-`: stdout; "
                                                      "a symbolic link is replaced, not followed)")
    parser.add_argument("--min-valid", metavar="DURATION", default="0",
                        help="refuse a token that expires within DURATION (a Go duration: 30m, 2h)")
    parser.add_argument("--name", help="k8s-secret: the Secret's name")
    parser.add_argument("--namespace", help="k8s-secret: its namespace")
    parser.add_argument("--dynamic", action="store_true",
                        help=f"netrc: passwords are $({NAME} export --format secret HOST), run by Enroot at import")
    parser.add_argument("--helper", default=NAME, metavar="COMMAND",
                        help=f"netrc --dynamic: how Enroot's shell runs this helper (default {NAME}, on its PATH)")
    parser.add_argument("--realm", action="append", default=[], metavar="REGISTRY=HOST",
                        help="netrc: one more token realm host a registry needs, the registry without its port "
                             "(repeatable)")


def _check(args: argparse.Namespace) -> tuple[float, dict[str, str]]:
    """Option combinations that cannot work, refused before anything is fetched. Returns (min_valid, realms)."""
    if not args.hosts and not args.all and not args.routes:
        raise UsageError("export: name a HOST, or use --all or --routes")
    if args.format in ONE_HOST and (len(args.hosts) != 1 or args.all or args.routes):
        raise UsageError(f"export: --format {args.format} takes exactly one HOST")
    if args.format == "k8s-secret":
        if not args.name:
            raise UsageError("export: --format k8s-secret needs --name (the Secret's name)")
        export_formats.check_object_name(args.name, "--name", label=False)
        if args.namespace:
            export_formats.check_object_name(args.namespace, "--namespace", label=True)
    elif args.name or args.namespace:
        raise UsageError("export: --name and --namespace are for --format k8s-secret")
    if args.format != "netrc" and (args.dynamic or args.realm):
        raise UsageError("export: --dynamic and --realm are for --format netrc")
    if args.helper != NAME and not args.dynamic:
        raise UsageError("export: --helper is for --format netrc --dynamic")
    try:
        min_valid = parse_go(args.min_valid)
    except ValueError as exc:
        raise UsageError(f"export: --min-valid: {exc}; write a Go duration such as 30m or 2h") from None
    realms = {}
    for item in args.realm:
        registry, sep, realm = item.partition("=")
        if not sep or not registry or not realm or any(c.isspace() for c in item):
            raise UsageError(f"export: --realm {item!r} must be REGISTRY=HOST, e.g. registry.corp=auth.corp")
        split = split_hostport(registry.lower())  # curl matches host names: a port would never be used
        realms[split[0] if split else registry.lower()] = realm.lower()
    return min_valid, realms


def _names(args: argparse.Namespace, board: Switchboard) -> list[str]:
    names = [name.strip() for name in args.hosts]
    if args.all:
        names += inventory.stored(board)
        names += [pattern.text for spec in inventory.answering_presets() for pattern in spec.patterns]
    if args.routes:
        names += inventory.route_hosts(board)
    # one spelling per registry: `https://index.docker.io/v1/` and `docker.io` are one entry (hosts.parse)
    cleaned = [registry_key(name).canonical or name for name in names]
    if not cleaned:
        raise HelperError("export: no host to export (the store is empty and no env preset has its variables)")
    return list(dict.fromkeys(cleaned))


def _answer(board: Switchboard, name: str) -> Exported:
    key = registry_key(name)
    try:
        creds, _ = board.answer(key)
    except TokenUnavailable as exc:
        raise HelperError(f"export: no credentials for {name}: {exc.reason}; nothing written") from None
    except CredentialsNotFound:
        raise HelperError(f"export: no credentials for {name} (no route answers it and nothing is stored; "
                          f"`{NAME} resolve {name}` says why); nothing written") from None
    return Exported(name, key, creds)


def _expiry(entries: list[Exported], min_valid: float) -> list[str]:
    """The stderr lines saying when each token expires; UsageError for one that expires within `min_valid`."""
    now = time.time()
    lines = []
    for entry in entries:
        expires = entry.creds.expires_at
        if expires is None:
            continue
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        if expires - now < min_valid:
            raise HelperError(f"export: the token for {entry.name} expires at {stamp}, within --min-valid "
                              f"{format_go(min_valid)}; nothing written")
        lines.append(f"{entry.name}: a token, expires at {stamp} (in {format_go(expires - now)})\n")
    return lines


def _render(args: argparse.Namespace, entries: list[Exported], realms: dict[str, str]) -> str:
    if args.format == "dockerconfigjson":
        return export_formats.dockerconfigjson(entries) + "\n"
    if args.format == "k8s-secret":
        return export_formats.k8s_secret(entries, args.name, args.namespace)
    if args.format == "netrc":
        dynamic = f"{shlex.quote(args.helper)} export --format secret" if args.dynamic else None
        return export_formats.netrc(entries, dynamic, realms)
    if args.format == "env":
        return export_formats.env(entries[0])
    return export_formats.secret(entries[0])


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Gather every answer, then write the document once."""
    import sys

    min_valid, realms = _check(args)
    board = Switchboard()
    entries = [_answer(board, name) for name in _names(args, board)]
    notes = _expiry(entries, min_valid)
    text = _render(args, entries, realms)
    if args.out and args.out != "-":
        try:
            fsutil.replace_file(args.out, text.encode("utf-8"), mode=0o600)
        except OSError as exc:
            raise HelperError(f"export: cannot write {args.out}: {exc.strerror or type(exc).__name__}; "
                              "nothing written") from None
    else:
        stdout.write(text)
    sys.stderr.writelines(notes)
    return 0
