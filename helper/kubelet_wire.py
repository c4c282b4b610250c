"""The kubelet's image credential provider wire format (KEP-2133): parse a request, format a response.

Source: kubernetes `staging/src/k8s.io/kubelet/pkg/apis/credentialprovider/v1/types.go` and the decoding
in `pkg/credentialprovider/plugin/plugin.go` (../shared/FLEET.md §1.2). Rules:

* One `CredentialProviderRequest` on stdin, at most MAX_REQUEST bytes; `apiVersion` v1, v1beta1 or
  v1alpha1 (the same fields in all three). The response is in the request's version: the kubelet
  requires the response's `apiVersion` to equal the one its config names, which is the one it sent.
* `image` is a repository without tag or digest; one with either is accepted (the tag or digest is cut).
  A repository without a registry (`nginx`, `library/nginx`) is Docker Hub's, as `ParseImageName` says.
* The response carries exactly `kind`, `apiVersion`, `cacheKeyType`, `cacheDuration` and `auth`: the
  kubelet decodes it strictly (an unknown or duplicate field is an error), `cacheKeyType` is one of
  Image, Registry, Global, and `cacheDuration` a Go duration string (`"0"`, `"11h45m0s"`; `"600"` is a
  decode error).
"""

from __future__ import annotations

from . import fastjson
from .durations import format_go
from .errors import BadInput

GROUP = "credentialprovider.kubelet.k8s.io"
API_VERSIONS = (f"{GROUP}/v1", f"{GROUP}/v1beta1", f"{GROUP}/v1alpha1")
REQUEST_KIND = "CredentialProviderRequest"
RESPONSE_KIND = "CredentialProviderResponse"
IMAGE, REGISTRY = "Image", "Registry"  # the cacheKeyType values this plugin answers with
MAX_REQUEST = 1 << 20  # an image name and a ~1 KB service-account token; 1 MiB is far past any real request
HUB = "docker.io"


class Request:
    """One request: its version, the repository asked for, and the pod's service account if sent."""

    __slots__ = ("annotations", "api_version", "image", "registry", "repository", "token")

    def __init__(self, api_version: str, image: str, token: str, annotations: dict[str, str]) -> None:
        self.api_version = api_version
        self.image = image  # as the kubelet sent it
        self.repository = repository(image)  # registry/path, no tag or digest
        self.registry = self.repository.split("/", 1)[0]  # the kubelet's Registry cache key and auth key
        self.token = token
        self.annotations = annotations

    def __repr__(self) -> str:  # never the token
        return f"Request({self.api_version!r}, {self.image!r}, token={'yes' if self.token else 'no'})"


def repository(image: str) -> str:
    """`registry/path` of an image reference: tag and digest cut, Docker Hub's registry made explicit."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:  # a tag (a colon before the last slash is a registry's port)
        name = name[:colon]
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = f"{HUB}/{name if rest else 'library/' + name}"
    return name


def _text(value: object, field: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadInput(f"the request's {field} must be a non-empty string" if required
                       else f"the request's {field} must be a string")
    return value


def parse_request(data: bytes) -> Request:
    """The request on stdin, or BadInput with a one-line reason that never quotes the token."""
    if len(data) > MAX_REQUEST:
        raise BadInput(f"the request is larger than {MAX_REQUEST // 1024} KiB: not a CredentialProviderRequest")
    if not data.strip():
        raise BadInput("the request is empty: expected one CredentialProviderRequest on stdin")
    try:
        doc = fastjson.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the request is not JSON: expected one CredentialProviderRequest on stdin") from None
    if not isinstance(doc, dict):
        raise BadInput("the request is not a JSON object: expected one CredentialProviderRequest on stdin")
    if doc.get("kind") != REQUEST_KIND:
        said = "missing" if "kind" not in doc else repr(doc["kind"])[:100]
        raise BadInput(f"the request's kind is {said}, not {REQUEST_KIND!r}")
    version = doc.get("apiVersion")
    if version not in API_VERSIONS:
        said = "missing" if "apiVersion" not in doc else repr(version)[:100]
        raise BadInput(f"the request's apiVersion is {said}; supported: {', '.join(API_VERSIONS)}")
    image = _text(doc.get("image"), "image", required=True).strip()
    if any(c.isspace() for c in image) or "\0" in image or len(image) > 4096:
        raise BadInput("the request's image is not an image reference")
    token = _text(doc.get("serviceAccountToken"), "serviceAccountToken").strip()
    raw = doc.get("serviceAccountAnnotations") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise BadInput("the request's serviceAccountAnnotations must be a map of strings")
    return Request(str(version), image, token, dict(raw))


def format_response(api_version: str, cache_key_type: str, cache_seconds: float,
                    auth: dict[str, tuple[str, str]]) -> str:
    """The response, one JSON line: exactly the fields the kubelet's strict decoder accepts."""
    import json

    doc = {"kind": RESPONSE_KIND, "apiVersion": api_version, "cacheKeyType": cache_key_type,
           "cacheDuration": format_go(cache_seconds),
           "auth": {pattern: {"username": user, "password": secret} for pattern, (user, secret) in auth.items()}}
    return json.dumps(doc, separators=(",", ":")) + "\n"
