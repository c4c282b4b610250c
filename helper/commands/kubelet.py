"""`kubelet`: the kubelet's image credential provider plugin (KEP-2133, KEP-4412), over every route.

The kubelet runs `<bin-dir>/<provider name> kubelet` with one request on stdin (helper/kubelet_wire.py)
and reads one response from stdout. The answer comes from the same `Switchboard` as a `get`, so the
token cache, its single flight and its identity rules are the protocol's: fifty pods pulling at once
make one token request.

What it answers (../shared/FLEET.md §1.4 for how the kubelet matches):
* a token route's answer: `cacheKeyType: Registry`, keyed by the image's registry exactly as written
  (`host:5000` with its port: the kubelet never matches a portless key to a port), for as long as the
  token stays before its advisory refresh (`Credentials.fresh_until`), so the kubelet's cache never
  outlives ours and a refreshed token reaches the next pull;
* a static answer (the store, env, files, another helper): `cacheKeyType: Image` for `--static-cache`
  (default 5 minutes; a rotated secret reaches pulls after it). Per image, because a stored secret can be
  for a namespace (`docker login ghcr.io/org`): a registry-wide answer would give one namespace's secret
  to the whole registry. Keyed by the registry all the same: the Image cache key already scopes the
  answer to this image, and a `host/path` key would not survive the kubelet's keyring, which strips a
  leading `/v1/` or `/v2/` from every key's path;
* route backends are asked for the registry (`host[:port]`, what Docker sends: a `helper` route's
  program looks up server names), the static store for the repository (its entries may be per namespace);
* nothing (no route, an anonymous route, no stored secret): exit 0 with an empty `auth` and
  `cacheDuration: "0"`, so the kubelet goes on to `imagePullSecrets` or an anonymous pull;
* a failure that leaves nothing to answer with (the cloud refused or is down and no stored secret serves
  the host; a bad request; a bad routes file): exit 1, one line on stderr, which the kubelet logs.
"""

from __future__ import annotations

import argparse
from typing import IO

from .. import kubelet_wire, tokens
from ..actions import Switchboard
from ..backends import registry
from ..errors import CredentialsNotFound, HelperError, TokenUnavailable, UsageError
from ..hosts import parse

DESCRIPTION = """Speaks the kubelet's CredentialProviderRequest/Response (v1, v1beta1, v1alpha1) on
stdin/stdout; errors are one line on stderr with exit 1. Configure it with the
output of `kubelet-config`. With a serviceAccountToken in the request (KEP-4412),
cloud routes ask as the pod's service account: see the README's Kubernetes section."""

DEFAULT_STATIC_CACHE_S = 300  # a rotated stored secret reaches pulls within 5 minutes; one exec per repository
MAX_STATIC_CACHE_S = 24 * 3600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--static-cache SECONDS`."""
    parser.add_argument("--static-cache", type=int, default=DEFAULT_STATIC_CACHE_S, metavar="SECONDS",
                        help=f"how long the kubelet keeps a static answer (default {DEFAULT_STATIC_CACHE_S}; "
                             "0: ask every pull)")


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """Answer one request."""
    static_s = int(args.static_cache)
    if not 0 <= static_s <= MAX_STATIC_CACHE_S:
        raise UsageError(f"--static-cache must be from 0 to {MAX_STATIC_CACHE_S} seconds")
    request = kubelet_wire.parse_request(stdin.read(kubelet_wire.MAX_REQUEST + 1))
    pod = None
    if request.token:
        from ..pod import PodIdentity

        pod = PodIdentity(request.token, request.annotations)
    board = Switchboard(pod=pod)
    try:
        creds, route = board.answer(parse(request.registry), store_key=parse(request.repository))
    except TokenUnavailable as exc:
        raise HelperError(f"no credentials for {request.repository}: {exc.reason}") from None
    except CredentialsNotFound:
        stdout.write(kubelet_wire.format_response(request.api_version, kubelet_wire.REGISTRY, 0, {}))
        return 0
    answer = (creds.username, creds.secret)
    if route is not None and registry.lookup(route.backend).token and creds.fresh_until is not None:
        seconds = creds.fresh_until - tokens.now()
        stdout.write(kubelet_wire.format_response(request.api_version, kubelet_wire.REGISTRY, seconds,
                                                  {request.registry: answer}))
    else:
        stdout.write(kubelet_wire.format_response(request.api_version, kubelet_wire.IMAGE, static_s,
                                                  {request.registry: answer}))
    return 0
