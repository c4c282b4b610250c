"""AWS Signature Version 4 with the standard library, for the one-request cold paths (helper/backends/aws_fast.py).

botocore's `SigV4Auth` signs every header but `expect`, `transfer-encoding`, `user-agent` and `x-amzn-trace-id`,
with the lower-cased name and the value's whitespace runs folded to one space, sorted by name; the canonical
request of a POST to `/` with no query is `POST\\n/\\n\\n<headers>\\n\\n<signed>\\n<sha256 of the body>`.
tests/test_aws_fast.py holds this to botocore's own signature for the same request and time, with and without
a session token. Importing botocore to sign one request costs ~190 ms (FLEET.md §8.1); this costs nothing.
"""

from __future__ import annotations

import hashlib
import hmac

UNSIGNED_HEADERS = frozenset({"expect", "transfer-encoding", "user-agent", "x-amzn-trace-id"})  # botocore's


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def amz_date(epoch: float) -> str:
    """`20261130T130506Z`: the X-Amz-Date of a request signed at `epoch` (UTC, whole seconds, as botocore)."""
    import time

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(int(epoch)))


def sign(headers: dict[str, str], body: bytes, *, region: str, service: str, access_key: str, secret_key: str,
         token: str | None, epoch: float, path: str = "/") -> dict[str, str]:
    """`headers` (which must hold Host) plus X-Amz-Date, X-Amz-Security-Token when `token`, and Authorization,
    for a POST of `body` to `path` with no query string."""
    stamp = amz_date(epoch)
    out = dict(headers)
    out["X-Amz-Date"] = stamp
    if token:
        out["X-Amz-Security-Token"] = token
    signed = {name.lower(): " ".join(value.split()) for name, value in out.items()
              if name.lower() not in UNSIGNED_HEADERS}
    names = sorted(signed)
    canonical = "\n".join(["POST", path, "", *(f"{name}:{signed[name]}" for name in names), "",
                           ";".join(names), hashlib.sha256(body).hexdigest()])
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret_key).encode("utf-8"), stamp[:8]), region), service),
                "aws4_request")
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, "
                            f"Signature={signature}")
    return out
