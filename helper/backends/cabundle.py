"""Which CA bundle an SDK would verify a token endpoint with, found without importing the SDK.

A fast path that sends the SDK's request must trust exactly what the SDK trusts, or a runner whose CA is
only in one of them passes one way and fails the other:
* botocore: AWS_CA_BUNDLE, else REQUESTS_CA_BUNDLE, else certifi's bundle (helper/backends/aws_http.py);
* google-auth through requests: REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, else certifi's bundle (requests'
  `merge_environment_settings` and `DEFAULT_CA_BUNDLE_PATH`). Not the system store, not SSL_CERT_FILE.
"""

from __future__ import annotations

import os


def certifi_path() -> str | None:
    """certifi.where() of a package on the file system, found without importing certifi (its importlib.resources
    costs ~16 ms; finding the package ~2.5 ms); otherwise certifi's own answer (a zip or a frozen build); None
    when certifi is not installed."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("certifi")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or ():
        path = os.path.join(folder, "cacert.pem")
        if os.path.isfile(path):
            return path
    try:
        import certifi

        return str(certifi.where())
    except ImportError:
        return None


def requests_cafile() -> str | None:
    """The bundle requests (so google-auth) verifies with; None: the ssl module's default (no certifi)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi_path()
