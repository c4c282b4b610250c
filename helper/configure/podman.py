"""`configure podman`: a registries.conf drop-in that makes Podman, Buildah and Skopeo use the helper.

containers/image reads `/etc/containers/registries.conf` (or a user `registries.conf`, which replaces
the system file outright: so this never writes one), then the drop-ins of
`/etc/containers/registries.conf.d/` and of `$HOME/.config/containers/registries.conf.d/`, in that order,
a later file's `credential-helpers` replacing an earlier one's. The user drop-in folder is under `$HOME`,
not `$XDG_CONFIG_HOME`: observed with podman 4.3.1, skopeo 1.9.3 and buildah 1.28.2 (containers/image
5.23.1), a drop-in under another `$XDG_CONFIG_HOME` is not read at all, so writing it there would
configure nothing. Nothing goes to `$XDG_RUNTIME_DIR` (a tmpfs, empty after a reboot).

The list keeps `containers-auth.json` after the helper: the helper comes first so that `podman login`
stores through it (the first helper that accepts a store wins), and with the helper alone
containers/image ignores every auth file, `--authfile` and `REGISTRY_AUTH_FILE` included.
"""

from __future__ import annotations

import os
from typing import IO

from . import ConfigureError, atomic_write, make_folder, path_warning

FILE_NAME = "50-switchboard.conf"
SYSTEM_DIR = "/etc/containers/registries.conf.d"
FILE_MODE = 0o644  # registries.conf files are world-readable configuration, no secret in them
FOLDER_MODE = 0o755
CONTENT = """\
# Written by `docker-credential-switchboard configure podman`.
# Podman, Buildah and Skopeo store and read registry credentials through docker-credential-switchboard.
# containers-auth.json stays in the list: with the helper alone, containers/image ignores every auth
# file, --authfile and REGISTRY_AUTH_FILE included, which would break scripts that pass one. The helper
# comes first, so `podman login` stores through it and writes no plaintext auth.json.
credential-helpers = ["switchboard", "containers-auth.json"]
"""


def dropin_path(system: bool) -> str:
    """The drop-in: `/etc/containers/registries.conf.d/` with --system, else `~/.config/containers/...`."""
    folder = SYSTEM_DIR if system else os.path.join(os.path.expanduser("~"), ".config", "containers",
                                                    "registries.conf.d")
    return os.path.join(folder, FILE_NAME)


def _xdg_note(system: bool) -> str | None:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    default = os.path.join(os.path.expanduser("~"), ".config")
    if system or not xdg or os.path.realpath(xdg) == os.path.realpath(default):
        return None
    return (f"note: XDG_CONFIG_HOME is {xdg}, but Podman, Buildah and Skopeo read registries.conf drop-ins "
            f"from {default}/containers/registries.conf.d only, so the file goes there")


def configure(system: bool, dry_run: bool, out: IO[str]) -> int:
    """The `configure podman` command."""
    path = dropin_path(system)
    warning = path_warning()
    if warning:
        out.write(warning + "\n")
    note = _xdg_note(system)
    if note:
        out.write(note + "\n")
    try:
        with open(path, encoding="utf-8") as handle:
            old: str | None = handle.read()
    except FileNotFoundError:
        old = None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigureError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}; "
                             "move it aside and run this again; nothing was changed") from None
    if old == CONTENT:
        out.write(f"{path}: nothing changed (Podman, Buildah and Skopeo already use the helper).\n")
        return 0
    verb = "create" if old is None else "replace"
    if dry_run:
        out.write(f"{path} (dry run: nothing written):\n  would {verb} it with:\n")
    else:
        make_folder(os.path.dirname(path), FOLDER_MODE)
        atomic_write(path, CONTENT.encode("utf-8"), FILE_MODE)
        out.write(f"{path}: {verb}d with:\n")
    out.write('  credential-helpers = ["switchboard", "containers-auth.json"]\n')
    return 0
