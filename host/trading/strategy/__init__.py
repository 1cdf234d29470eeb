"""Strategies: the API (:mod:`.api`), TOML configs (:mod:`.config`), the built-in strategies
(:mod:`.mm` Avellaneda–Stoikov market maker, :mod:`.pairs` pairs stat-arb, :mod:`.momentum`
multi-timeframe momentum) and streaming indicators (:mod:`.indicators`).

See ``docs/strategies.md``.
"""

from __future__ import annotations

import importlib

from host.trading.strategy.api import (
    ModifyOrder,
    OpenOrder,
    QuoteTick,
    Strategy,
    StrategyContext,
    TradeTick,
)
from host.trading.strategy.config import ConfigError, from_dict, load_toml

__all__ = ["ModifyOrder", "OpenOrder", "QuoteTick", "Strategy", "StrategyContext", "TradeTick",
           "ConfigError", "from_dict", "load_toml", "STRATEGIES", "strategy_class",
           "make_strategy"]

STRATEGIES: dict[str, str] = {
    "mm": "host.trading.strategy.mm:AvellanedaStoikov",
    "pairs": "host.trading.strategy.pairs:PairsTrader",
    "momentum": "host.trading.strategy.momentum:Momentum",
}
"""Name -> ``module:class`` of the built-in strategies (imported on demand)."""


def strategy_class(name: str) -> type[Strategy]:
    """The strategy class registered as ``name``; :class:`ConfigError` if unknown."""
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; choose from: {', '.join(STRATEGIES)}")
    mod, cls = STRATEGIES[name].split(":")
    return getattr(importlib.import_module(mod), cls)


def make_strategy(name: str, table: dict | None = None) -> Strategy:
    """A strategy ``name`` with its config built from a ``[strategy]`` TOML table."""
    cls = strategy_class(name)
    return cls(from_dict(cls.config_class, table or {}, "strategy"))
