"""A Python mirror of how the kubelet decodes and matches a credential provider plugin's response.

Test-only reference: it says what a real kubelet would accept from our helper's stdout and which
credentials it would hand to the container runtime for an image. Every function is a port of Go
source, read (through the public-code index) at these versions:

* ``decode_response``: kubernetes/kubernetes ``pkg/credentialprovider/plugin/plugin.go`` at
  01302639f593c742911309f5942ca2d683da871b (``execPlugin.ExecPlugin``: the apiVersion check via
  ``json.DefaultMetaFactory.Interpret``; ``execPlugin.decodeResponse``: ``codecs.UniversalDecoder()``
  of ``serializer.NewCodecFactory(scheme, serializer.EnableStrict)``, then the Kind and Group checks;
  ``pluginProvider.provide``: the cacheKeyType switch that discards any other value). Field set:
  ``staging/src/k8s.io/kubelet/pkg/apis/credentialprovider/v1/types.go`` at
  9d41419859ae1ff79fae7e642babb763d0f61909, ``.../v1beta1/types.go`` at
  2e0908106e4420a601e50d6edfd41475de87a3e1, ``.../v1alpha1/types.go`` at
  2599f249567d41304666c023701d82b78ea3eb32. Strictness: kubernetes/apimachinery
  ``pkg/runtime/serializer/json/json.go`` (``Serializer.unmarshal``: strict mode is
  ``sigs.k8s.io/json.UnmarshalStrict``) and kubernetes-sigs/json ``json.go`` at
  e01b0de0dabd60a34de1777a4c0b25f75853102f (``UnmarshalStrict`` = case-sensitive keys + PreserveInts
  + DisallowDuplicateFields + DisallowUnknownFields; a key that matches a field only
  case-insensitively is an unknown field).
* ``go_duration``: golang/go ``src/time/format.go`` ``ParseDuration`` (with ``leadingInt``,
  ``leadingFraction``, ``unitMap``), as ``metav1.Duration.UnmarshalJSON`` calls it.
* ``urls_match``: kubernetes/kubernetes ``pkg/credentialprovider/keyring.go`` (``URLsMatchStr``,
  ``URLsMatch``, ``ParseSchemelessURL``, ``SplitURL``; the ``TrackedAuthConfig`` revision, index file
  id 442935866, whose commit the index does not report; the matching code is unchanged since
  4f3d0e3bde114269650781020d9b05cbd428d4ba apart from names), with golang/go ``src/net/url/url.go``
  (``Parse``, ``parseAuthority``, ``parseHost``, ``unescape``, ``shouldEscape``), ``src/net/ipsock.go``
  (``SplitHostPort``) and ``src/path/filepath/match.go`` (``Match``, ``scanChunk``, ``matchChunk``,
  ``getEsc``; 03f27d5f581bac5b40f8c870a9b316d6c814c356 read, ported in its current form that checks
  the whole pattern for syntax errors).
* ``lookup``: the same keyring.go (``BasicDockerKeyring.Add``, ``BasicDockerKeyring.Lookup``,
  ``isDefaultRegistryMatch``), fed the way ``pluginProvider.provide`` builds its DockerConfig.

Go works on bytes; so do the URL and glob ports here (str in, UTF-8 bytes inside).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

GROUP = "credentialprovider.kubelet.k8s.io"
SUPPORTED_API_VERSIONS = (f"{GROUP}/v1", f"{GROUP}/v1beta1", f"{GROUP}/v1alpha1")
KIND = "CredentialProviderResponse"
CACHE_KEY_TYPES = ("Image", "Registry", "Global")

# Fields of CredentialProviderResponse per version (TypeMeta's apiVersion/kind are inline in all).
# serviceAccountTokenCacheType exists only in the newest v1 types.go (9d414198...); kubelets built
# before it was added reject it as an unknown field.
_RESPONSE_FIELDS: dict[str, frozenset[str]] = {
    f"{GROUP}/v1": frozenset({"apiVersion", "kind", "cacheKeyType", "cacheDuration",
                              "serviceAccountTokenCacheType", "auth"}),
    f"{GROUP}/v1beta1": frozenset({"apiVersion", "kind", "cacheKeyType", "cacheDuration", "auth"}),
    f"{GROUP}/v1alpha1": frozenset({"apiVersion", "kind", "cacheKeyType", "cacheDuration", "auth"}),
}
_AUTH_FIELDS = frozenset({"username", "password"})

DEFAULT_REGISTRY_HOST = "index.docker.io"


class DecodeError(Exception):
    """The kubelet would not use this response (or this duration/glob is invalid to Go)."""


@dataclass(frozen=True)
class Response:
    """The fields of the internal CredentialProviderResponse that the kubelet acts on."""

    api_version: str
    kind: str
    cache_key_type: str
    cache_duration_s: float | None
    auth: dict[str, tuple[str, str]]


# --------------------------------------------------------------------------- time.ParseDuration

_UNITS: dict[bytes, int] = {
    b"ns": 1,
    b"us": 1_000,
    "µ".encode() + b"s": 1_000,  # U+00B5 micro sign
    "μ".encode() + b"s": 1_000,  # U+03BC greek mu
    b"ms": 1_000_000,
    b"s": 1_000_000_000,
    b"m": 60 * 1_000_000_000,
    b"h": 3600 * 1_000_000_000,
}
_2_63 = 1 << 63


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def go_duration_ns(text: str) -> int:
    """Port of Go's ``time.ParseDuration``; returns nanoseconds (an int64 in Go)."""
    orig = text
    s = text.encode()
    invalid = DecodeError(f"time: invalid duration {_go_quote(orig)}")
    d = 0
    neg = False
    if s and s[:1] in (b"-", b"+"):
        neg = s[:1] == b"-"
        s = s[1:]
    if s == b"0":
        return 0
    if not s:
        raise invalid
    while s:
        f = 0
        scale = 1.0
        if not (s[0] == ord(".") or ord("0") <= s[0] <= ord("9")):
            raise invalid
        # leadingInt
        pl = len(s)
        v = 0
        i = 0
        while i < len(s) and ord("0") <= s[i] <= ord("9"):
            if v > _2_63 // 10:
                raise invalid
            v = v * 10 + s[i] - ord("0")
            if v > _2_63:
                raise invalid
            i += 1
        s = s[i:]
        pre = pl != len(s)
        post = False
        if s and s[0] == ord("."):
            s = s[1:]
            pl = len(s)
            # leadingFraction
            i = 0
            overflow = False
            while i < len(s) and ord("0") <= s[i] <= ord("9"):
                if not overflow:
                    if f > (_2_63 - 1) // 10:
                        overflow = True
                    else:
                        y = f * 10 + s[i] - ord("0")
                        if y > _2_63:
                            overflow = True
                        else:
                            f = y
                            scale *= 10
                i += 1
            s = s[i:]
            post = pl != len(s)
        if not pre and not post:
            raise invalid
        i = 0
        while i < len(s) and not (s[i] == ord(".") or ord("0") <= s[i] <= ord("9")):
            i += 1
        if i == 0:
            raise DecodeError(f"time: missing unit in duration {_go_quote(orig)}")
        u = s[:i]
        s = s[i:]
        unit = _UNITS.get(u)
        if unit is None:
            raise DecodeError(f"time: unknown unit {_go_quote(u.decode(errors='replace'))} "
                              f"in duration {_go_quote(orig)}")
        if v > _2_63 // unit:
            raise invalid
        v *= unit
        if f > 0:
            # uint64(float64(f) * (float64(unit) / scale)): truncation toward zero
            v += int(float(f) * (float(unit) / scale))
            if v > _2_63:
                raise invalid
        d += v
        if d > _2_63:
            raise invalid
    if neg:
        return -d
    if d > _2_63 - 1:
        raise invalid
    return d


def go_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` in seconds; DecodeError where Go returns an error."""
    return go_duration_ns(text) / 1e9


# --------------------------------------------------------------------------- strict JSON decoding


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """object_pairs_hook: sigs.k8s.io/json DisallowDuplicateFields, for struct fields and map keys."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DecodeError(f"duplicate field {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise DecodeError(f"invalid character in JSON: {name} is not JSON")


def _parse_json(stdout: bytes) -> Any:
    # Go reads bytes: invalid UTF-8 inside strings becomes U+FFFD, anywhere else it is a syntax
    # error either way. A UTF-8 BOM is a syntax error in Go and in json.loads(str).
    text = stdout.decode("utf-8", errors="replace")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"json parse error: {exc}") from None


class _Pairs(list[tuple[str, Any]]):
    """A JSON object kept as its (key, value) pairs in document order."""


def _interpret_api_version(stdout: bytes) -> str:
    """json.DefaultMetaFactory.Interpret + GroupVersion().String(), as ExecPlugin uses it.

    Interpret uses encoding/json (case-insensitive keys, last duplicate wins, any other keys
    ignored); every document it accepts here is decoded strictly afterwards, which rejects
    mis-cased and duplicate keys, so only the value that a strict-valid document carries matters.
    """
    try:
        doc = json.loads(stdout.decode("utf-8", errors="replace"), parse_constant=_reject_constant,
                         object_pairs_hook=_Pairs)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"error reading GVK from response: {exc}") from None
    if doc is None:
        return ""
    if not isinstance(doc, _Pairs):
        raise DecodeError("error reading GVK from response: not a JSON object")
    value: Any = None
    for key, item in doc:  # in document order: the last case-insensitive match wins, as in Go
        if key.casefold() == "apiversion":
            value = item
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise DecodeError("error reading GVK from response: apiVersion is not a string")
    # schema.ParseGroupVersion then GroupVersion.String()
    if value in ("", "/"):
        return ""
    if value.count("/") > 1:
        raise DecodeError(f"unexpected GroupVersion string: {value}")
    return value


def _string_field(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:  # absent or JSON null: Go leaves the string empty
        return ""
    if not isinstance(value, str):
        raise DecodeError(f"{where}.{key}: cannot unmarshal {type(value).__name__} into a Go string")
    return value


def decode_response(stdout: bytes, configured_api_version: str) -> Response:
    """What the kubelet makes of a plugin's stdout; DecodeError wherever it would use no credentials.

    Order as in ExecPlugin/decodeResponse/provide: apiVersion equals the configured one, then a
    strict typed decode (one JSON object; no unknown, mis-cased or duplicate fields at any level;
    Go types), then Kind, then cacheKeyType one of Image/Registry/Global (checked in provide: an
    empty or other value makes the kubelet log an error and use no credentials).
    """
    if configured_api_version not in SUPPORTED_API_VERSIONS:
        raise ValueError(f"invalid apiVersion: {configured_api_version!r} (the kubelet refuses this config)")
    actual = _interpret_api_version(stdout)
    if actual != configured_api_version:
        raise DecodeError("apiVersion from credential plugin response did not match expected "
                          f"apiVersion:{configured_api_version}, actual apiVersion:{actual}")
    doc = _parse_json(stdout)
    if not isinstance(doc, dict):
        raise DecodeError("response is not a JSON object")
    kind = _string_field(doc, "kind", "response")
    if not kind:
        raise DecodeError("Object 'Kind' is missing")
    if kind != KIND:
        # "no kind X is registered" (or a CredentialProviderRequest, refused by decodeResponse)
        raise DecodeError(f"failed to decode CredentialProviderResponse, unexpected Kind: {kind!r}")
    fields = _RESPONSE_FIELDS[configured_api_version]
    for key in doc:
        if key not in fields:
            raise DecodeError(f"strict decoding error: unknown field {key!r}")
    cache_key_type = _string_field(doc, "cacheKeyType", "response")
    _string_field(doc, "serviceAccountTokenCacheType", "response")
    duration: float | None = None
    raw_duration = doc.get("cacheDuration")
    if raw_duration is not None:  # null leaves the *metav1.Duration nil
        if not isinstance(raw_duration, str):
            raise DecodeError("cacheDuration: metav1.Duration must be a JSON string")
        duration = go_duration(raw_duration)
    auth: dict[str, tuple[str, str]] = {}
    raw_auth = doc.get("auth")
    if raw_auth is not None:
        if not isinstance(raw_auth, dict):
            raise DecodeError("auth: cannot unmarshal into map[string]AuthConfig")
        for pattern, entry in raw_auth.items():
            if entry is None:
                auth[pattern] = ("", "")
                continue
            if not isinstance(entry, dict):
                raise DecodeError(f"auth[{pattern!r}]: cannot unmarshal into AuthConfig")
            for key in entry:
                if key not in _AUTH_FIELDS:
                    raise DecodeError(f"strict decoding error: unknown field \"auth[{pattern}].{key}\"")
            where = f"auth[{pattern!r}]"
            auth[pattern] = (_string_field(entry, "username", where), _string_field(entry, "password", where))
    if cache_key_type not in CACHE_KEY_TYPES:
        raise DecodeError(f"credential provider plugin did not return a valid cacheKeyType: {cache_key_type!r}")
    return Response(api_version=configured_api_version, kind=kind, cache_key_type=cache_key_type,
                    cache_duration_s=duration, auth=auth)


# --------------------------------------------------------------------------- net/url (the parts used)


class _UrlError(Exception):
    pass


def _ishex(c: int) -> bool:
    return chr(c) in "0123456789abcdefABCDEF"


def _should_escape_host(c: int) -> bool:
    ch = chr(c)
    if ch.isascii() and ch.isalnum():
        return False
    return ch not in "!$&'()*+,;=:[]<>\"-_.~"


def _unescape(s: bytes, mode: str) -> bytes:
    """net/url.unescape for the modes Parse uses on these URLs: host, zone, path, fragment, user."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == ord("%"):
            if i + 2 >= len(s) or not _ishex(s[i + 1]) or not _ishex(s[i + 2]):
                raise _UrlError("invalid URL escape")
            if mode == "host" and int(chr(s[i + 1]), 16) < 8 and s[i:i + 3] != b"%25":
                raise _UrlError("invalid URL escape")
            if mode == "zone":
                v = int(s[i + 1:i + 3], 16)
                if s[i:i + 3] != b"%25" and v != 0x20 and _should_escape_host(v):
                    raise _UrlError("invalid URL escape")
            out.append(int(s[i + 1:i + 3], 16))
            i += 3
            continue
        if mode in ("host", "zone") and c < 0x80 and _should_escape_host(c):
            raise _UrlError(f"invalid character {chr(c)!r} in host name")
        out.append(c)
        i += 1
    return bytes(out)


def _valid_optional_port(port: bytes) -> bool:
    if not port:
        return True
    return port[:1] == b":" and all(ord("0") <= b <= ord("9") for b in port[1:])


def _parse_host(host: bytes) -> bytes:
    if host.startswith(b"["):
        i = host.rfind(b"]")
        if i < 0:
            raise _UrlError("missing ']' in host")
        if not _valid_optional_port(host[i + 1:]):
            raise _UrlError("invalid port after host")
        zone = host[:i].find(b"%25")
        if zone >= 0:
            return (_unescape(host[:zone], "host") + _unescape(host[zone:i], "zone")
                    + _unescape(host[i:], "host"))
    else:
        i = host.rfind(b":")
        if i != -1 and not _valid_optional_port(host[i:]):
            raise _UrlError("invalid port after host")
    return _unescape(host, "host")


def _valid_userinfo(s: bytes) -> bool:
    for r in s.decode("utf-8", errors="replace"):
        if r.isascii() and (r.isalnum() or r in "-._:~!$&'()*+,;=%@"):
            continue
        return False
    return True


def _parse_https_url(raw: bytes) -> tuple[bytes, bytes]:
    """net/url.Parse for "https://" + rest: returns (Host, Path) or raises _UrlError."""
    rest, _, frag = raw.partition(b"#")
    if any(b < 0x20 or b == 0x7F for b in rest):
        raise _UrlError("net/url: invalid control character in URL")
    rest = rest[len(b"https:"):]  # getScheme: always "https" here
    # ForceQuery for one trailing "?", else RawQuery takes everything after the first "?"
    rest = rest[:-1] if rest.endswith(b"?") and rest.count(b"?") == 1 else rest.partition(b"?")[0]
    authority = rest[2:]  # rest starts with "//"
    path = b""
    slash = authority.find(b"/")
    if slash >= 0:
        authority, path = authority[:slash], authority[slash:]
    at = authority.rfind(b"@")
    host = _parse_host(authority if at < 0 else authority[at + 1:])
    if at >= 0:
        userinfo = authority[:at]
        if not _valid_userinfo(userinfo):
            raise _UrlError("net/url: invalid userinfo")
        for part in userinfo.split(b":", 1):
            _unescape(part, "user")
    decoded_path = _unescape(path, "path")
    if frag:
        _unescape(frag, "fragment")
    return host, decoded_path


def _split_host_port(hostport: bytes) -> tuple[bytes, bytes]:
    """net.SplitHostPort; raises _UrlError where Go returns an AddrError."""
    i = hostport.rfind(b":")
    if i < 0:
        raise _UrlError("missing port in address")
    j = k = 0
    if hostport[:1] == b"[":
        end = hostport.find(b"]")
        if end < 0:
            raise _UrlError("missing ']' in address")
        if end + 1 == len(hostport):
            raise _UrlError("missing port in address")
        if end + 1 != i:
            raise _UrlError("too many colons in address" if hostport[end + 1:end + 2] == b":"
                            else "missing port in address")
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if b":" in host:
            raise _UrlError("too many colons in address")
    if b"[" in hostport[j:]:
        raise _UrlError("unexpected '[' in address")
    if b"]" in hostport[k:]:
        raise _UrlError("unexpected ']' in address")
    return host, hostport[i + 1:]


def _split_url(host: bytes) -> tuple[list[bytes], bytes]:
    """keyring.go SplitURL: a host that SplitHostPort refuses is all host, port ""."""
    try:
        name, port = _split_host_port(host)
    except _UrlError:
        name, port = host, b""
    return name.split(b"."), port


# --------------------------------------------------------------------------- path/filepath.Match


class _BadPattern(Exception):
    pass


def _decode_rune(s: bytes) -> tuple[int, int]:
    """utf8.DecodeRune: (rune, size); (0xFFFD, 1) for an invalid byte."""
    if not s:
        return 0xFFFD, 0
    lead = s[0]
    size = 1 if lead < 0x80 else 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else \
        4 if 0xF0 <= lead <= 0xF4 else 0
    if size == 1:
        return lead, 1
    if size == 0:
        return 0xFFFD, 1
    try:
        return ord(s[:size].decode("utf-8")), size
    except UnicodeDecodeError:
        return 0xFFFD, 1


def _get_esc(chunk: bytes) -> tuple[int, bytes, bool]:
    """getEsc: (rune, rest, bad)."""
    if not chunk or chunk[:1] in (b"-", b"]"):
        return 0, chunk, True
    if chunk[:1] == b"\\":
        chunk = chunk[1:]
        if not chunk:
            return 0, chunk, True
    r, n = _decode_rune(chunk)
    bad = r == 0xFFFD and n == 1
    rest = chunk[n:]
    return r, rest, bad or not rest


def _scan_chunk(pattern: bytes) -> tuple[bool, bytes, bytes]:
    star = False
    while pattern[:1] == b"*":
        pattern = pattern[1:]
        star = True
    inrange = False
    i = 0
    while i < len(pattern):
        c = pattern[i:i + 1]
        if c == b"\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == b"[":
            inrange = True
        elif c == b"]":
            inrange = False
        elif c == b"*" and not inrange:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _match_chunk(chunk: bytes, s: bytes) -> tuple[bytes, bool]:
    """matchChunk; raises _BadPattern. Keeps parsing after a failure to find syntax errors."""
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[:1]
        if c == b"[":
            r = 0
            if not failed:
                r, n = _decode_rune(s)
                s = s[n:]
            chunk = chunk[1:]
            negated = False
            if chunk[:1] == b"^":
                negated = True
                chunk = chunk[1:]
            match = False
            nrange = 0
            while True:
                if chunk[:1] == b"]" and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk, bad = _get_esc(chunk)
                if bad:
                    raise _BadPattern
                hi = lo
                if chunk[:1] == b"-":
                    hi, chunk, bad = _get_esc(chunk[1:])
                    if bad:
                        raise _BadPattern
                if lo <= r <= hi:
                    match = True
                nrange += 1
            if match == negated:
                failed = True
        elif c == b"?":
            if not failed:
                if s[:1] == b"/":
                    failed = True
                _, n = _decode_rune(s)
                s = s[n:]
            chunk = chunk[1:]
        else:
            if c == b"\\":
                chunk = chunk[1:]
                if not chunk:
                    raise _BadPattern
            if not failed:
                if chunk[:1] != s[:1]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    if failed:
        return b"", False
    return s, True


def _filepath_match(pattern: bytes, name: bytes) -> bool:
    """path/filepath.Match on Unix; raises _BadPattern for a malformed pattern."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return b"/" not in name
        t, ok = _match_chunk(chunk, name)
        if ok and (not t or pattern):
            name = t
            continue
        if star:
            matched_later = False
            i = 0
            while i < len(name) and name[i:i + 1] != b"/":
                t, ok = _match_chunk(chunk, name[i + 1:])
                if ok:
                    if not pattern and t:
                        i += 1
                        continue
                    name = t
                    matched_later = True
                    break
                i += 1
            if matched_later:
                continue
        while pattern:
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, b"")
        return False
    return not name


# --------------------------------------------------------------------------- keyring.go


def _urls_match_bytes(glob: bytes, target: bytes) -> bool:
    """URLsMatchStr(glob, target) with its error folded into "no match", as Lookup and isImageAllowed do."""
    try:
        glob_host, glob_path = _parse_https_url(b"https://" + glob)
        target_host, target_path = _parse_https_url(b"https://" + target)
    except _UrlError:
        return False
    glob_parts, glob_port = _split_url(glob_host)
    target_parts, target_port = _split_url(target_host)
    if glob_port != target_port:
        return False
    if len(glob_parts) != len(target_parts):
        return False
    if not target_path.startswith(glob_path):
        return False
    try:
        return all(_filepath_match(g, t) for g, t in zip(glob_parts, target_parts, strict=True))
    except _BadPattern:
        return False


def urls_match(glob: str, target: str) -> bool:
    """Port of keyring.go ``URLsMatchStr`` (an error counts as no match, as every caller treats it).

    Both sides get "https://" prepended and go through Go's url.Parse (so "?" starts a query and "#"
    a fragment, never a glob; "\\", "^", "{", " " in a host are parse errors); the host is split with
    net.SplitHostPort (a host it refuses, e.g. one with "[" and a port, is all host and port "");
    ports must be equal, hosts must have as many dot-separated labels, each label must match with
    filepath.Match, and the target path must start with the glob path (a plain string prefix).
    """
    return _urls_match_bytes(glob.encode(), target.encode())


def is_default_registry_match(image: str) -> bool:
    """Port of keyring.go ``isDefaultRegistryMatch``."""
    parts = image.split("/", 1)
    if not parts[0]:
        return False
    if len(parts) == 1:
        return True
    if parts[0] in ("docker.io", "index.docker.io"):
        return True
    return not any(c in parts[0] for c in ".:")


def _keyring_key(loc: str) -> bytes | None:
    """BasicDockerKeyring.Add: the index key for one DockerConfig entry, None if url.Parse fails."""
    raw = loc.encode()
    if not raw.startswith((b"https://", b"http://")):
        raw = b"https://" + raw
    if raw.startswith(b"http://"):
        raw = b"https://" + raw[len(b"http://"):]  # same authority/path parsing
    try:
        host, path = _parse_https_url(raw)
    except _UrlError:
        return None
    if path.startswith((b"/v2/", b"/v1/")):
        path = path[3:]
    if path and path != b"/":
        return host + path
    return host


def lookup(auth: dict[str, tuple[str, str]], image: str) -> list[tuple[str, str]]:
    """Port of ``BasicDockerKeyring.Add`` + ``Lookup`` over one response's auth map.

    Keys are normalised as Add does (scheme dropped, "/v1/" or "/v2/" path prefix dropped, host
    %-unescaped), de-duplicated and reverse-sorted bytewise; the credentials of every key that
    URLsMatchStr(key, image) are returned in that order. Only when none matches, and the image is
    a Docker Hub name (isDefaultRegistryMatch), the credentials under the key "index.docker.io"
    are returned. Entries that normalise to one key keep dict order here (Go's map order is random).
    """
    creds: dict[bytes, list[tuple[str, str]]] = {}
    for loc, pair in auth.items():
        key = _keyring_key(loc)
        if key is None:
            continue
        creds.setdefault(key, []).append(pair)
    index = sorted(creds, reverse=True)
    target = image.encode()
    found: list[tuple[str, str]] = []
    for key in index:
        if _urls_match_bytes(key, target):
            found.extend(creds[key])
    if found:
        return found
    if is_default_registry_match(image) and DEFAULT_REGISTRY_HOST.encode() in creds:
        return list(creds[DEFAULT_REGISTRY_HOST.encode()])
    return []
