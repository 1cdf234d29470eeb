"""Which ITCH field feeds which field of the decoded record, as pure Python data.

The ITCH decoder emits one fixed-layout record per message (:data:`hw.layouts.ItchRecord`).
This table says, for every record field, which spec field of which message type fills it;
widths are derived from :mod:`host.feed.spec`, never written here. It has no Amaranth import, so
the host reference model and the cocotb benches compute the expected record from the very same
table the gateware is generated from (:func:`expected_record`). It sits on the feed floor with
the protocol table because the bulk parser (:mod:`host.feed.bulk`) emits this very record; the
gateware (``hw/``) imports it from here.

Multi-byte alpha fields (``stock``) are packed with their first character in bits 7:0, the same
byte order as the 64-bit MAC data bus. Numeric fields are the big-endian wire value.
"""

from __future__ import annotations

from host.feed.spec import MESSAGES

__all__ = [
    "RECORD_MAP",
    "RECORD_WIDTHS",
    "META_FIELDS",
    "LOCATE_MAX",
    "expected_record",
    "pack_alpha",
]

# record field -> {message type: spec field name}
RECORD_MAP: dict[str, dict[str, str]] = {
    "msg_type": {t: "message_type" for t in MESSAGES},
    "stock_locate": {t: "stock_locate" for t in MESSAGES},
    "tracking_number": {t: "tracking_number" for t in MESSAGES},
    "timestamp": {t: "timestamp" for t in MESSAGES},
    "order_ref": {
        **{t: "order_reference_number" for t in "AFECXDP"},
        "U": "original_order_reference_number",
    },
    "new_order_ref": {"U": "new_order_reference_number"},
    "side": {t: "buy_sell_indicator" for t in "AFP"},
    "shares": {
        **{t: "shares" for t in "AFPU"},
        **{t: "executed_shares" for t in "EC"},
        "X": "cancelled_shares",
    },
    "price": {**{t: "price" for t in "AFPU"}, "C": "execution_price", "Q": "cross_price"},
    "match_number": {t: "match_number" for t in "ECPQB"},
    "stock": {t: "stock" for t, m in MESSAGES.items() if "stock" in m.names},
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


def _derive_widths() -> dict[str, int]:
    widths = {}
    for rf, per_type in RECORD_MAP.items():
        ws = {MESSAGES[t].field(sf).width for t, sf in per_type.items()}
        if len(ws) != 1:
            raise ValueError(f"record field {rf} maps fields of different widths: {ws}")
        widths[rf] = 8 * ws.pop()
    return widths


RECORD_WIDTHS: dict[str, int] = _derive_widths()
"""Bit width of every record field that carries ITCH data."""

LOCATE_MAX: int = (1 << RECORD_WIDTHS["stock_locate"]) - 1
"""Largest stock locate code (the ITCH ``stock_locate`` field is 2 bytes)."""

META_FIELDS: dict[str, int] = {"seq": 64, "gap": 1, "rx_ns": 64}
"""Fields added by the ingress: message sequence number and 'a gap came before it'
(MoldUDP64), and the hardware timestamp of the message's frame (``rx_ns``, hw/nsclock.py)."""


def pack_alpha(value: str | bytes, width: int) -> int:
    """Pack a space-padded alpha field with its first character in the least significant byte."""
    b = value.encode("latin-1") if isinstance(value, str) else bytes(value)
    return int.from_bytes(b.ljust(width, b" "), "little")


def expected_record(msg, *, seq: int = 0, gap: bool = False, rx_ns: int = 0) -> dict[str, int]:
    """The record the decoder must emit for ``msg`` (a :mod:`host.feed.itch` message tuple).

    Fields that the message type does not map are 0.
    """
    mtype = msg.message_type
    spec = MESSAGES[mtype]
    out: dict[str, int] = {}
    for rf, per_type in RECORD_MAP.items():
        sf = per_type.get(mtype)
        if sf is None:
            out[rf] = 0
            continue
        f = spec.field(sf)
        v = getattr(msg, sf)
        out[rf] = pack_alpha(v, f.width) if f.kind == "alpha" else int(v)
    out["seq"] = seq
    out["gap"] = int(bool(gap))
    out["rx_ns"] = int(rx_ns)
    return out
