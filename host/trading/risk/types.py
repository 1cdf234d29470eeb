"""Enums and event objects of the pre-trade risk layer.

Naming follows nautilus_trader: commands are imperative (the matching engine's
:class:`~host.trading.matching.SubmitOrder`, ...;
:meth:`host.trading.risk.RiskEngine.engage_kill_switch`), events past tense (:class:`OrderDenied`,
:class:`KillSwitchEngaged`,
:class:`CircuitBreakerTripped`, :class:`PositionChanged`, ...). Prices are integers in ITCH
Price(4) units, quantities integers, money integers in Price(4) x shares (1e-4 USD), timestamps
integer nanoseconds.

Journal encoding
----------------
Risk events are journaled as ``EVENT_DTYPE`` rows (the matching engine's 120-byte layout) in
the risk journal (:mod:`host.trading.risk.journal`) with ``kind`` values from :class:`RiskEventKind`
(>= 64, never produced by the matching engine) and ``reason`` from :class:`DenyReason`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "DenyReason", "TradingState", "KillScope", "RiskEventKind", "RiskEvent", "OrderDenied",
    "KillSwitchEngaged", "KillSwitchReleased", "CircuitBreakerTripped", "TradingStateChanged",
    "ReferenceStale", "ReferenceRestored", "PositionChanged", "StopHeld", "StopReleased",
    "StopCanceled",
]


class DenyReason(IntEnum):
    """Why the risk layer refused a command (the first failing check, in check order)."""

    NONE = 0
    UNKNOWN_ACCOUNT = 1
    UNKNOWN_INSTRUMENT = 2
    DUPLICATE_ORDER_ID = 3
    KILL_SWITCH = 4
    TRADING_HALTED = 5
    TRADING_REDUCING = 6
    RESTRICTED_INSTRUMENT = 7
    INVALID_QUANTITY = 8
    MAX_ORDER_QTY = 9
    STALE_REFERENCE = 10
    NO_REFERENCE_PRICE = 11
    MAX_ORDER_NOTIONAL = 12
    PRICE_COLLAR = 13
    POSITION_LIMIT = 14
    DAILY_LOSS_LIMIT = 15
    DUPLICATE_ORDER = 16
    RATE_LIMIT = 17
    UNKNOWN_ORDER = 18
    INVALID_STRATEGY = 19
    OPEN_ORDER_CAPACITY = 20
    NOT_AUTHORIZED = 21
    """The sender may not act for the account (a submit for another account, a cancel or
    replace of another account's order, an unscoped or foreign mass cancel, an end of
    session from an order source)."""
    STRATEGY_NOT_PERMITTED = 22
    """The strategy is not bound to the account in the configuration."""
    STOP_NOT_REPLACEABLE = 23
    """A stop held by the risk layer cannot be replaced: cancel it and submit a new one."""


class TradingState(IntEnum):
    """Trading state of an account, an instrument or the whole system.

    The effective state of an order is the most restrictive of the three.
    """

    ACTIVE = 0
    """Every check applies; nothing else is blocked."""
    REDUCING = 1
    """Only orders that reduce the position (and cannot flip it) are allowed."""
    HALTED = 2
    """No new order or size increase; cancels are always allowed."""


class KillScope(IntEnum):
    """Scope of a kill switch."""

    ACCOUNT = 1
    STRATEGY = 2
    INSTRUMENT = 3
    ALL = 4


class RiskEventKind(IntEnum):
    """``EVENT_DTYPE['kind']`` of risk events in the risk journal."""

    DENIED = 64
    KILL_SWITCH_ENGAGED = 65
    KILL_SWITCH_RELEASED = 66
    CIRCUIT_BREAKER_TRIPPED = 67
    TRADING_STATE_CHANGED = 68
    REFERENCE_STALE = 69
    REFERENCE_RESTORED = 70
    STOP_HELD = 71
    STOP_RELEASED = 72
    STOP_CANCELED = 73
    STRATEGY_ASSIGNED = 74


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """Base of the risk events; ``ts`` is integer ns."""

    ts: int


@dataclass(frozen=True, slots=True)
class OrderDenied(RiskEvent):
    """A command failed a pre-trade check and never reached the matching engine.

    Attributes
    ----------
    order_id, account, instrument, side, qty, price : int
        As in the command (``account``/``instrument`` of the live order for a replace).
    cmd_kind : int
        :class:`host.trading.matching.CommandKind` value.
    reason : DenyReason
    """

    order_id: int
    account: int
    instrument: int
    side: int
    qty: int
    price: int
    cmd_kind: int
    reason: DenyReason


@dataclass(frozen=True, slots=True)
class KillSwitchEngaged(RiskEvent):
    """Every open order in scope was canceled; new ones are blocked until released.

    ``value`` is the account, strategy or instrument id (0 for ``ALL``); ``canceled`` the
    number of orders canceled by the switch.
    """

    scope: KillScope
    value: int
    canceled: int


@dataclass(frozen=True, slots=True)
class KillSwitchReleased(RiskEvent):
    """A kill switch was re-enabled (new orders in scope are allowed again)."""

    scope: KillScope
    value: int


@dataclass(frozen=True, slots=True)
class CircuitBreakerTripped(RiskEvent):
    """Alert: an account's loss passed its circuit-breaker threshold; it is now HALTED.

    ``pnl`` is realized + unrealized P&L (1e-4 USD) when it tripped, ``threshold`` the loss
    that had to be passed (positive), ``canceled`` the open orders canceled.
    """

    account: int
    pnl: int
    threshold: int
    canceled: int


@dataclass(frozen=True, slots=True)
class TradingStateChanged(RiskEvent):
    """The trading state of an account, an instrument or the system (both None) changed."""

    account: int | None
    instrument: int | None
    state: TradingState


@dataclass(frozen=True, slots=True)
class ReferenceStale(RiskEvent):
    """The card's book of ``instrument`` became stale (sequence gap or cleared slot)."""

    instrument: int


@dataclass(frozen=True, slots=True)
class ReferenceRestored(RiskEvent):
    """The card's book of ``instrument`` is valid again."""

    instrument: int


@dataclass(frozen=True, slots=True)
class PositionChanged(RiskEvent):
    """Position of ``account`` in ``instrument`` after a fill.

    ``qty`` is signed (long > 0); ``avg_px`` the average open price, Price(4), truncated;
    ``realized``/``unrealized`` in 1e-4 USD.
    """

    account: int
    instrument: int
    qty: int
    avg_px: int
    realized: int
    unrealized: int


@dataclass(frozen=True, slots=True)
class StopHeld(RiskEvent):
    """A stop order passed the entry checks and is held by the risk layer (the venue does not
    see it until it triggers; it is then checked again as a new order)."""

    order_id: int
    account: int
    instrument: int
    side: int
    qty: int
    stop_price: int
    strategy: int


@dataclass(frozen=True, slots=True)
class StopReleased(RiskEvent):
    """A held stop triggered (a venue trade reached its stop price), passed the checks at
    trigger time and was forwarded to the venue (``ts`` is the trigger time)."""

    order_id: int
    account: int
    instrument: int


@dataclass(frozen=True, slots=True)
class StopCanceled(RiskEvent):
    """A held stop was canceled (by its owner, a mass cancel, a kill switch, a circuit
    breaker, or the end of the session for a DAY stop)."""

    order_id: int
    account: int
    instrument: int
