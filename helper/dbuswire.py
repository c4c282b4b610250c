"""A minimal blocking D-Bus client over a Unix socket: just enough for a keychain `get` (helper/secretservice.py).

Why not jeepney: `import jeepney.io.blocking` costs ~13 ms per call (typing, enum, re and `socket`, whose
IntEnum conversions alone are ~6 ms), more than the rest of a keychain `get`. This module imports `_socket`
and `struct` only. It speaks what `get` needs and nothing more: the `unix:path=` and `unix:abstract=`
transports, EXTERNAL authentication, method calls (sent pipelined, several in one write) and their replies,
with the basic types, strings, variants, arrays, structs and dicts; signals and anything else that arrives
is skipped. Whatever it does not support raises `Unsupported`, and the caller takes the jeepney path.

Rules: every wait on the socket is bounded by `TIMEOUT_S`; a reply is matched to its call by serial; an error
reply raises `DBusError` with the error's name.
"""

from __future__ import annotations

import _socket
import os
import struct

TIMEOUT_S = 25.0  # what libdbus and GDBus wait for a method reply by default; a stuck keychain fails, never hangs
MAX_MESSAGE = 1 << 26  # the D-Bus specification's maximum message length (64 MiB)

_ALIGN = {"y": 1, "g": 1, "v": 1, "b": 4, "i": 4, "u": 4, "s": 4, "o": 4, "a": 4, "h": 4, "n": 2, "q": 2,
          "x": 8, "t": 8, "d": 8, "(": 8, "{": 8}
_FIXED = {"b": "I", "i": "i", "u": "I", "h": "I", "n": "h", "q": "H", "x": "q", "t": "Q", "d": "d"}


class Unsupported(Exception):
    """Something this client does not speak (a transport, a type, an auth mechanism): use jeepney instead."""


class DBusError(Exception):
    """An error reply: `name` is the D-Bus error name."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}")
        self.name = name


def _type_end(sig: str, i: int) -> int:
    """The index just after the single complete type that starts at sig[i]."""
    c = sig[i]
    if c == "a":
        return _type_end(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        i += 1
        while sig[i] != close:
            i = _type_end(sig, i)
        return i + 1
    if c not in _ALIGN:
        raise Unsupported(f"D-Bus type {c!r}")
    return i + 1


def _types(sig: str) -> list[str]:
    out, i = [], 0
    while i < len(sig):
        j = _type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def _pad(buf: bytearray, n: int) -> None:
    buf += b"\0" * (-len(buf) % n)


def _put(buf: bytearray, t: str, v: object) -> None:
    c = t[0]
    _pad(buf, _ALIGN[c])
    if c == "y":
        buf.append(v)  # type: ignore[arg-type]
    elif c in _FIXED:
        buf += struct.pack("<" + _FIXED[c], v)
    elif c in "so":
        raw = v.encode("utf-8")  # type: ignore[attr-defined]
        buf += struct.pack("<I", len(raw)) + raw + b"\0"
    elif c == "g":
        raw = v.encode("ascii")  # type: ignore[attr-defined]
        buf += bytes((len(raw),)) + raw + b"\0"
    elif c == "v":
        pair: tuple[str, object] = v  # type: ignore[assignment]
        inner, value = pair
        _put(buf, "g", inner)
        _put(buf, inner, value)
    elif c == "(":
        for member, value in zip(_types(t[1:-1]), v, strict=True):  # type: ignore[call-overload]
            _put(buf, member, value)
    elif c == "a":
        at = len(buf)
        buf += b"\0\0\0\0"
        element = t[1:]
        _pad(buf, _ALIGN[element[0]])
        start = len(buf)
        if element == "y":
            buf += v  # type: ignore[arg-type]
        elif element[0] == "{":
            key, value = _types(element[1:-1])
            for k, val in v.items():  # type: ignore[attr-defined]
                _pad(buf, 8)
                _put(buf, key, k)
                _put(buf, value, val)
        else:
            for item in v:  # type: ignore[attr-defined]
                _put(buf, element, item)
        struct.pack_into("<I", buf, at, len(buf) - start)
    else:
        raise Unsupported(f"D-Bus type {t!r}")


class _Reader:
    def __init__(self, data: bytes, endian: str, pos: int = 0) -> None:
        self.data, self.endian, self.pos = data, endian, pos

    def _align(self, n: int) -> None:
        self.pos += -self.pos % n

    def _fixed(self, fmt: str) -> object:
        value = struct.unpack_from(self.endian + fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def get(self, t: str) -> object:
        c = t[0]
        self._align(_ALIGN[c])
        if c == "y":
            self.pos += 1
            return self.data[self.pos - 1]
        if c in _FIXED:
            value = self._fixed(_FIXED[c])
            return bool(value) if c == "b" else value
        if c in "sog":
            n = self.data[self.pos] if c == "g" else self._fixed("I")
            if c == "g":
                self.pos += 1
            start = self.pos
            self.pos += n + 1  # type: ignore[operator]
            return self.data[start:self.pos - 1].decode("utf-8")
        if c == "v":
            inner = self.get("g")
            return self.get(inner)  # type: ignore[arg-type]
        if c == "(":
            return tuple(self.get(member) for member in _types(t[1:-1]))
        if c == "a":
            n = self._fixed("I")
            element = t[1:]
            self._align(_ALIGN[element[0]])
            end = self.pos + n  # type: ignore[operator]
            if element == "y":
                self.pos = end
                return self.data[end - n:end]  # type: ignore[operator]
            if element[0] == "{":
                key, value = _types(element[1:-1])
                found = {}
                while self.pos < end:
                    self._align(8)
                    k = self.get(key)
                    found[k] = self.get(value)
                return found
            items = []
            while self.pos < end:
                items.append(self.get(element))
            return items
        raise Unsupported(f"D-Bus type {t!r}")


def parse_address(address: str) -> str:
    """The socket address to connect to for a D-Bus address string, or Unsupported (e.g. `tcp:`)."""
    for entry in address.split(";"):
        transport, _, info = entry.partition(":")
        if transport != "unix":
            continue
        fields = {}
        for pair in info.split(","):
            key, _, value = pair.partition("=")
            fields[key] = _unescape(value)
        if "path" in fields:
            return fields["path"]
        if "abstract" in fields:
            return "\0" + fields["abstract"]
    raise Unsupported("no unix:path= or unix:abstract= address")


def _unescape(value: str) -> str:
    if "%" not in value:
        return value
    raw, i = bytearray(), 0
    while i < len(value):
        if value[i] == "%":
            raw.append(int(value[i + 1:i + 3], 16))
            i += 3
        else:
            raw += value[i].encode("utf-8")
            i += 1
    return raw.decode("utf-8")


class Connection:
    """One authenticated connection to a bus, `Hello` sent (its reply is read with the first `reply`)."""

    def __init__(self, address: str, timeout: float = TIMEOUT_S) -> None:
        target = parse_address(address)
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self._buf = b""
        self._serial = 0
        self._replies: dict[int, tuple[int, str, tuple[object, ...]]] = {}
        try:
            self.sock.connect(target)
            self.sock.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode("ascii").hex().encode("ascii") + b"\r\n")
            line = self._line()
            if not line.startswith(b"OK "):
                raise Unsupported(f"the bus refused EXTERNAL authentication ({line[:40]!r})")
            self._buf = b""
            self._pending = b"BEGIN\r\n"  # sent together with the first calls, in one write
            self.call("/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", "org.freedesktop.DBus")
        except BaseException:
            self.sock.close()
            raise

    def close(self) -> None:
        self.sock.close()

    def _line(self) -> bytes:
        while b"\r\n" not in self._buf:
            self._recv()
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line

    def _recv(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the D-Bus daemon closed the connection")
        self._buf += chunk

    def call(self, path: str, interface: str, member: str, destination: str, signature: str = "",
             *args: object) -> int:
        """Queue a method call; it is sent with the next `flush` (or `reply`). Returns its serial."""
        body = bytearray()
        for t, value in zip(_types(signature), args, strict=True):
            _put(body, t, value)
        self._serial += 1
        fields: list[tuple[int, tuple[str, str]]] = [(1, ("o", path)), (2, ("s", interface)), (3, ("s", member)),
                                                     (6, ("s", destination))]
        if signature:
            fields.append((8, ("g", signature)))
        head = bytearray(b"l\x01\x00\x01") + struct.pack("<II", len(body), self._serial)
        _put(head, "a(yv)", fields)
        _pad(head, 8)
        self._pending += bytes(head + body)
        return self._serial

    def flush(self) -> None:
        if self._pending:
            self.sock.sendall(self._pending)
            self._pending = b""

    def _message(self) -> None:
        while len(self._buf) < 16:
            self._recv()
        endian = "<" if self._buf[0:1] == b"l" else ">"
        body_len, _, fields_len = struct.unpack_from(endian + "III", self._buf, 4)
        head_len = 16 + fields_len + (-(16 + fields_len) % 8)
        total = head_len + body_len
        if total > MAX_MESSAGE:
            raise ConnectionError("the D-Bus daemon sent an oversized message")
        while len(self._buf) < total:
            self._recv()
        data, self._buf = self._buf[:total], self._buf[total:]
        kind = data[1]
        if kind not in (2, 3):  # method returns and errors; signals and calls to us are not ours to answer
            return
        fields = _Reader(data, endian, 12).get("a(yv)")
        named: dict[int, object] = dict(fields)  # type: ignore[call-overload]
        reply_to, signature = named.get(5), named.get(8, "")
        if not isinstance(reply_to, int) or not isinstance(signature, str):
            return
        body = _Reader(data, endian, head_len)
        values = tuple(body.get(t) for t in _types(signature))
        self._replies[reply_to] = (kind, str(named.get(4, "")), values)

    def reply(self, serial: int) -> tuple[object, ...]:
        """The body of the reply to call `serial`; DBusError for an error reply."""
        self.flush()
        while serial not in self._replies:
            self._message()
        kind, error, values = self._replies.pop(serial)
        if kind == 3:
            raise DBusError(str(error), str(values[0]) if values else "")
        return values
