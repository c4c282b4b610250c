"""`configure docker` / `configure podman`: point a client's own configuration at this helper.

Rules shared by both (one module each for the client's file, `docker` and `podman`):
* A file is replaced atomically: a temporary file in the same folder, flushed, then renamed over the old
  one, so that a client never reads half a file and a full disk leaves the old file as it was. A new
  file gets `new_mode`; an existing one keeps its mode. A symbolic link (dotfiles kept in a repository)
  is followed: its target is replaced, the link stays.
* Nothing is written when nothing changes: a second run says so and exits 0.
* `--dry-run` prints the same report, worded as what would change, and writes nothing.
* Secrets are never printed: reports name hosts and keys, never a value from an `auths` entry.
"""

from __future__ import annotations

import os
import shutil

from .. import NAME, fsutil
from ..errors import HelperError


class ConfigureError(HelperError):
    """A client file that cannot be read, parsed or written; the message names it and the fix."""


def path_warning() -> str | None:
    """A warning when the helper is not on PATH (Docker and Podman run `docker-credential-<name>` from it)."""
    if shutil.which(NAME):
        return None
    return (f"warning: {NAME} is not on PATH, and Docker, Podman, Buildah and Skopeo run it from PATH: "
            "add its folder (a venv's bin) to the PATH those clients see, or they will fail to log in")


def atomic_write(path: str, data: bytes, new_mode: int, *, keep_mode: bool = True) -> None:
    """Replace `path` with `data` atomically (temp + fsync + rename in its folder).

    The file gets `new_mode` when it is new or `keep_mode` is False (then a symbolic link at `path` is
    replaced, not followed: a backup never lands where a planted link points), else it keeps its mode and,
    rewritten by root, its owner."""
    target = os.path.realpath(path) if keep_mode else os.path.abspath(path)
    mode, owner = new_mode, None
    if keep_mode:
        try:
            info = os.stat(target)
            mode, owner = info.st_mode & 0o7777, fsutil.kept_owner(info)
        except FileNotFoundError:
            pass
    try:
        fsutil.replace_file(target, data, mode=mode, owner=owner)
    except OSError as exc:
        raise ConfigureError(f"cannot write {target}: {exc.strerror}; nothing was changed") from None


def make_folder(folder: str, mode: int) -> None:
    """Create `folder` and its parents with `mode` (a client's own folder: ~/.docker is 0700)."""
    try:
        os.makedirs(folder, mode=mode, exist_ok=True)
    except OSError as exc:
        raise ConfigureError(f"cannot create the folder {folder}: {exc.strerror}; nothing was changed") from None
