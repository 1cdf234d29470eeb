"""Per-message ITCH 5.0 codec, derived entirely from :mod:`host.feed.spec`.

This is the simple, readable API for tests and scripts: one message at a time as a
``NamedTuple`` per type (``Message`` classes in :data:`CLASSES`). The bulk numpy path lives in
:mod:`host.feed.bulk`.

Alpha fields decode to ``str`` with the right padding removed; integer, price and timestamp
fields decode to ``int`` (prices in integer Price(4)/Price(8) units, timestamps in ns).
"""

from __future__ import annotations

import struct
from collections import namedtuple
from collections.abc import Iterator
from typing import Any

from host.feed.spec import MESSAGES, MessageSpec

__all__ = [
    "CLASSES",
    "ItchError",
    "TruncatedMessage",
    "UnknownMessageType",
    "decode",
    "encode",
    "encode_message",
    "iter_messages",
    "make",
]


class ItchError(ValueError):
    """Malformed ITCH input."""


class TruncatedMessage(ItchError):
    """A message is shorter than its type's length."""


class UnknownMessageType(ItchError):
    """A message type byte that ITCH 5.0 does not define."""


_INT_FMT = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _fmt(spec: MessageSpec) -> str:
    parts = [">"]
    for f in spec.fields:
        if f.kind == "alpha":
            parts.append(f"{f.width}s")
        elif f.width == 6:
            parts.append("HI")  # 48-bit: high 16 + low 32
        else:
            parts.append(_INT_FMT[f.width])
    return "".join(parts)


class _Codec:
    __slots__ = ("spec", "cls", "st", "kinds")

    def __init__(self, spec: MessageSpec):
        self.spec = spec
        self.cls = namedtuple(f"Msg_{spec.type}", spec.names)  # noqa: PYI024
        self.cls.__doc__ = f"ITCH 5.0 '{spec.type}' {spec.name} message ({spec.length} bytes)."
        self.st = struct.Struct(_fmt(spec))
        assert self.st.size == spec.length, spec.type
        self.kinds = tuple((f.kind, f.width) for f in spec.fields)

    def decode(self, buf, offset: int = 0):
        raw = self.st.unpack_from(buf, offset)
        out: list[Any] = []
        i = 0
        for kind, width in self.kinds:
            if kind == "alpha":
                out.append(raw[i].decode("latin-1").rstrip(" "))
                i += 1
            elif width == 6:
                out.append((raw[i] << 32) | raw[i + 1])
                i += 2
            else:
                out.append(raw[i])
                i += 1
        return self.cls._make(out)

    def encode(self, values) -> bytes:
        args: list[Any] = []
        for (kind, width), f, v in zip(self.kinds, self.spec.fields, values, strict=True):
            if kind == "alpha":
                b = v.encode("latin-1") if isinstance(v, str) else bytes(v)
                if len(b) > width:
                    raise ItchError(f"{self.spec.type}.{f.name}: {v!r} longer than {width} bytes")
                args.append(b.ljust(width, b" "))
            else:
                v = int(v)
                if not 0 <= v < (1 << (8 * width)):
                    raise ItchError(f"{self.spec.type}.{f.name}: {v} does not fit {width} bytes")
                if width == 6:
                    args.extend((v >> 32, v & 0xFFFFFFFF))
                else:
                    args.append(v)
        return self.st.pack(*args)


_CODECS: dict[int, _Codec] = {ord(t): _Codec(s) for t, s in MESSAGES.items()}
CLASSES: dict[str, type] = {chr(k): c.cls for k, c in _CODECS.items()}
"""Message ``NamedTuple`` class for each type character."""


def make(mtype: str, **fields) -> Any:
    """Build a message of type ``mtype``; omitted fields default to 0 / empty / spaces.

    ``message_type`` is filled in. Unknown field names raise ``TypeError``.
    """
    codec = _CODECS.get(ord(mtype)) if len(mtype) == 1 else None
    if codec is None:
        raise UnknownMessageType(f"unknown ITCH 5.0 message type {mtype!r}")
    names = codec.spec.names
    bad = set(fields) - set(names)
    if bad:
        raise TypeError(f"ITCH {mtype!r} has no field(s) {sorted(bad)}")
    vals = []
    for f in codec.spec.fields:
        if f.name == "message_type":
            vals.append(mtype)
        else:
            vals.append(fields.get(f.name, "" if f.kind == "alpha" else 0))
    return codec.cls._make(vals)


def encode_message(msg) -> bytes:
    """Encode one message tuple (from :func:`make` or :func:`decode`) to its wire bytes."""
    codec = _CODECS.get(ord(msg[0]))
    if codec is None:
        raise UnknownMessageType(f"unknown ITCH 5.0 message type {msg[0]!r}")
    return codec.encode(msg)


def encode(mtype: str, **fields) -> bytes:
    """Shorthand for ``encode_message(make(mtype, **fields))``."""
    return encode_message(make(mtype, **fields))


def decode(buf, offset: int = 0, length: int | None = None):
    """Decode one message starting at ``buf[offset]``.

    ``length`` is the framing length (MoldUDP64 block or file length prefix) when known: a
    length shorter than the type's length raises :class:`TruncatedMessage`. Longer lengths are
    accepted (the extra bytes are ignored, as the spec allows growth at the end of a message).
    """
    avail = len(buf) - offset
    if length is not None:
        avail = min(avail, length)
    if avail <= 0:
        raise TruncatedMessage(f"empty message at offset {offset}")
    codec = _CODECS.get(buf[offset])
    if codec is None:
        raise UnknownMessageType(
            f"unknown ITCH message type 0x{buf[offset]:02x} at offset {offset}"
        )
    if avail < codec.spec.length:
        raise TruncatedMessage(
            f"'{codec.spec.type}' message at offset {offset} has {avail} bytes, "
            f"needs {codec.spec.length}"
        )
    return codec.decode(buf, offset)


def iter_messages(
    buf, *, strict: bool = False, stats: dict | None = None, indexed: bool = False
) -> Iterator[Any]:
    """Iterate messages of a buffer in NASDAQ's file framing (2-byte big-endian length prefix).

    Unknown types are skipped by their length prefix and counted in ``stats['unknown_type']``;
    a length prefix shorter than the type's length is counted in ``stats['bad_length']`` and
    skipped. A zero length or a record cut off by the end of the buffer stops the walk
    (``stats['truncated']``) because nothing after it can be trusted. With ``strict=True``
    every such case raises :class:`ItchError` instead.

    With ``indexed=True`` it yields ``(msg_index, message)``: every length-prefixed message
    takes one index, including the skipped unknown-type and bad-length ones.
    """
    if stats is None:
        stats = {}
    for k in ("unknown_type", "bad_length", "truncated", "zero_length"):
        stats.setdefault(k, 0)
    mv = memoryview(buf)
    n = len(mv)
    pos = 0
    idx = -1
    while pos < n:
        if pos + 2 > n:
            stats["truncated"] += 1
            if strict:
                raise TruncatedMessage(f"length prefix cut off at offset {pos}")
            return
        ln = (mv[pos] << 8) | mv[pos + 1]
        body = pos + 2
        if ln == 0:
            stats["zero_length"] += 1
            if strict:
                raise ItchError(f"zero length prefix at offset {pos}")
            return
        if body + ln > n:
            stats["truncated"] += 1
            if strict:
                raise TruncatedMessage(f"message at offset {pos} needs {ln} bytes, {n - body} left")
            return
        codec = _CODECS.get(mv[body])
        pos = body + ln
        idx += 1
        if codec is None:
            stats["unknown_type"] += 1
            if strict:
                raise UnknownMessageType(f"unknown type 0x{mv[body]:02x} at offset {body}")
            continue
        if ln < codec.spec.length:
            stats["bad_length"] += 1
            if strict:
                raise TruncatedMessage(
                    f"'{codec.spec.type}' at offset {body}: length {ln} < {codec.spec.length}"
                )
            continue
        msg = codec.decode(mv, body)
        yield (idx, msg) if indexed else msg
