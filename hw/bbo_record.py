"""The BBO update record the card writes to host memory: 64 bytes, little-endian.

One record per BBO change (the book emits one when a message changes the best bid or offer of
a subscribed slot). Each record is one beat of the top level's ``bbo`` stream (512 bits, byte 0
in bits 7:0; ``8 * record_bytes(depth_n)`` bits in a depth build) and one 64-byte unit of the
C2H DMA stream (a depth record: ``record_bytes / 64`` consecutive units). Pure Python + numpy:
the host driver reads DMA buffers with ``np.frombuffer(buf, dtype=dtype(depth_n))``.

======  ====  ==============  ====================================================================
offset  size  field           meaning
======  ====  ==============  ====================================================================
0       8     ``seq``         MoldUDP64 sequence number of the message that changed the BBO
8       8     ``ts_event``    ITCH timestamp of that message (ns since midnight, 48 bits used)
16      2     ``locate``      ITCH stock locate
18      2     ``slot``        book slot of that locate (the one the driver subscribed it to)
20      1     ``flags``       bit 0 ``gap`` (stale): a sequence gap came before this message
                              since the slot was last cleared, the book may miss orders;
                              bit 1 ``bid_valid``, bit 2 ``ask_valid`` (side not empty);
                              bit 3 ``cleared``: not emitted by a message: the record of the
                              commit of a host re-seed (hw.top emits no record for a plain
                              clear); ``seq`` is the one the host gave, ``msg_type`` 0;
                              bit 4 ``book_invalid``: the slot's book holds something it cannot
                              represent (a far level in the top N, off-grid price, table full,
                              aggregate size overflow); the BBO is not exact;
                              bit 5 ``recovered``: the host re-seeded the slot since its last
                              clear (set on the commit record and every later record);
                              bit 6 ``book_bad``: ``book_invalid`` until the slot is cleared
                              (every cause but ``far_visible``, which heals by itself)
                              bit 7 ``depth_only``: a depth record (``depth_n`` > 1) emitted
                              for a change at levels 2..``depth_n`` alone: the best levels and
                              the validity are those of the slot's previous record (``stale``
                              may have been set since, by a gap that changed nothing); never
                              set when ``depth_n`` = 1 or on a commit
21      1     ``msg_type``    ITCH message type (ASCII) that caused the update; 0 for a clear
22      1     ``depth_n``     levels per side this record carries (1: this 64-byte record only)
23      1     ``reserved0``   0
24      4     ``bid_px``      best bid price (ITCH price, 4 implied decimals); 0 if empty
28      4     ``bid_sz``      shares at the best bid (saturates at 2**32-1)
32      4     ``bid_ct``      orders at the best bid
36      4     ``ask_px``      best ask price; 0 if empty
40      4     ``ask_sz``      shares at the best ask
44      4     ``ask_ct``      orders at the best ask
48      4     ``record_seq``  records emitted since reset, starting at 0, modulo 2**32 (a jump
                              other than +1 mod 2**32 = a lost record)
52      4     ``card_cycles`` ``STATUS_CYCLES`` bits 31:0 when the record entered the ``bbo``
                              output register (the first cycle it is valid on the stream);
                              wraps every 2**32 cycles (13.3 s at 322 MHz): the host unwraps it
                              against its own knowledge of when the message went in
56      8     ``rx_ns``       hardware timestamp: the card's 64-bit ns clock (``CLOCK_*``
                              registers, :mod:`hw.nsclock`; the host sets and trims it) at the
                              first MAC beat of the frame that carried the message; 0 on a
                              re-seed's commit record
======  ====  ==============  ====================================================================

An empty side is ``px = sz = ct = 0`` with its valid flag clear, as
``host.feed.book.Bbo`` reports it.
Depth records (``depth_n`` > 1, ``ID_DEPTH_N`` / ``ID_RECORD_BYTES`` of the build): the same 64
bytes, then levels 2..``depth_n`` of the bid side, then of the ask side, 12 bytes each
(``px``, ``sz`` saturating at 2**32-1, ``ct``; all 0 past the side's last level), zero padding to
a multiple of 64 bytes (:func:`record_bytes`; ``depth_n`` = 5: 160 bytes used, 192 sent). A
depth build emits a record whenever any of the top ``depth_n`` levels of a side (or the
validity) changes; ``depth_only`` marks the ones a ``depth_n`` = 1 build would not emit (the
records without it are, row for row, those of a ``depth_n`` = 1 build).
:func:`dtype` gives the numpy dtype of a build's record (its first 64 bytes are :data:`DTYPE`'s
fields, so code that reads ``rec["bid_px"]`` works on both); :func:`base` strips the levels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FIELDS", "DTYPE", "RECORD_BYTES", "FLAG_GAP", "FLAG_STALE", "FLAG_BID_VALID",
           "FLAG_ASK_VALID", "FLAG_CLEARED", "FLAG_BOOK_INVALID", "FLAG_RECOVERED",
           "FLAG_BOOK_BAD", "FLAG_DEPTH_ONLY", "LEVEL_BYTES", "MAX_DEPTH_N", "record_bytes",
           "dtype", "base", "depth_levels", "pack", "unpack", "to_int",
           "from_int", "markdown"]

RECORD_BYTES = 64

FLAG_GAP = 1 << 0
FLAG_BID_VALID = 1 << 1
FLAG_ASK_VALID = 1 << 2
FLAG_CLEARED = 1 << 3
FLAG_BOOK_INVALID = 1 << 4
FLAG_RECOVERED = 1 << 5
FLAG_BOOK_BAD = 1 << 6
FLAG_DEPTH_ONLY = 1 << 7
FLAG_STALE = FLAG_GAP
"""Alias: the gap bit is the book's per-slot ``stale`` flag."""

# (name, offset, size in bytes, description)
FIELDS: tuple[tuple[str, int, int, str], ...] = (
    ("seq", 0, 8, "MoldUDP64 sequence number of the message that changed the BBO"),
    ("ts_event", 8, 8, "ITCH timestamp (ns since midnight)"),
    ("locate", 16, 2, "ITCH stock locate"),
    ("slot", 18, 2, "book slot of the locate"),
    ("flags", 20, 1, "bit0 gap (stale since a sequence gap), bit1 bid_valid, bit2 ask_valid, "
     "bit3 cleared (a re-seed's commit, not a message), bit4 book_invalid, bit5 recovered, "
     "bit6 book_bad (not valid until cleared), bit7 depth_only (a change at levels 2..depth_n "
     "alone; never when depth_n = 1)"),
    ("msg_type", 21, 1, "ITCH message type (ASCII); 0 for a clear"),
    ("depth_n", 22, 1, "levels per side in this record (1: 64-byte record)"),
    ("reserved0", 23, 1, "0"),
    ("bid_px", 24, 4, "best bid price"),
    ("bid_sz", 28, 4, "shares at the best bid"),
    ("bid_ct", 32, 4, "orders at the best bid"),
    ("ask_px", 36, 4, "best ask price"),
    ("ask_sz", 40, 4, "shares at the best ask"),
    ("ask_ct", 44, 4, "orders at the best ask"),
    ("record_seq", 48, 4, "records emitted since reset, modulo 2**32"),
    ("card_cycles", 52, 4, "STATUS_CYCLES bits 31:0 when the record entered the bbo output "
     "register"),
    ("rx_ns", 56, 8, "hardware timestamp: the card's ns clock (CLOCK_*) at the first MAC beat "
     "of the message's frame; 0 on a re-seed's commit"),
)

DTYPE = np.dtype({
    "names": [f[0] for f in FIELDS],
    "formats": [{1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}[f[2]] for f in FIELDS],
    "offsets": [f[1] for f in FIELDS],
    "itemsize": RECORD_BYTES,
})
"""numpy dtype of one record (little-endian, 64 bytes)."""


def _check_layout():
    pos = 0
    for name, off, size, _ in FIELDS:
        if off != pos:
            raise AssertionError(f"{name}: offset {off} != {pos}")
        if off % size:
            raise AssertionError(f"{name}: not naturally aligned")
        pos += size
    if pos != RECORD_BYTES:
        raise AssertionError(f"record is {pos} bytes")


_check_layout()

LEVEL_BYTES = 12
"""Bytes of one level past the first in a depth record: px, sz, ct (u32 each)."""

MAX_DEPTH_N = 16
"""Largest ``depth_n`` a record format is defined for (``hw.book`` caps it at its ``k``)."""


def _check_depth(depth_n) -> int:
    if not isinstance(depth_n, int | np.integer) or isinstance(depth_n, bool):
        raise TypeError(f"depth_n must be an int, not {depth_n!r}")
    if not 1 <= depth_n <= MAX_DEPTH_N:
        raise ValueError(f"depth_n must be in 1..{MAX_DEPTH_N}, not {depth_n}")
    return int(depth_n)


def record_bytes(depth_n: int) -> int:
    """Bytes of one record of a ``depth_n`` build: 64 + 24·(depth_n-1), rounded up to 64."""
    used = RECORD_BYTES + 2 * LEVEL_BYTES * (_check_depth(depth_n) - 1)
    return -(-used // RECORD_BYTES) * RECORD_BYTES


def dtype(depth_n: int) -> np.dtype:
    """numpy dtype of one record of a ``depth_n`` build (:data:`DTYPE` when ``depth_n`` = 1).

    The fields of :data:`DTYPE`, plus ``bid_levels`` and ``ask_levels``: ``(depth_n - 1, 3)``
    little-endian u32 arrays of ``(px, sz, ct)`` for levels 2..``depth_n``, best first.
    """
    n = _check_depth(depth_n)
    if n == 1:
        return DTYPE
    d = n - 1
    return np.dtype({
        "names": [f[0] for f in FIELDS] + ["bid_levels", "ask_levels"],
        "formats": [DTYPE.fields[f[0]][0] for f in FIELDS] + [("<u4", (d, 3))] * 2,
        "offsets": [f[1] for f in FIELDS] + [RECORD_BYTES, RECORD_BYTES + LEVEL_BYTES * d],
        "itemsize": record_bytes(n),
    })


def base(recs: np.ndarray) -> np.ndarray:
    """Records of any :func:`dtype` -> :data:`DTYPE` records (a copy; the levels dropped)."""
    if recs.dtype == DTYPE:
        return recs
    out = np.zeros(len(recs), DTYPE)
    for name in DTYPE.names:
        out[name] = recs[name]
    return out


def depth_levels(recs: np.ndarray, side: str) -> np.ndarray:
    """``(n, depth_n, 3)`` array of ``(px, sz, ct)`` per record for ``side`` 'B' or 'S', best first.

    Level 1 comes from the 64-byte part (``bid_px``... or ``ask_px``...), levels 2.. from
    ``bid_levels``/``ask_levels`` (absent for a ``depth_n`` = 1 dtype: shape ``(n, 1, 3)``).
    """
    if side not in ("B", "S"):
        raise ValueError(f"side must be 'B' or 'S', not {side!r}")
    p = "bid" if side == "B" else "ask"
    top = np.stack([recs[f"{p}_px"], recs[f"{p}_sz"], recs[f"{p}_ct"]], axis=-1)
    top = top.astype(np.uint32)[:, None, :]
    if f"{p}_levels" not in (recs.dtype.names or ()):
        return top
    return np.concatenate([top, recs[f"{p}_levels"].astype(np.uint32)], axis=1)


def pack(**fields) -> bytes:
    """64 bytes for the given fields (missing fields are 0; unknown names raise KeyError)."""
    rec = np.zeros(1, DTYPE)
    for k, v in fields.items():
        if k not in DTYPE.names:
            raise KeyError(k)
        rec[k] = v
    return rec.tobytes()


def unpack(buf: bytes) -> dict[str, int]:
    """The fields of one 64-byte record."""
    if len(buf) != RECORD_BYTES:
        raise ValueError(f"a record is {RECORD_BYTES} bytes, not {len(buf)}")
    rec = np.frombuffer(buf, DTYPE)[0]
    return {k: int(rec[k]) for k in DTYPE.names}


def to_int(buf: bytes) -> int:
    """The 512-bit stream payload of a record (byte 0 in bits 7:0)."""
    return int.from_bytes(buf, "little")


def from_int(value: int) -> bytes:
    """Inverse of :func:`to_int`."""
    return int(value).to_bytes(RECORD_BYTES, "little")


def field_bits() -> dict[str, tuple[int, int]]:
    """Field name -> (lsb, width) in the 512-bit payload (for the gateware packer)."""
    return {name: (8 * off, 8 * size) for name, off, size, _ in FIELDS}


def markdown() -> str:
    lines = ["| offset | bytes | field | meaning |", "| ---: | ---: | --- | --- |"]
    for name, off, size, desc in FIELDS:
        lines.append(f"| {off} | {size} | `{name}` | {desc} |")
    return "\n".join(lines) + "\n"
