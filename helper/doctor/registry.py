"""`doctor --registry HOST`: does HOST accept the credentials a client would get for it?

The credentials come the way Docker or Podman would get them (`Switchboard().get` of HOST's key: routes, env
presets, the static store); `registry_check.check` then sends `GET /v2/` and answers the registry's challenge
(login's check, issue 11 item 4). The one check of `doctor` that reaches the network, and only when asked.
The secret is never printed: the lines name the host, the user, the outcome and the transport.
"""

from __future__ import annotations

from .. import NAME, hosts
from ..errors import CredentialsNotFound, HelperError
from . import FAIL, OK, WARN, Check


def check(host: str, insecure: bool = False, timeout: float = 10.0) -> Check:
    """One line: HOST accepted / refused / unreachable with the credentials a client would get."""
    from .. import registry_check as rc
    from ..actions import Switchboard

    label = f"registry {host}"
    login = f"{NAME} login {host}" + (" --insecure" if insecure else "")
    try:
        creds = Switchboard().get(hosts.parse(host))
    except CredentialsNotFound:
        return Check(FAIL, label, f"no credentials: a client asking the helper for {host} gets not-found", login)
    except HelperError as exc:
        return Check(FAIL, label, f"the helper cannot answer for {host}: {exc}",
                     "fix what the message names (the checks above say more)")
    user = creds.username
    found = rc.check(host, user, creds.secret, insecure=insecure, timeout=timeout)
    if found.outcome == rc.OK:
        return Check(OK, label, f"user {user}: accepted ({found.auth}, {found.scheme})")
    if found.outcome == rc.ANONYMOUS:
        return Check(WARN, label, f"GET /v2/ answered 200 without asking for credentials ({found.scheme}): "
                     f"user {user} was not checked", "")
    if found.outcome == rc.REFUSED:
        return Check(FAIL, label, f"user {user}: {found.detail}: the stored credentials are wrong or expired", login)
    if found.outcome == rc.UNREACHABLE:
        insecure_hint = "" if insecure else "; --insecure for a registry without trusted TLS"
        return Check(FAIL, label, f"unreachable ({found.detail})",
                     f"check the host name, port and network from this machine{insecure_hint}")
    return Check(FAIL, label, found.detail, f"check that {host} is a registry (GET /v2/ must answer 200 or 401)")
