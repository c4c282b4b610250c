"""`doctor` checks of the clients' side: the helper on PATH, Docker's config.json, Podman's drop-ins and auth files."""

from __future__ import annotations

import os
import shutil
import sys

from .. import NAME, authfiles
from ..configure import docker, podman
from ..errors import HelperError
from . import FAIL, OK, WARN, Check

HELPER = docker.HELPER  # the word Docker and Podman append to `docker-credential-`
PODMAN_TOOLS = ("podman", "buildah", "skopeo")


def checks() -> list[Check]:
    """The helper on PATH, then Docker, then Podman."""
    return [on_path(), *docker_config(), *podman_config()]


def _running() -> str | None:
    """The executable this process was started as, when it is the helper's (not pytest, not `python -c`)."""
    if getattr(sys, "frozen", False):
        # the standalone build: on Linux and macOS the C launcher beside the frozen helper (switchboard-core)
        # is what clients run, and it execs the helper; on Windows the frozen helper is the executable itself
        core = os.path.realpath(sys.executable)
        front = os.path.join(os.path.dirname(core), NAME)
        return front if os.path.isfile(front) else core
    started = sys.argv[0] if sys.argv else ""
    return os.path.realpath(started) if os.path.basename(started).startswith(NAME) else None


def on_path() -> Check:
    """Docker and Podman run `docker-credential-switchboard` from PATH: is it there, and is it this one?"""
    found = shutil.which(NAME)
    running = _running()
    if not found:
        folder = f" ({os.path.dirname(running)} holds the one running now)" if running else ""
        return Check(FAIL, "helper on PATH", f"{NAME} is not on PATH, so Docker and Podman cannot run it{folder}",
                     "add its folder (a venv's bin) to the PATH that Docker, Podman and your shell see")
    real = os.path.realpath(found)
    if running and real != running and os.path.dirname(real) != os.path.dirname(running):
        return Check(WARN, "helper on PATH", f"PATH finds {found}, not the {running} running now: "
                     "Docker and Podman run the one on PATH",
                     "remove the other copy, or put the folder of the one you mean first on PATH")
    return Check(OK, "helper on PATH", found)


def docker_config() -> list[Check]:
    """Docker's config.json: credsStore / credHelpers naming the helper, and plaintext `auths` left behind."""
    path = docker.config_path()
    try:
        raw, doc = docker.load(path)
    except HelperError as exc:
        return [Check(FAIL, "docker config", str(exc), f"fix {path} (Docker cannot read it either)")]
    if raw is None:
        return [Check(WARN, "docker config", f"{path} does not exist: Docker does not use {NAME}",
                      f"{NAME} configure docker")]
    found: list[Check] = []
    named = doc.get("credHelpers") or {}
    helped = sorted(key for key, value in named.items() if value == HELPER)
    if doc.get("credsStore") == HELPER:
        others = sorted(key for key, value in named.items() if value != HELPER)
        extra = f" (credHelpers send {', '.join(others)} elsewhere)" if others else ""
        found.append(Check(OK, "docker config", f'{path}: "credsStore": "{HELPER}"{extra}'))
    elif helped:
        found.append(Check(OK, "docker config", f"{path}: credHelpers send {', '.join(helped)} to {NAME}"
                           + (f'; every other registry to "credsStore": "{doc["credsStore"]}"'
                              if doc.get("credsStore") else "")))
    else:
        was = f' (credsStore is "{doc["credsStore"]}")' if doc.get("credsStore") else ""
        found.append(Check(WARN, "docker config", f"{path} does not name {NAME}{was}",
                           f"{NAME} configure docker (or --hosts H1,H2 for some registries only)"))
    plaintext = docker.plaintext_hosts(doc)
    shadowed = [key for key in plaintext if authfiles.uses_helper(doc, key, HELPER)]
    kept = [key for key in plaintext if key not in shadowed]
    if shadowed:
        found.append(Check(WARN, "docker plaintext", f"{path} still holds plaintext logins for "
                           f"{', '.join(shadowed)}, hidden by the helper (Docker asks {NAME} for them)",
                           f"{NAME} import (moves them into the store and removes the plaintext)"))
    if kept:
        found.append(Check(WARN, "docker plaintext", f"{path} holds plaintext logins for {', '.join(kept)}",
                           f"{NAME} import"))
    return found


def _dropin_helpers(path: str) -> list[str] | None:
    """The `credential-helpers` list of one registries.conf(.d) file, or None when it sets none (or is unreadable)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(1024 * 1024)
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
        doc = tomllib.loads(data.decode("utf-8"))
    except (OSError, ValueError):
        return None
    helpers = doc.get("credential-helpers")
    return [str(item) for item in helpers] if isinstance(helpers, list) else None


def _dropins() -> tuple[str | None, list[str] | None]:
    """The drop-in whose `credential-helpers` Podman ends up with (a later file replaces an earlier one's)."""
    in_force: tuple[str | None, list[str] | None] = (None, None)
    for folder in (os.path.dirname(podman.dropin_path(True)), os.path.dirname(podman.dropin_path(False))):
        try:
            names = sorted(name for name in os.listdir(folder) if name.endswith(".conf"))
        except OSError:
            continue
        for name in names:
            helpers = _dropin_helpers(os.path.join(folder, name))
            if helpers is not None:
                in_force = (os.path.join(folder, name), helpers)
    return in_force


def podman_config() -> list[Check]:
    """Podman, Buildah, Skopeo: a drop-in (or an auth file's credHelpers) naming the helper; plaintext auth files."""
    found: list[Check] = []
    path, helpers = _dropins()
    docker_file = os.path.realpath(docker.config_path())
    auth_files = [name for name in authfiles.default_sources() if os.path.realpath(name) != docker_file]
    helped: list[str] = []
    for name in auth_files:
        try:
            _, doc = authfiles.read(name)
            entries = authfiles.entries(doc)
        except (OSError, ValueError) as exc:
            found.append(Check(WARN, "podman auth file", f"{name}: {exc}", "fix the file or move it aside"))
            continue
        named = doc.get("credHelpers")
        if isinstance(named, dict):
            helped += [f"{key} ({name})" for key, value in named.items() if value == HELPER]
        plain = [entry.key for entry in entries if entry.login]
        if plain:
            found.append(Check(WARN, "podman plaintext", f"{name} holds plaintext logins for {', '.join(plain)}",
                               f"{NAME} import"))
    if helpers is not None and HELPER in helpers:
        order = "" if helpers[0] == HELPER else (f"; {helpers[0]!r} comes first, so `podman login` stores there, "
                                                 "not in the helper")
        status = OK if not order else WARN
        found.insert(0, Check(status, "podman config", f"{path}: credential-helpers = {helpers}{order}",
                              "" if status == OK else f"{NAME} configure podman"))
    elif helped:
        found.insert(0, Check(OK, "podman config", f"credHelpers send {', '.join(helped)} to {NAME}"))
    elif helpers is not None:
        found.insert(0, Check(WARN, "podman config", f"{path}: credential-helpers = {helpers} does not name {NAME}",
                              f"{NAME} configure podman"))
    elif not any(shutil.which(tool) for tool in PODMAN_TOOLS):
        found.insert(0, Check(OK, "podman config", "not configured; no podman, buildah or skopeo on PATH"))
    else:
        found.insert(0, Check(WARN, "podman config", f"no registries.conf drop-in or auth file names {NAME}: "
                              "Podman, Buildah and Skopeo keep logins in plaintext auth.json",
                              f"{NAME} configure podman"))
    return found
