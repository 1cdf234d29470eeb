"""The decoded record of a message, computed without ``host.feed.record_map`` (bench oracle).

The decoder bench and the ingress bench compare the gateware's records with this second,
independent decoder: the raw message bytes are parsed by itchfeed (the PyPI ``itch`` package, a
third-party ITCH 5.0 parser that shares no code or table with this project), and the table below
says, type by type in the words of the ITCH 5.0 specification, which message field the record's
fields carry (``docs/ingress.md``, "Decoded record"). It is written out by hand, on purpose: a
wrong entry of ``host.feed.record_map.RECORD_MAP`` (from which the gateware muxes, the host
model and ``hw.layouts.ItchRecord`` are all generated) then shows up as a mismatch instead of
being copied into the expectation. Only the field *widths* come from the record layout, to
pack the values.
"""

from __future__ import annotations

from itch.messages import messages as _ITCHFEED

__all__ = ["independent_record", "FIELDS_BY_TYPE"]

_ALL = "SRHYLVWKJhAFECXDUPQBINO"

# record field -> {types: itchfeed attribute}, from the ITCH 5.0 specification's field names
_TABLE: dict[str, dict[str, str]] = {
    "stock_locate": dict.fromkeys(_ALL, "stock_locate"),
    "tracking_number": dict.fromkeys(_ALL, "tracking_number"),
    "timestamp": dict.fromkeys(_ALL, "timestamp"),
    # the order a message acts on; for Order Replace the ORIGINAL order (the one replaced)
    "order_ref": {
        **dict.fromkeys("AFECXDP", "order_reference_number"),
        "U": "order_reference_number",
    },
    # only Order Replace creates a second reference: the new order
    "new_order_ref": {"U": "new_order_reference_number"},
    "side": dict.fromkeys("AFP", "buy_sell_indicator"),
    "shares": {
        **dict.fromkeys("AFPU", "shares"),
        **dict.fromkeys("EC", "executed_shares"),
        "X": "cancelled_shares",
    },
    "price": {**dict.fromkeys("AFPU", "price"), "C": "execution_price", "Q": "cross_price"},
    "match_number": dict.fromkeys("ECPQB", "match_number"),
    "stock": dict.fromkeys("RHYLKJhAFPQINO", "stock"),
    "code": {
        "S": "event_code",
        "H": "trading_state",
        "W": "breached_level",
        "Y": "reg_sho_action",
        "h": "operational_halt_action",
        "C": "printable",
        "Q": "cross_type",
    },
}

FIELDS_BY_TYPE: dict[str, tuple[str, ...]] = {
    t: tuple(rf for rf, per in _TABLE.items() if t in per) for t in _ALL
}
"""Record fields each type fills (the others are 0)."""


def _value(v) -> int:
    if isinstance(v, bytes):
        return int.from_bytes(v, "little")  # alpha: first character in bits 7:0
    return int(v)


def independent_record(msg: bytes, seq: int, gap: bool, widths: dict[str, int]) -> dict | None:
    """The record for ``msg`` (raw bytes, its MoldUDP64 block), or None when the decoder must
    drop it (empty, unknown type, shorter than the type's size as itchfeed knows it).

    ``widths``: record field -> bit width (``hw.layouts.record_layout_fields()``); every field
    not listed for the type is 0.
    """
    if not msg:
        return None
    cls = _ITCHFEED.get(msg[:1])
    if cls is None:
        return None
    size = cls.message_size if hasattr(cls, "message_size") else None
    parsed = None
    if size is None or len(msg) >= size:
        try:
            parsed = cls(bytes(msg[:size]) if size else bytes(msg))
        except Exception:  # noqa: BLE001 - itchfeed raises struct.error on short input
            parsed = None
    if parsed is None:
        return None
    t = msg[:1].decode("latin-1")
    out = dict.fromkeys(widths, 0)
    out["msg_type"] = msg[0]
    for rf in FIELDS_BY_TYPE[t]:
        out[rf] = _value(getattr(parsed, _TABLE[rf][t]))
    out["seq"] = seq
    out["gap"] = int(bool(gap))
    return out
