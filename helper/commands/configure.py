"""`configure docker` / `configure podman`: point Docker's or Podman's own configuration at the helper.

The work is in `helper.configure.docker` and `helper.configure.podman` (one client file each); this
module is the command's arguments and the choice between the two.
"""

from __future__ import annotations

import argparse
from typing import IO

from ..errors import UsageError

DESCRIPTION = """docker: set "credsStore": "switchboard" in $DOCKER_CONFIG/config.json (default
  ~/.docker/config.json), or with --hosts only those credHelpers entries. Other keys are kept; the
  previous file is kept as config.json.bak. Plaintext logins that the change would hide stop it: move
  them with `import` first, or pass --force.
podman: write ~/.config/containers/registries.conf.d/50-switchboard.conf (/etc/containers/
  registries.conf.d/ with --system) with credential-helpers = ["switchboard", "containers-auth.json"],
  for Podman, Buildah and Skopeo. No registries.conf is written.
A second run changes nothing and says so."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLIENT, --hosts, --force, --system, --dry-run."""
    parser.add_argument("client", choices=("docker", "podman"), help="the client to configure")
    parser.add_argument("--hosts", metavar="H1,H2",
                        help="docker: add credHelpers entries for these registries only (docker.io is Docker Hub)")
    parser.add_argument("--force", action="store_true",
                        help="docker: change the file even though plaintext logins in it would be hidden")
    parser.add_argument("--system", action="store_true",
                        help="podman: write the drop-in to /etc/containers/registries.conf.d/ (all users)")
    parser.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Configure the chosen client."""
    if args.client == "docker":
        if args.system:
            raise UsageError("--system is for `configure podman`; Docker's file is $DOCKER_CONFIG/config.json")
        from ..configure import docker

        return docker.configure(args.hosts, args.force, args.dry_run, stdout)
    if args.hosts is not None or args.force:
        raise UsageError("--hosts and --force are for `configure docker`; the Podman drop-in covers every registry")
    from ..configure import podman

    return podman.configure(args.system, args.dry_run, stdout)
