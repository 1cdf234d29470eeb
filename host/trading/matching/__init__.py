"""Host matching engine: numba-compiled price-time priority core with a typed facade.

See ``docs/matching.md``. Public names are re-exported here.
"""

from host.trading.matching.engine import EngineConfig, InstrumentConfig, MatchingEngine, OrderView
from host.trading.matching.types import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    Bbo,
    CancelOrder,
    Command,
    CommandKind,
    EndSession,
    Event,
    EventFlag,
    EventKind,
    Level,
    MassCancel,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderTriggered,
    OrderType,
    Reason,
    ReplaceOrder,
    Side,
    StpMode,
    SubmitOrder,
    TimeInForce,
    decode_events,
    encode_commands,
)

__all__ = [
    "MatchingEngine", "EngineConfig", "InstrumentConfig", "OrderView",
    "COMMAND_DTYPE", "EVENT_DTYPE", "Bbo", "Level",
    "SubmitOrder", "CancelOrder", "ReplaceOrder", "MassCancel", "EndSession", "Command",
    "Event", "OrderAccepted", "OrderRejected", "OrderFilled", "OrderCanceled",
    "OrderReplaced", "OrderExpired", "OrderTriggered",
    "Side", "OrderType", "TimeInForce", "StpMode", "CommandKind", "EventKind", "EventFlag",
    "Reason", "encode_commands", "decode_events",
]
