"""Output layouts of the book (:mod:`hw.book`): the BBO update record and its depth levels.

Widths of the fields that come from ITCH (locate, timestamp, price) are derived from
:mod:`host.feed.record_map`; the sequence number from its ``META_FIELDS``. Sizes and
order counts use the widths of the reference book's trace (:data:`host.feed.book.BBO_DTYPE`: 64-bit
sizes, 32-bit counts); the gateware stores narrower values internally and zero-extends them.

:func:`decode_bbo` turns a port value into a plain dict for benches and the host, using the
layout offsets only (no hand-written bit slices).
"""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data

from host.feed.record_map import META_FIELDS, RECORD_WIDTHS

__all__ = [
    "PX_WIDTH",
    "SZ_WIDTH",
    "CT_WIDTH",
    "LevelLayout",
    "bbo_layout",
    "decode_bbo",
]

PX_WIDTH: int = RECORD_WIDTHS["price"]
"""Price(4) width (32)."""
SZ_WIDTH: int = 64
"""Aggregate shares at one level, as the reference trace (``u8``)."""
CT_WIDTH: int = 32
"""Orders at one level, as the reference trace (``u4``)."""

LevelLayout = data.StructLayout(
    {"px": unsigned(PX_WIDTH), "sz": unsigned(SZ_WIDTH), "ct": unsigned(CT_WIDTH)}
)
"""One reported price level: price, aggregate shares, order count (all 0 = no level)."""


def bbo_layout(depth_n: int) -> data.StructLayout:
    """Layout of one BBO update record with ``depth_n`` levels per side.

    Fields: ``locate``, ``timestamp`` (ITCH ns), ``seq`` (MoldUDP64 sequence number of the
    message), ``rx_ns`` (the hardware timestamp of its frame; 0 on a re-seed's commit),
    ``msg_type`` (the ITCH type byte of the message that caused the update),
    ``bid_px/bid_sz/bid_ct``, ``ask_px/ask_sz/ask_ct`` (an empty side is 0, 0, 0),
    ``valid`` (1: the book is exact; 0: something it could not represent happened since the
    last clear of the slot), ``stale`` (1: a sequence gap came since the last clear),
    ``recovered`` (1: the host re-seeded the slot since its last clear, :attr:`hw.book.Book.inj`),
    ``seeded`` (1: the record of a re-seed's commit, not of a message: ``seq`` is the one the
    host gave, ``msg_type`` and ``timestamp`` are 0), ``bad`` (1: not valid until the slot is
    cleared: table full, off grid, size overflow, missing level; ``valid = 0`` without it is
    ``far_visible``, which heals by itself), ``slot`` (the book slot of ``locate``),
    ``depth_only`` (1: emitted only because levels 2..``depth_n`` changed, the best levels and
    the validity are unchanged: :class:`hw.book.Book` ``depth_records``), and
    ``bids``/``asks``: the best ``depth_n`` levels of each side, best first (``bids[0]`` equals
    the BBO bid), missing levels zero.
    """
    if not isinstance(depth_n, int) or isinstance(depth_n, bool):
        raise TypeError(f"depth_n must be an int, not {depth_n!r}")
    if depth_n < 1:
        raise ValueError(f"depth_n must be >= 1, not {depth_n}")
    return data.StructLayout(
        {
            "locate": unsigned(RECORD_WIDTHS["stock_locate"]),
            "timestamp": unsigned(RECORD_WIDTHS["timestamp"]),
            "seq": unsigned(META_FIELDS["seq"]),
            "rx_ns": unsigned(META_FIELDS["rx_ns"]),
            "msg_type": unsigned(RECORD_WIDTHS["msg_type"]),
            "bid_px": unsigned(PX_WIDTH),
            "bid_sz": unsigned(SZ_WIDTH),
            "bid_ct": unsigned(CT_WIDTH),
            "ask_px": unsigned(PX_WIDTH),
            "ask_sz": unsigned(SZ_WIDTH),
            "ask_ct": unsigned(CT_WIDTH),
            "valid": unsigned(1),
            "stale": unsigned(1),
            "recovered": unsigned(1),
            "seeded": unsigned(1),
            "bad": unsigned(1),
            "slot": unsigned(16),
            "depth_only": unsigned(1),
            "bids": data.ArrayLayout(LevelLayout, depth_n),
            "asks": data.ArrayLayout(LevelLayout, depth_n),
        }
    )


def _field(value: int, offset: int, width: int) -> int:
    return (value >> offset) & ((1 << width) - 1)


def decode_bbo(value: int, depth_n: int) -> dict:
    """Decode a BBO record port value: scalar fields as ints, ``bids``/``asks`` as lists of
    ``(px, sz, ct)`` tuples with the empty (all-zero) levels dropped."""
    layout = bbo_layout(depth_n)
    value = int(value)
    out: dict = {}
    for name, f in layout:
        if isinstance(f.shape, data.ArrayLayout):
            levels = []
            el = f.shape.elem_shape
            for i in range(f.shape.length):
                base = f.offset + i * el.size
                lv = tuple(
                    _field(value, base + el[k].offset, el[k].width) for k in ("px", "sz", "ct")
                )
                if lv != (0, 0, 0):
                    levels.append(lv)
            out[name] = levels
        else:
            out[name] = _field(value, f.offset, f.width)
    return out
