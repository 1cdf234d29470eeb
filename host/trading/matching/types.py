"""Enums, binary layouts, commands and events of the matching engine.

Commands are imperative (:class:`SubmitOrder`, :class:`CancelOrder`, :class:`ReplaceOrder`,
:class:`MassCancel`, :class:`EndSession`), events past tense (:class:`OrderAccepted`,
:class:`OrderRejected`, :class:`OrderFilled`, :class:`OrderCanceled`, :class:`OrderReplaced`,
:class:`OrderExpired`, :class:`OrderTriggered`). Prices are integers in ITCH Price(4) units
(four implied decimals), quantities integers, timestamps integer nanoseconds.

Binary layouts
--------------
``COMMAND_DTYPE`` (64 bytes) and ``EVENT_DTYPE`` (120 bytes) are packed little-endian structured
dtypes whose bytes are exactly the int64 words the compiled core reads and writes
(``arr.view(np.int64).reshape(-1, 8)`` / ``(-1, 15)``). The journal stores these bytes verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

__all__ = [
    "Side",
    "OrderType",
    "TimeInForce",
    "StpMode",
    "CommandKind",
    "EventKind",
    "Reason",
    "CommandFlag",
    "EventFlag",
    "MassCancelFlag",
    "COMMAND_DTYPE",
    "EVENT_DTYPE",
    "SubmitOrder",
    "CancelOrder",
    "ReplaceOrder",
    "MassCancel",
    "EndSession",
    "Command",
    "Event",
    "OrderAccepted",
    "OrderRejected",
    "OrderFilled",
    "OrderCanceled",
    "OrderReplaced",
    "OrderExpired",
    "OrderTriggered",
    "encode_commands",
    "decode_events",
    "Bbo",
    "Level",
]


class Side(IntEnum):
    """Order side."""

    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    """Order type. ``STOP`` becomes a market order when triggered, ``STOP_LIMIT`` a limit."""

    LIMIT = 1
    MARKET = 2
    STOP = 3
    STOP_LIMIT = 4


class TimeInForce(IntEnum):
    """Time in force. ``DAY`` orders expire at :class:`EndSession`; IOC/FOK never rest."""

    GTC = 1
    DAY = 2
    IOC = 3
    FOK = 4


class StpMode(IntEnum):
    """Self-trade prevention instruction of the incoming (taker) order, by account."""

    NONE = 0
    CANCEL_NEWEST = 1
    CANCEL_OLDEST = 2
    CANCEL_BOTH = 3
    DECREMENT_AND_CANCEL = 4


class CommandKind(IntEnum):
    """Command discriminator (``COMMAND_DTYPE['kind']``)."""

    SUBMIT = 1
    CANCEL = 2
    REPLACE = 3
    MASS_CANCEL = 4
    END_SESSION = 5


class EventKind(IntEnum):
    """Event discriminator (``EVENT_DTYPE['kind']``)."""

    ACCEPTED = 1
    REJECTED = 2
    FILLED = 3
    CANCELED = 4
    REPLACED = 5
    EXPIRED = 6
    TRIGGERED = 7


class Reason(IntEnum):
    """Reject reasons (< 32) and cancel/expiry reasons (>= 32)."""

    NONE = 0
    UNKNOWN_INSTRUMENT = 1
    UNKNOWN_ORDER = 2
    DUPLICATE_ORDER_ID = 3
    INVALID_QUANTITY = 4
    INVALID_PRICE = 5
    PRICE_OFF_TICK = 6
    PRICE_OUT_OF_BAND = 7
    INVALID_SIDE = 8
    INVALID_ORDER_TYPE = 9
    INVALID_TIF = 10
    INVALID_STP = 11
    INVALID_DISPLAY_QTY = 12
    INVALID_STOP_PRICE = 13
    POST_ONLY_WOULD_TAKE = 14
    INVALID_INSTRUCTION = 15
    CAPACITY_EXCEEDED = 16
    QTY_NOT_ABOVE_FILLED = 17
    INVALID_COMMAND = 18
    QTY_ABOVE_MAX = 19
    CANCELED_BY_USER = 32
    MASS_CANCEL = 33
    IOC_REMAINDER = 34
    FOK_UNFILLABLE = 35
    MARKET_REMAINDER = 36
    STP_CANCEL_NEWEST = 37
    STP_CANCEL_OLDEST = 38
    STP_CANCEL_BOTH = 39
    STP_DECREMENT = 40
    SESSION_END = 41


class CommandFlag(IntEnum):
    """Bits of ``COMMAND_DTYPE['flags']`` for :class:`SubmitOrder`."""

    POST_ONLY = 1


class MassCancelFlag(IntEnum):
    """Bits of ``COMMAND_DTYPE['flags']`` for :class:`MassCancel` / :class:`EndSession`."""

    BY_ACCOUNT = 1
    BY_INSTRUMENT = 2


class EventFlag(IntEnum):
    """Bits of ``EVENT_DTYPE['flags']``."""

    POST_ONLY = 1
    ICEBERG = 2
    MAKER = 4
    PRIORITY_KEPT = 8


COMMAND_DTYPE = np.dtype(
    {
        "names": [
            "ts", "order_id", "price", "qty", "display_qty", "stop_price", "account",
            "instrument", "kind", "side", "order_type", "tif", "flags", "stp", "pad",
        ],
        "formats": [
            "<i8", "<u8", "<i8", "<i8", "<i8", "<i8", "<u4",
            "<u4", "u1", "u1", "u1", "u1", "u1", "u1", "<u2",
        ],
        "offsets": [0, 8, 16, 24, 32, 40, 48, 52, 56, 57, 58, 59, 60, 61, 62],
        "itemsize": 64,
    }
)
"""One command, 64 bytes (8 int64 words). ``price``/``qty`` of a replace are the new limit price
(0 = unchanged) and new *total* order quantity; ``flags`` are :class:`CommandFlag` bits for a
submit and :class:`MassCancelFlag` bits for a mass cancel / end of session."""

EVENT_DTYPE = np.dtype(
    {
        "names": [
            "seq", "cmd_seq", "ts", "order_id", "contra_id", "trade_id", "price", "last_px",
            "last_qty", "leaves_qty", "cum_qty", "init_qty", "account", "contra_account",
            "instrument", "kind", "reason", "side", "order_type", "tif", "flags", "cmd_kind",
            "stp", "pad",
        ],
        "formats": [
            "<u8", "<u8", "<i8", "<u8", "<u8", "<u8", "<i8", "<i8",
            "<i8", "<i8", "<i8", "<i8", "<u4", "<u4",
            "<u4", "u1", "u1", "u1", "u1", "u1", "u1", "u1",
            "u1", "<u4",
        ],
        "offsets": [
            0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 100,
            104, 108, 109, 110, 111, 112, 113, 114, 115, 116,
        ],
        "itemsize": 120,
    }
)
"""One event, 120 bytes (15 int64 words); see ``docs/matching.md`` for each field."""

assert COMMAND_DTYPE.itemsize == 64 and EVENT_DTYPE.itemsize == 120


# ----------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """Submit a new order.

    Parameters
    ----------
    order_id : int
        64-bit id, unique among the engine's live orders.
    instrument : int
        Configured instrument id (< 65536).
    account : int
        32-bit account; self-trade prevention compares accounts.
    side : Side
    qty : int
        Total quantity (> 0).
    price : int
        Limit price in Price(4) units for LIMIT / STOP_LIMIT, 0 for MARKET / STOP.
    order_type : OrderType
    tif : TimeInForce
    post_only : bool
        Rejected (``POST_ONLY_WOULD_TAKE``) if it would take liquidity on arrival.
    display_qty : int
        Iceberg peak (0 < display_qty < qty); 0 = fully displayed.
    stop_price : int
        Trigger price of STOP / STOP_LIMIT orders.
    stp : StpMode
        Self-trade prevention instruction.
    ts : int
        Command timestamp, ns; every event of the command carries it.
    """

    order_id: int
    instrument: int
    account: int
    side: Side
    qty: int
    price: int = 0
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    display_qty: int = 0
    stop_price: int = 0
    stp: StpMode = StpMode.NONE
    ts: int = 0


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel a live (resting or pending-stop) order by id."""

    order_id: int
    ts: int = 0


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    """Cancel/replace: new total quantity ``qty`` and new limit ``price`` (0 = unchanged).

    A quantity decrease at the same price keeps time priority; a price change or a quantity
    increase loses it (and the order may then trade as a taker).
    """

    order_id: int
    qty: int
    price: int = 0
    ts: int = 0


@dataclass(frozen=True, slots=True)
class MassCancel:
    """Cancel every live order of ``account`` and/or ``instrument`` (None = any)."""

    account: int | None = None
    instrument: int | None = None
    ts: int = 0


@dataclass(frozen=True, slots=True)
class EndSession:
    """End of the trading session: expire every DAY order (of ``instrument``, None = all)."""

    instrument: int | None = None
    ts: int = 0


Command = SubmitOrder | CancelOrder | ReplaceOrder | MassCancel | EndSession


def encode_commands(cmds) -> np.ndarray:
    """Encode command objects into a ``COMMAND_DTYPE`` array.

    Parameters
    ----------
    cmds : iterable of Command

    Returns
    -------
    numpy.ndarray
        Structured array of ``COMMAND_DTYPE``.
    """
    cmds = list(cmds)
    out = np.zeros(len(cmds), dtype=COMMAND_DTYPE)
    for i, c in enumerate(cmds):
        _encode_into(out, i, c)
    return out


def _encode_into(out: np.ndarray, i: int, c) -> None:
    if not isinstance(c, SubmitOrder | CancelOrder | ReplaceOrder | MassCancel | EndSession):
        raise TypeError(f"not a command: {c!r}")
    r = out[i]
    r["ts"] = c.ts
    if isinstance(c, SubmitOrder):
        r["kind"] = CommandKind.SUBMIT
        r["order_id"] = c.order_id
        r["instrument"] = c.instrument
        r["account"] = c.account
        r["side"] = c.side
        r["qty"] = c.qty
        r["price"] = c.price
        r["order_type"] = c.order_type
        r["tif"] = c.tif
        r["flags"] = CommandFlag.POST_ONLY if c.post_only else 0
        r["display_qty"] = c.display_qty
        r["stop_price"] = c.stop_price
        r["stp"] = c.stp
    elif isinstance(c, CancelOrder):
        r["kind"] = CommandKind.CANCEL
        r["order_id"] = c.order_id
    elif isinstance(c, ReplaceOrder):
        r["kind"] = CommandKind.REPLACE
        r["order_id"] = c.order_id
        r["qty"] = c.qty
        r["price"] = c.price
    elif isinstance(c, MassCancel):
        r["kind"] = CommandKind.MASS_CANCEL
        flags = 0
        if c.account is not None:
            flags |= MassCancelFlag.BY_ACCOUNT
            r["account"] = c.account
        if c.instrument is not None:
            flags |= MassCancelFlag.BY_INSTRUMENT
            r["instrument"] = c.instrument
        r["flags"] = flags
    elif isinstance(c, EndSession):
        r["kind"] = CommandKind.END_SESSION
        if c.instrument is not None:
            r["flags"] = MassCancelFlag.BY_INSTRUMENT
            r["instrument"] = c.instrument
    else:
        raise TypeError(f"not a command: {c!r}")


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Event:
    """Fields common to every event (see ``EVENT_DTYPE``).

    Attributes
    ----------
    seq : int
        Global event sequence number (1, 2, ...).
    cmd_seq : int
        Sequence number of the command that produced the event.
    ts : int
        Command timestamp, ns.
    order_id, account, instrument : int
    side, order_type, tif : int
        As :class:`Side`, :class:`OrderType`, :class:`TimeInForce` values.
    price : int
        The order's limit price (0 for market / stop orders).
    leaves_qty, cum_qty, init_qty : int
        Open quantity, traded quantity and total order quantity after the event.
    flags : int
        :class:`EventFlag` bits.
    """

    seq: int
    cmd_seq: int
    ts: int
    order_id: int
    account: int
    instrument: int
    side: int
    order_type: int
    tif: int
    price: int
    leaves_qty: int
    cum_qty: int
    init_qty: int
    flags: int


@dataclass(frozen=True, slots=True)
class OrderAccepted(Event):
    """The order is valid and entered (it may then trade, rest, or be canceled)."""


@dataclass(frozen=True, slots=True)
class OrderRejected(Event):
    """A command was refused; nothing changed. ``cmd_kind`` says which command (a plain int
    for an undecodable command)."""

    reason: Reason
    cmd_kind: CommandKind | int


@dataclass(frozen=True, slots=True)
class OrderFilled(Event):
    """One side of a trade. Each match emits two: the taker's, then the maker's.

    ``is_maker`` tells the side; ``contra_*`` are the other order's id and account.
    """

    trade_id: int
    last_px: int
    last_qty: int
    contra_order_id: int
    contra_account: int
    is_maker: bool

    @property
    def is_partial(self) -> bool:
        """True while quantity remains open after this fill."""
        return self.leaves_qty > 0

    @property
    def taker_order_id(self) -> int:
        """Order id of the aggressor."""
        return self.contra_order_id if self.is_maker else self.order_id

    @property
    def maker_order_id(self) -> int:
        """Order id of the resting order."""
        return self.order_id if self.is_maker else self.contra_order_id


@dataclass(frozen=True, slots=True)
class OrderCanceled(Event):
    """``canceled_qty`` was taken off the order (``leaves_qty`` > 0 only for an STP decrement)."""

    reason: Reason
    canceled_qty: int


@dataclass(frozen=True, slots=True)
class OrderReplaced(Event):
    """The order now has total quantity ``init_qty`` at ``price``."""

    priority_kept: bool


@dataclass(frozen=True, slots=True)
class OrderExpired(Event):
    """A DAY order ended with the session."""

    expired_qty: int


@dataclass(frozen=True, slots=True)
class OrderTriggered(Event):
    """A stop order's trigger condition was met by a trade; it now enters the book."""

    stop_price: int = 0


_CMD_KINDS = frozenset(int(k) for k in CommandKind)


def decode_events(arr: np.ndarray) -> list[Event]:
    """Turn an ``EVENT_DTYPE`` array into event objects.

    Parameters
    ----------
    arr : numpy.ndarray
        Structured array of ``EVENT_DTYPE``.

    Returns
    -------
    list of Event
    """
    out: list[Event] = []
    for r in arr.tolist():
        (seq, cmd_seq, ts, oid, cid, tid, price, last_px, last_qty, leaves, cum, init, acct,
         cacct, inst, kind, reason, side, otype, tif, flags, cmd_kind, _stp, _pad) = r
        common = (seq, cmd_seq, ts, oid, acct, inst, side, otype, tif, price, leaves, cum,
                  init, flags)
        if kind == EventKind.FILLED:
            out.append(OrderFilled(*common, tid, last_px, last_qty, cid, cacct,
                                   bool(flags & EventFlag.MAKER)))
        elif kind == EventKind.ACCEPTED:
            out.append(OrderAccepted(*common))
        elif kind == EventKind.CANCELED:
            out.append(OrderCanceled(*common, Reason(reason), last_qty))
        elif kind == EventKind.REJECTED:
            ck = CommandKind(cmd_kind) if cmd_kind in _CMD_KINDS else cmd_kind
            out.append(OrderRejected(*common, Reason(reason), ck))
        elif kind == EventKind.REPLACED:
            out.append(OrderReplaced(*common, bool(flags & EventFlag.PRIORITY_KEPT)))
        elif kind == EventKind.EXPIRED:
            out.append(OrderExpired(*common, last_qty))
        elif kind == EventKind.TRIGGERED:
            out.append(OrderTriggered(*common, last_px))
        else:  # pragma: no cover - the core never writes another kind
            raise ValueError(f"unknown event kind {kind}")
    return out


@dataclass(frozen=True, slots=True)
class Level:
    """One aggregated price level: price, displayed quantity, order count."""

    price: int
    qty: int
    count: int


@dataclass(frozen=True, slots=True)
class Bbo:
    """Best bid and offer of one instrument; an empty side is ``None``."""

    bid: Level | None
    ask: Level | None
