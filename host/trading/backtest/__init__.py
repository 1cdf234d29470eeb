"""Backtester: ITCH replay through an L3 book with exact FIFO queue position of own orders.

See ``docs/backtest.md``. :class:`SimExchange` is the simulated venue (replayed book, own
orders and their queue position), :class:`Backtester` the event loop (latency, risk,
strategy), :func:`load_market` the input reader, :func:`run_backtest` the one-call API.
"""

from host.trading.backtest.data import MarketData, load_market
from host.trading.backtest.engine import (
    ORDER_DTYPE,
    SYNC_ORDER_ID,
    BacktestConfig,
    Backtester,
    BacktestResult,
    VenueLink,
    default_risk_config,
)
from host.trading.backtest.exchange import FILL_DTYPE, Fees, OwnOrder, SimExchange

__all__ = ["MarketData", "load_market", "BacktestConfig", "Backtester", "BacktestResult",
           "VenueLink", "default_risk_config", "ORDER_DTYPE", "SYNC_ORDER_ID", "FILL_DTYPE",
           "Fees", "OwnOrder", "SimExchange"]
