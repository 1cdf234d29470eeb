"""Stream payload layouts shared by every gateware block and every cocotb bench.

Benches decode port values with these very layouts (``for name, f in layout: ...``), never with
hand-written bit slices.
"""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data

from host.feed.record_map import META_FIELDS, RECORD_WIDTHS

__all__ = ["mac_beat_layout", "ItchRecord", "record_layout_fields", "unpack", "pack"]


def mac_beat_layout(data_width: int = 64) -> data.StructLayout:
    """Payload of a MAC receive stream beat.

    ``data`` carries wire byte 0 in bits 7:0; ``keep`` has one enable bit per byte, contiguous
    from bit 0 (only the last beat of a frame may be partial); ``last`` marks the final beat of a
    frame; ``error`` is set on the last beat when the MAC saw a bad FCS or a PHY error.
    """
    if not isinstance(data_width, int) or isinstance(data_width, bool):
        raise TypeError(f"data_width must be an int, not {data_width!r}")
    if data_width < 16 or data_width % 8 or data_width & (data_width - 1):
        raise ValueError(f"data_width must be a power of two multiple of 8 >= 16, not {data_width}")
    return data.StructLayout(
        {
            "data": unsigned(data_width),
            "keep": unsigned(data_width // 8),
            "last": unsigned(1),
            "error": unsigned(1),
        }
    )


def record_layout_fields() -> dict[str, int]:
    """Field name -> width of the decoded ITCH record, in layout order."""
    return {**RECORD_WIDTHS, **META_FIELDS}


ItchRecord = data.StructLayout({k: unsigned(w) for k, w in record_layout_fields().items()})
"""One decoded ITCH 5.0 message; see :mod:`host.feed.record_map` for what fills each field."""


def unpack(layout: data.Layout, value: int) -> dict[str, int]:
    """Split an integer port value into a ``{field: int}`` dict by ``layout`` (for benches)."""
    value = int(value)
    out = {}
    for name, f in layout:
        out[name] = (value >> f.offset) & ((1 << f.width) - 1)
    return out


def pack(layout: data.Layout, fields: dict[str, int]) -> int:
    """Inverse of :func:`unpack`; unknown names raise ``KeyError``."""
    value = 0
    for name, v in fields.items():
        f = layout[name]
        v = int(v)
        if not 0 <= v < (1 << f.width):
            raise ValueError(f"{name}={v} does not fit {f.width} bits")
        value |= v << f.offset
    return value
