"""The one protocol table: NASDAQ TotalView-ITCH 5.0 and MoldUDP64 layouts.

Transcribed once from ``shared/specs/nasdaq-totalview-itch-5.0`` (section 1.3 onwards) and
``shared/specs/moldudp64-1.0``. Every length and offset used anywhere in the project (host codec,
numpy dtypes, gateware layouts, cocotb bench decoders) is derived from this module. It imports
nothing outside the standard library so that hw/, host/ and sim/ can all depend on it cheaply.

Field kinds
-----------
``int``
    Unsigned big-endian integer of ``width`` bytes.
``alpha``
    ASCII, left justified and right padded with spaces.
``price4``
    Unsigned big-endian integer, four implied decimal places (``Price(4)``).
``price8``
    Unsigned big-endian integer, eight implied decimal places (``Price(8)``).
``ts6``
    Unsigned 48-bit big-endian nanoseconds since midnight.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Field",
    "MessageSpec",
    "MESSAGES",
    "MESSAGE_TYPES",
    "MAX_MESSAGE_LENGTH",
    "MIN_MESSAGE_LENGTH",
    "BOOK_TYPES",
    "MOLD_HEADER",
    "MOLD_HEADER_LENGTH",
    "MOLD_BLOCK_LENGTH_WIDTH",
    "MOLD_END_OF_SESSION",
    "MOLD_SESSION_WIDTH",
    "PRICE4_MAX",
    "length_of",
    "field",
]

KINDS = ("int", "alpha", "price4", "price8", "ts6")


@dataclass(frozen=True)
class Field:
    """One field of a message: byte ``offset`` from the message type byte, ``width`` in bytes."""

    name: str
    offset: int
    width: int
    kind: str

    @property
    def end(self) -> int:
        return self.offset + self.width


@dataclass(frozen=True)
class MessageSpec:
    """One ITCH 5.0 message type."""

    type: str
    name: str
    length: int
    fields: tuple[Field, ...]

    @property
    def code(self) -> int:
        """The message type as a byte value."""
        return ord(self.type)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"ITCH message {self.type!r} has no field {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


# (name, width, kind) after the common header; offsets are accumulated so that a typo in a width
# cannot silently shift the later fields. tests/host/feed/test_spec.py checks every offset
# against the spec text as well.
_HEADER = (
    ("message_type", 1, "alpha"),
    ("stock_locate", 2, "int"),
    ("tracking_number", 2, "int"),
    ("timestamp", 6, "ts6"),
)

_BODIES: dict[str, tuple[str, tuple[tuple[str, int, str], ...]]] = {
    "S": ("System Event", (("event_code", 1, "alpha"),)),
    "R": (
        "Stock Directory",
        (
            ("stock", 8, "alpha"),
            ("market_category", 1, "alpha"),
            ("financial_status_indicator", 1, "alpha"),
            ("round_lot_size", 4, "int"),
            ("round_lots_only", 1, "alpha"),
            ("issue_classification", 1, "alpha"),
            ("issue_sub_type", 2, "alpha"),
            ("authenticity", 1, "alpha"),
            ("short_sale_threshold_indicator", 1, "alpha"),
            ("ipo_flag", 1, "alpha"),
            ("luld_reference_price_tier", 1, "alpha"),
            ("etp_flag", 1, "alpha"),
            ("etp_leverage_factor", 4, "int"),
            ("inverse_indicator", 1, "alpha"),
        ),
    ),
    "H": (
        "Stock Trading Action",
        (
            ("stock", 8, "alpha"),
            ("trading_state", 1, "alpha"),
            ("reserved", 1, "alpha"),
            ("reason", 4, "alpha"),
        ),
    ),
    "Y": ("Reg SHO Restriction", (("stock", 8, "alpha"), ("reg_sho_action", 1, "alpha"))),
    "L": (
        "Market Participant Position",
        (
            ("mpid", 4, "alpha"),
            ("stock", 8, "alpha"),
            ("primary_market_maker", 1, "alpha"),
            ("market_maker_mode", 1, "alpha"),
            ("market_participant_state", 1, "alpha"),
        ),
    ),
    "V": (
        "MWCB Decline Level",
        (("level_1", 8, "price8"), ("level_2", 8, "price8"), ("level_3", 8, "price8")),
    ),
    "W": ("MWCB Status", (("breached_level", 1, "alpha"),)),
    "K": (
        "IPO Quoting Period Update",
        (
            ("stock", 8, "alpha"),
            ("ipo_quotation_release_time", 4, "int"),
            ("ipo_quotation_release_qualifier", 1, "alpha"),
            ("ipo_price", 4, "price4"),
        ),
    ),
    "J": (
        "LULD Auction Collar",
        (
            ("stock", 8, "alpha"),
            ("auction_collar_reference_price", 4, "price4"),
            ("upper_auction_collar_price", 4, "price4"),
            ("lower_auction_collar_price", 4, "price4"),
            ("auction_collar_extension", 4, "int"),
        ),
    ),
    "h": (
        "Operational Halt",
        (
            ("stock", 8, "alpha"),
            ("market_code", 1, "alpha"),
            ("operational_halt_action", 1, "alpha"),
        ),
    ),
    "A": (
        "Add Order",
        (
            ("order_reference_number", 8, "int"),
            ("buy_sell_indicator", 1, "alpha"),
            ("shares", 4, "int"),
            ("stock", 8, "alpha"),
            ("price", 4, "price4"),
        ),
    ),
    "F": (
        "Add Order with MPID",
        (
            ("order_reference_number", 8, "int"),
            ("buy_sell_indicator", 1, "alpha"),
            ("shares", 4, "int"),
            ("stock", 8, "alpha"),
            ("price", 4, "price4"),
            ("attribution", 4, "alpha"),
        ),
    ),
    "E": (
        "Order Executed",
        (
            ("order_reference_number", 8, "int"),
            ("executed_shares", 4, "int"),
            ("match_number", 8, "int"),
        ),
    ),
    "C": (
        "Order Executed with Price",
        (
            ("order_reference_number", 8, "int"),
            ("executed_shares", 4, "int"),
            ("match_number", 8, "int"),
            ("printable", 1, "alpha"),
            ("execution_price", 4, "price4"),
        ),
    ),
    "X": (
        "Order Cancel",
        (("order_reference_number", 8, "int"), ("cancelled_shares", 4, "int")),
    ),
    "D": ("Order Delete", (("order_reference_number", 8, "int"),)),
    "U": (
        "Order Replace",
        (
            ("original_order_reference_number", 8, "int"),
            ("new_order_reference_number", 8, "int"),
            ("shares", 4, "int"),
            ("price", 4, "price4"),
        ),
    ),
    "P": (
        "Trade (non-cross)",
        (
            ("order_reference_number", 8, "int"),
            ("buy_sell_indicator", 1, "alpha"),
            ("shares", 4, "int"),
            ("stock", 8, "alpha"),
            ("price", 4, "price4"),
            ("match_number", 8, "int"),
        ),
    ),
    "Q": (
        "Cross Trade",
        (
            ("shares", 8, "int"),
            ("stock", 8, "alpha"),
            ("cross_price", 4, "price4"),
            ("match_number", 8, "int"),
            ("cross_type", 1, "alpha"),
        ),
    ),
    "B": ("Broken Trade", (("match_number", 8, "int"),)),
    "I": (
        "NOII",
        (
            ("paired_shares", 8, "int"),
            ("imbalance_shares", 8, "int"),
            ("imbalance_direction", 1, "alpha"),
            ("stock", 8, "alpha"),
            ("far_price", 4, "price4"),
            ("near_price", 4, "price4"),
            ("current_reference_price", 4, "price4"),
            ("cross_type", 1, "alpha"),
            ("price_variation_indicator", 1, "alpha"),
        ),
    ),
    "N": (
        "Retail Price Improvement Indicator",
        (("stock", 8, "alpha"), ("interest_flag", 1, "alpha")),
    ),
    "O": (
        "Direct Listing with Capital Raise Price Discovery",
        (
            ("stock", 8, "alpha"),
            ("open_eligibility_status", 1, "alpha"),
            ("minimum_allowable_price", 4, "price4"),
            ("maximum_allowable_price", 4, "price4"),
            ("near_execution_price", 4, "price4"),
            ("near_execution_time", 8, "int"),
            ("lower_price_range_collar", 4, "price4"),
            ("upper_price_range_collar", 4, "price4"),
        ),
    ),
}


def _build() -> dict[str, MessageSpec]:
    out: dict[str, MessageSpec] = {}
    for mtype, (name, body) in _BODIES.items():
        fields = []
        off = 0
        for fname, width, kind in _HEADER + body:
            if kind not in KINDS:
                raise ValueError(f"bad kind {kind!r} for {mtype}.{fname}")
            fields.append(Field(fname, off, width, kind))
            off += width
        out[mtype] = MessageSpec(mtype, name, off, tuple(fields))
    return out


MESSAGES: dict[str, MessageSpec] = _build()
"""Every ITCH 5.0 message type, keyed by its one-character type."""

MESSAGE_TYPES: str = "".join(MESSAGES)
"""The 23 message type characters in spec order."""

MAX_MESSAGE_LENGTH: int = max(m.length for m in MESSAGES.values())
MIN_MESSAGE_LENGTH: int = min(m.length for m in MESSAGES.values())

BOOK_TYPES: str = "AFECXDU"
"""The message types that change a price-level book."""

PRICE4_MAX: int = 200_000_0000
"""Largest Price(4) value NASDAQ uses (200,000.0000): 'Maximum price' in the data types table."""


def length_of(mtype: str) -> int:
    """Total length in bytes of a message of type ``mtype`` (type byte included)."""
    try:
        return MESSAGES[mtype].length
    except KeyError:
        raise KeyError(f"unknown ITCH 5.0 message type {mtype!r}") from None


def field(mtype: str, name: str) -> Field:
    """Field ``name`` of message type ``mtype``."""
    return MESSAGES[mtype].field(name)


# --- MoldUDP64 (moldudp64-1.0, "Downstream Packet Header" and "Message Block") -------------------

MOLD_HEADER: tuple[Field, ...] = (
    Field("session", 0, 10, "alpha"),
    Field("sequence_number", 10, 8, "int"),
    Field("message_count", 18, 2, "int"),
)
MOLD_HEADER_LENGTH: int = MOLD_HEADER[-1].end
MOLD_SESSION_WIDTH: int = MOLD_HEADER[0].width
MOLD_BLOCK_LENGTH_WIDTH: int = 2
"""Each message block starts with a 2-byte big-endian message length."""
MOLD_END_OF_SESSION: int = 0xFFFF
"""Message count that marks an end-of-session packet; a count of 0 is a heartbeat."""
