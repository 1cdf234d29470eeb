"""Bulk ITCH 5.0 parsing of a whole buffer into numpy structured arrays (numba).

Two entry points, both for a buffer in NASDAQ file framing (every message preceded by its 2-byte
big-endian length):

:func:`parse_records`
    One flat array of decoded records (:data:`RECORD_DTYPE`): the same record the gateware
    decoder emits (:mod:`host.feed.record_map`), minus the meta fields (MoldUDP64
    ``seq``/``gap``, the card's ``rx_ns``), plus ``msg_index``.
:func:`parse_tables`
    One structured array per message type with every spec field (:data:`TABLE_DTYPES`), plus the
    message order.

Nothing here is written by hand: the numba kernels are driven by byte-permutation tables built
at import from :mod:`host.feed.spec` (and :mod:`host.feed.record_map` for the record). For every
message type the table lists, for each destination byte of the output row, which byte of the
message it comes from; big-endian integers are reversed into little-endian numpy fields and
multi-byte alpha fields of the record (``stock``) are copied as-is so that the first character
lands in the least significant byte, as :func:`host.feed.record_map.pack_alpha` specifies.

Framing walk and what is counted (identical to :func:`host.feed.itch.iter_messages`)
------------------------------------------------------------------------------
``framed``
    Length-prefixed messages walked; each one takes one ``msg_index`` (unknown types and bad
    lengths included, like :func:`host.feed.book.iter_indexed`).
``messages``
    Messages decoded (returned).
``unknown_type``
    Type byte not defined by ITCH 5.0: skipped by its length prefix.
``bad_length``
    Length prefix shorter than the type's length: skipped. Longer is accepted (the spec allows
    messages to grow at the end); the extra bytes are ignored.
``zero_length``
    A zero length prefix: the walk stops there (nothing after it can be trusted).
``truncated``
    A length prefix or message cut off by the end of the buffer: the walk stops.
``consumed``
    Bytes of the buffer walked, i.e. the offset where the walk stopped (``len(buf)`` when the
    buffer ends on a message boundary).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from host.feed.chunks import STAT_KEYS
from host.feed.record_map import RECORD_MAP, RECORD_WIDTHS
from host.feed.spec import MESSAGES

__all__ = [
    "RECORD_DTYPE",
    "TABLE_DTYPES",
    "BulkParse",
    "parse_records",
    "parse_tables",
    "frame_end",
    "STAT_KEYS",
]


_UINT = {1: "<u1", 2: "<u2", 4: "<u4", 6: "<u8", 8: "<u8"}


def _record_dtype() -> np.dtype:
    fields = [("msg_index", "<i8")]
    for name, bits in RECORD_WIDTHS.items():
        fields.append((name, _UINT[bits // 8]))
    return np.dtype(fields, align=True)


RECORD_DTYPE: np.dtype = _record_dtype()
"""Decoded record: ``msg_index`` then the fields of ``hw.layouts.ItchRecord`` except seq/gap/rx_ns.

Numeric fields hold the big-endian wire value; ``stock`` holds the 8 ASCII bytes with the first
character in the least significant byte (``host.feed.record_map.pack_alpha``); one-byte alpha fields
(``msg_type``, ``side``, ``code``) hold the ASCII code. Fields the type does not map are 0.
"""


def _table_dtype(mtype: str) -> np.dtype:
    fields = []
    for f in MESSAGES[mtype].fields:
        if f.kind == "alpha":
            fields.append((f.name, f"S{f.width}"))
        else:
            fields.append((f.name, _UINT[f.width]))
    return np.dtype(fields)


TABLE_DTYPES: dict[str, np.dtype] = {t: _table_dtype(t) for t in MESSAGES}
"""Per-type row dtype: spec field names; alpha fields are raw ``S<width>`` bytes (space padded
as on the wire, numpy strips only trailing NULs), integers/prices/timestamps little-endian
unsigned (6-byte timestamps widened to ``u8``)."""


def _perm(pairs_by_type: dict[int, list[tuple[int, int]]]) -> tuple[np.ndarray, ...]:
    width = max((len(p) for p in pairs_by_type.values()), default=0)
    src = np.zeros((256, max(width, 1)), np.int32)
    dst = np.zeros((256, max(width, 1)), np.int32)
    count = np.zeros(256, np.int32)
    for code, pairs in pairs_by_type.items():
        count[code] = len(pairs)
        for k, (s, d) in enumerate(pairs):
            src[code, k] = s
            dst[code, k] = d
    return src, dst, count


def _field_pairs(f, dst_off: int, reverse: bool) -> list[tuple[int, int]]:
    if reverse:  # big-endian wire integer -> little-endian numpy integer
        return [(f.offset + f.width - 1 - k, dst_off + k) for k in range(f.width)]
    return [(f.offset + k, dst_off + k) for k in range(f.width)]


def _record_tables() -> tuple[np.ndarray, ...]:
    pairs: dict[int, list[tuple[int, int]]] = {}
    for mtype, spec in MESSAGES.items():
        p: list[tuple[int, int]] = []
        for rf, per_type in RECORD_MAP.items():
            sf = per_type.get(mtype)
            if sf is None:
                continue
            f = spec.field(sf)
            dst_off = RECORD_DTYPE.fields[rf][1]
            if RECORD_DTYPE[rf].itemsize < f.width:
                raise ValueError(f"record field {rf} narrower than {mtype}.{sf}")
            p += _field_pairs(f, dst_off, reverse=f.kind != "alpha")
        pairs[spec.code] = p
    return _perm(pairs)


def _table_tables() -> tuple[np.ndarray, ...]:
    pairs: dict[int, list[tuple[int, int]]] = {}
    for mtype, spec in MESSAGES.items():
        dt = TABLE_DTYPES[mtype]
        p: list[tuple[int, int]] = []
        for f in spec.fields:
            p += _field_pairs(f, dt.fields[f.name][1], reverse=f.kind != "alpha")
        pairs[spec.code] = p
    return _perm(pairs)


_TYPE_LEN = np.zeros(256, np.int64)
for _s in MESSAGES.values():
    _TYPE_LEN[_s.code] = _s.length
_REC_SRC, _REC_DST, _REC_N = _record_tables()
_TAB_SRC, _TAB_DST, _TAB_N = _table_tables()
_TAB_ITEMSIZE = np.zeros(256, np.int64)
for _t, _dt in TABLE_DTYPES.items():
    _TAB_ITEMSIZE[ord(_t)] = _dt.itemsize

# indices into the counter array returned by _scan
_FRAMED, _GOOD, _UNKNOWN, _BADLEN, _ZERO, _TRUNC, _END = range(7)


@numba.njit(cache=True, nogil=True)
def _scan(buf, type_len, per_type):
    """Walk the framing once: counters (see the _FRAMED... indices) and per-type counts."""
    c = np.zeros(7, np.int64)
    n = buf.shape[0]
    pos = 0
    while pos < n:
        if pos + 2 > n:
            c[_TRUNC] += 1
            break
        ln = (np.int64(buf[pos]) << 8) | np.int64(buf[pos + 1])
        if ln == 0:
            c[_ZERO] += 1
            break
        body = pos + 2
        if body + ln > n:
            c[_TRUNC] += 1
            break
        t = buf[body]
        tl = type_len[t]
        c[_FRAMED] += 1
        if tl == 0:
            c[_UNKNOWN] += 1
        elif ln < tl:
            c[_BADLEN] += 1
        else:
            c[_GOOD] += 1
            per_type[t] += 1
        pos = body + ln
    c[_END] = pos
    return c


@numba.njit(cache=True, nogil=True)
def _fill_records(buf, end, type_len, src, dst, npairs, out, msg_index, base_index):
    """Second pass: scatter the bytes of every good message into its record row."""
    pos = 0
    i = 0
    idx = base_index
    while pos < end:
        ln = (np.int64(buf[pos]) << 8) | np.int64(buf[pos + 1])
        body = pos + 2
        t = buf[body]
        tl = type_len[t]
        if tl != 0 and ln >= tl:
            row = out[i]
            for k in range(npairs[t]):
                row[dst[t, k]] = buf[body + src[t, k]]
            msg_index[i] = idx
            i += 1
        idx += 1
        pos = body + ln


@numba.njit(cache=True, nogil=True)
def _fill_tables(
    buf, end, type_len, src, dst, npairs, arena, base, itemsize, types, offsets, rows, msg_index
):
    """Second pass for per-type tables: rows of type t live in arena[base[t]:] (itemsize[t])."""
    cursor = np.zeros(256, np.int64)
    pos = 0
    i = 0
    idx = 0
    while pos < end:
        ln = (np.int64(buf[pos]) << 8) | np.int64(buf[pos + 1])
        body = pos + 2
        t = buf[body]
        tl = type_len[t]
        if tl != 0 and ln >= tl:
            r = cursor[t]
            cursor[t] = r + 1
            o = base[t] + r * itemsize[t]
            for k in range(npairs[t]):
                arena[o + dst[t, k]] = buf[body + src[t, k]]
            types[i] = t
            offsets[i] = body
            rows[i] = r
            msg_index[i] = idx
            i += 1
        idx += 1
        pos = body + ln


def _as_u8(buf) -> np.ndarray:
    if isinstance(buf, np.ndarray):
        if buf.dtype != np.uint8 or buf.ndim != 1:
            buf = np.ascontiguousarray(buf).reshape(-1).view(np.uint8)
        return buf
    return np.frombuffer(buf, dtype=np.uint8)


def _stats(c: np.ndarray) -> dict:
    return {
        "framed": int(c[_FRAMED]),
        "messages": int(c[_GOOD]),
        "unknown_type": int(c[_UNKNOWN]),
        "bad_length": int(c[_BADLEN]),
        "zero_length": int(c[_ZERO]),
        "truncated": int(c[_TRUNC]),
        "consumed": int(c[_END]),
    }


def frame_end(buf) -> tuple[int, int, bool]:
    """Find where the whole framed messages of ``buf`` end.

    Parameters
    ----------
    buf : bytes-like or numpy.ndarray
        Buffer in NASDAQ file framing.

    Returns
    -------
    end : int
        Offset just past the last complete length-prefixed message (before a zero length
        prefix, if any).
    framed : int
        Number of complete length-prefixed messages before ``end``.
    zero_length : bool
        True when the walk stopped on a zero length prefix rather than at the end of data.
    """
    a = _as_u8(buf)
    c = _scan(a, _TYPE_LEN, np.zeros(256, np.int64))
    return int(c[_END]), int(c[_FRAMED]), bool(c[_ZERO])


def parse_records(buf, *, base_index: int = 0) -> tuple[np.ndarray, dict]:
    """Decode every message of ``buf`` into one flat record array.

    Parameters
    ----------
    buf : bytes-like or numpy.ndarray of uint8
        Messages in NASDAQ file framing (2-byte big-endian length prefix each).
    base_index : int, optional
        ``msg_index`` of the first length-prefixed message of ``buf`` (to continue a running
        index across chunks: add ``stats['framed']`` of each chunk).

    Returns
    -------
    records : numpy.ndarray
        :data:`RECORD_DTYPE` rows, one per decoded message, in stream order.
    stats : dict
        Counters, see the module docstring (:data:`STAT_KEYS`).
    """
    a = _as_u8(buf)
    c = _scan(a, _TYPE_LEN, np.zeros(256, np.int64))
    n = int(c[_GOOD])
    out = np.zeros(n, RECORD_DTYPE)
    if n:
        raw = out.view(np.uint8).reshape(n, RECORD_DTYPE.itemsize)
        _fill_records(
            a,
            c[_END],
            _TYPE_LEN,
            _REC_SRC,
            _REC_DST,
            _REC_N,
            raw,
            out["msg_index"],
            np.int64(base_index),
        )
    return out, _stats(c)


class BulkParse(NamedTuple):
    """Result of :func:`parse_tables`.

    Attributes
    ----------
    types : numpy.ndarray
        uint8 type byte of each decoded message, in stream order.
    offsets : numpy.ndarray
        int64 offset in the input buffer of each decoded message's type byte.
    rows : numpy.ndarray
        int64 row of each decoded message in ``tables[chr(types[i])]``.
    msg_index : numpy.ndarray
        int64 index of each decoded message among all length-prefixed messages.
    tables : dict
        Type character -> structured array (:data:`TABLE_DTYPES`), for all 23 types (empty
        arrays for types that did not occur).
    stats : dict
        Counters, see the module docstring.
    """

    types: np.ndarray
    offsets: np.ndarray
    rows: np.ndarray
    msg_index: np.ndarray
    tables: dict
    stats: dict


def parse_tables(buf) -> BulkParse:
    """Decode every message of ``buf`` into one structured array per message type.

    Parameters
    ----------
    buf : bytes-like or numpy.ndarray of uint8
        Messages in NASDAQ file framing.

    Returns
    -------
    BulkParse
        Per-type tables with spec field names, plus the message order (``types``, ``rows``,
        ``offsets``, ``msg_index``) and the stats.
    """
    a = _as_u8(buf)
    per_type = np.zeros(256, np.int64)
    c = _scan(a, _TYPE_LEN, per_type)
    n = int(c[_GOOD])
    sizes = per_type * _TAB_ITEMSIZE
    base = np.zeros(256, np.int64)
    base[1:] = np.cumsum(sizes)[:-1]
    arena = np.zeros(int(sizes.sum()), np.uint8)
    types = np.zeros(n, np.uint8)
    offsets = np.zeros(n, np.int64)
    rows = np.zeros(n, np.int64)
    msg_index = np.zeros(n, np.int64)
    if n:
        _fill_tables(
            a,
            c[_END],
            _TYPE_LEN,
            _TAB_SRC,
            _TAB_DST,
            _TAB_N,
            arena,
            base,
            _TAB_ITEMSIZE,
            types,
            offsets,
            rows,
            msg_index,
        )
    tables = {}
    for t, dt in TABLE_DTYPES.items():
        code = ord(t)
        b = int(base[code])
        tables[t] = arena[b : b + int(sizes[code])].view(dt)
    return BulkParse(types, offsets, rows, msg_index, tables, _stats(c))


def _bench(n_messages: int = 10_000_000, repeat: int = 5, seed: int = 0) -> float:
    """Measure :func:`parse_records` on random messages of all types (book types weighted).

    Returns the best rate in messages per second (also printed).
    """
    import time

    rng = np.random.default_rng(seed)
    types = list(MESSAGES)
    w = np.array([30.0 if t in "AFECXDU" else 1.0 for t in types])
    block = b"".join(
        MESSAGES[t].length.to_bytes(2, "big") + t.encode() + rng.bytes(MESSAGES[t].length - 1)
        for t in rng.choice(types, 100_000, p=w / w.sum())
    )
    buf = np.frombuffer(block * max(1, n_messages // 100_000), np.uint8)
    parse_records(buf[:4096])  # compile / load the cache
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        _recs, st = parse_records(buf)
        best = min(best, time.perf_counter() - t0)
    rate = st["messages"] / best
    print(
        f"parse_records: {st['messages']:,} messages, {buf.nbytes / 1e6:.0f} MB, "
        f"best of {repeat}: {best:.3f} s = {rate / 1e6:.1f} M msgs/s"
    )
    return rate


if __name__ == "__main__":
    _bench()
