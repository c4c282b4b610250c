"""`configure docker`: `"credsStore": "switchboard"`, or `credHelpers` entries, in Docker's config.json.

The file is `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), as the docker CLI and
docker-py read it. Every other key is kept, in its order; the previous file is copied to `config.json.bak`
(0600: it may hold plaintext logins) before the new one replaces it atomically. A new file is 0600 in a
0700 `~/.docker`, as the docker CLI makes them.

Docker Hub is `https://index.docker.io/v1/` in `credHelpers`: the key the docker CLI looks up for Hub
(any other spelling of Hub is never consulted by Docker).

Plaintext `auths` (an entry with `auth`, `password`, `identitytoken` or `registrytoken`) are hidden, not
deleted, once Docker asks the helper for those hosts: with `credsStore` the native store's answer replaces
the file's even when the helper has nothing, so every existing login would silently stop working. So when
a change would shadow such entries, nothing is written without `--force`: the report names the hosts (never
a value) and the command that moves them into the helper, and the exit code is 0 (nothing failed; the
user has a decision to make).
"""

from __future__ import annotations

import json
import os
from typing import IO, Any

from .. import NAME, authfiles, hosts
from ..errors import UsageError
from . import ConfigureError, atomic_write, make_folder, path_warning

HELPER = "switchboard"  # the credsStore / credHelpers value: Docker runs docker-credential-<value>
HUB_KEY = "https://index.docker.io/v1/"  # the docker CLI's credHelpers/auths key for Docker Hub
NEW_FILE_MODE = 0o600  # the docker CLI's own mode for config.json (it may hold logins)
NEW_FOLDER_MODE = 0o700


def config_path() -> str:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (as `import` finds it)."""
    return authfiles.docker_config_path()


def helper_key(host: str) -> str:
    """The `credHelpers` key Docker looks up for `host`: Hub's URL, else the bare lower-case `host[:port]`."""
    key = hosts.parse(host.strip())
    if key.canonical is None or key.path:
        raise UsageError(f"--hosts: {host.strip()!r} is not a registry host[:port] (e.g. ghcr.io or 127.0.0.1:5000)")
    return HUB_KEY if key.canonical == hosts.HUB else key.canonical


def load(path: str) -> tuple[bytes | None, dict[str, Any]]:
    """The file's bytes (None when missing) and its JSON object; ConfigureError for anything else."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None, {}
    except OSError as exc:
        raise ConfigureError(f"cannot read {path}: {exc.strerror}; nothing was changed") from None
    if not raw.strip():
        return raw, {}  # the docker CLI reads an empty file as {}
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno} column {exc.colno}: {exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigureError(f"{path} is not valid JSON{where}: fix or move it and run this again; "
                             "nothing was changed") from None
    if not isinstance(doc, dict):
        raise ConfigureError(f"{path} is not a JSON object: fix or move it and run this again; nothing was changed")
    for field in ("auths", "credHelpers"):
        if field in doc and not isinstance(doc[field], dict):
            raise ConfigureError(f"{path}: {field!r} is not a JSON object: fix it and run this again; "
                                 "nothing was changed")
    return raw, doc


def plaintext_hosts(doc: dict[str, Any]) -> list[str]:
    """The `auths` keys whose entry holds a secret in the file, as `import` reads them (a login, or a
    malformed one it would report; Docker's `{}` placeholders hold none)."""
    return [entry.key for entry in authfiles.entries(doc) if entry.login or entry.problem]


def _same_registry(auth_key: str, helper_keys: list[str]) -> bool:
    canonical = hosts.parse(auth_key.strip()).canonical
    return canonical is not None and any(hosts.parse(key).canonical == canonical for key in helper_keys)


def plan(doc: dict[str, Any], helper_keys: list[str] | None) -> tuple[list[str], list[str]]:
    """Change `doc` in place. (one line per change, the plaintext `auths` keys the change would shadow)."""
    changes: list[str] = []
    plaintext = plaintext_hosts(doc)
    if helper_keys is None:
        old = doc.get("credsStore")
        if old != HELPER:
            doc["credsStore"] = HELPER
            was = "" if old is None else f" (was {json.dumps(old)}: logins kept by docker-credential-{old} are no " \
                                         "longer read)"
            changes.append(f'set "credsStore": "{HELPER}"{was}')
        return changes, plaintext if changes else []
    helpers = doc.setdefault("credHelpers", {})
    changed: list[str] = []
    for key in helper_keys:
        old = helpers.get(key)
        if old != HELPER:
            helpers[key] = HELPER
            changed.append(key)
            was = "" if old is None else f" (was {json.dumps(old)})"
            changes.append(f'set "credHelpers": {{"{key}": "{HELPER}"}}{was}')
    return changes, [key for key in plaintext if _same_registry(key, changed)]


def configure(host_list: str | None, force: bool, dry_run: bool, out: IO[str]) -> int:
    """The `configure docker` command."""
    helper_keys = None
    if host_list is not None:
        helper_keys = list(dict.fromkeys(helper_key(host) for host in host_list.split(",") if host.strip()))
        if not helper_keys:
            raise UsageError("--hosts needs at least one registry host, e.g. --hosts ghcr.io,docker.io")
    path = config_path()
    raw, doc = load(path)
    changes, shadowed = plan(doc, helper_keys)
    warning = path_warning()
    if warning:
        out.write(warning + "\n")
    if not changes:
        out.write(f"{path}: nothing changed (Docker already uses {NAME} "
                  f"{'for ' + ', '.join(helper_keys) if helper_keys else 'for every registry'}).\n")
        return 0
    if shadowed and not force:
        out.write(f"warning: {path} holds plaintext logins for {', '.join(shadowed)}; after this change Docker "
                  f"would ask {NAME} for them and stop using the file's (hidden, not deleted).\n"
                  f"Move them into the helper first: {NAME} import\n"
                  f"Then run this again (or add --force to switch now and leave them in the file). "
                  "Nothing was changed.\n")
        return 0
    prefix = "would " if dry_run else ""
    out.write(f"{path}{' (dry run: nothing written)' if dry_run else ''}:\n")
    out.writelines(f"  {prefix}{line}\n" for line in changes)
    if raw is None:
        out.write(f"  {prefix}create the file (mode 0600)\n")
    if not dry_run:
        _write(path, raw, doc, out)
    if shadowed:
        out.write(f"warning: plaintext logins for {', '.join(shadowed)} stay in the file, unused by Docker now: "
                  f"run {NAME} import to move them into the helper and remove them.\n")
    return 0


def _write(path: str, raw: bytes | None, doc: dict[str, Any], out: IO[str]) -> None:
    text = json.dumps(doc, indent="\t", ensure_ascii=False) + "\n"
    if raw is None:
        make_folder(os.path.dirname(path), NEW_FOLDER_MODE)
    else:
        atomic_write(path + ".bak", raw, 0o600, keep_mode=False)  # may hold plaintext logins: 0600 whatever
        out.write(f"  previous file kept as {path}.bak\n")
    atomic_write(path, text.encode("utf-8"), NEW_FILE_MODE)
