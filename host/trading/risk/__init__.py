"""Pre-trade risk layer fed by the card's BBO, in front of the matching engine.

See ``docs/risk.md``. :class:`RiskEngine` is the only path from an order source to the
matching engine; :mod:`host.trading.risk.checks` holds the compiled hot path.
"""

from host.trading.risk.config import (
    USD,
    AccountConfig,
    CollarConfig,
    ConfigError,
    InstrumentRiskConfig,
    RiskConfig,
    config_from_dict,
    load_config,
)
from host.trading.risk.engine import BatchResult, OrderGateway, RiskEngine
from host.trading.risk.journal import RiskJournal, export_risk, risk_records
from host.trading.risk.positions import AccountSummary, Position
from host.trading.risk.types import (
    CircuitBreakerTripped,
    DenyReason,
    KillScope,
    KillSwitchEngaged,
    KillSwitchReleased,
    OrderDenied,
    PositionChanged,
    ReferenceRestored,
    ReferenceStale,
    RiskEvent,
    RiskEventKind,
    StopCanceled,
    StopHeld,
    StopReleased,
    TradingState,
    TradingStateChanged,
)

__all__ = [
    "RiskEngine", "BatchResult", "OrderGateway", "RiskConfig", "AccountConfig",
    "InstrumentRiskConfig", "CollarConfig", "ConfigError", "load_config", "config_from_dict",
    "USD", "RiskJournal", "export_risk", "risk_records", "Position", "AccountSummary",
    "DenyReason", "TradingState", "KillScope", "RiskEventKind", "RiskEvent", "OrderDenied",
    "KillSwitchEngaged", "KillSwitchReleased", "CircuitBreakerTripped", "TradingStateChanged",
    "ReferenceStale", "ReferenceRestored", "PositionChanged", "StopHeld", "StopReleased",
    "StopCanceled",
]
