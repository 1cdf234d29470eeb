"""Strategy and backtest configurations: frozen dataclasses loaded from TOML (tomllib).

A configuration file may hold three tables, each optional::

    [strategy]          # fields of the strategy's config dataclass (e.g. MarketMakerConfig)
    gamma = 0.1
    order_qty = 100

    [backtest]          # fields of host.trading.backtest.BacktestConfig
    md_latency_ns = 20_000
    fees = { maker = -20, taker = 30 }

    [risk]              # host.trading.risk config (as in examples/risk.toml)

:func:`from_dict` builds a dataclass from a table, refusing unknown keys and values of the
wrong type with the key's path, so a bad file fails before anything runs.
"""

from __future__ import annotations

import tomllib
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

from host.errors import UserError

__all__ = ["ConfigError", "from_dict", "load_toml"]


class ConfigError(UserError, ValueError):
    """An invalid strategy or backtest configuration (one line, the key's path)."""


def _check(path: str, tp, v):
    origin = typing.get_origin(tp)
    if tp is Any:
        return v
    if origin in (typing.Union, types.UnionType):
        for a in typing.get_args(tp):
            if a is type(None) and v is None:
                return v
            try:
                return _check(path, a, v)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: {v!r} is not {tp}")
    if origin is tuple:
        if not isinstance(v, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {v!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        return tuple(_check(f"{path}[{i}]", inner, x) for i, x in enumerate(v))
    if is_dataclass(tp):
        if not isinstance(v, dict):
            raise ConfigError(f"{path}: expected a table, got {v!r}")
        return from_dict(tp, v, path)
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ConfigError(f"{path}: expected a number, got {v!r}")
        return float(v)
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{path}: expected an integer, got {v!r}")
        return v
    if tp is bool:
        if not isinstance(v, bool):
            raise ConfigError(f"{path}: expected true/false, got {v!r}")
        return v
    if tp is str:
        if not isinstance(v, str):
            raise ConfigError(f"{path}: expected a string, got {v!r}")
        return v
    return v


def from_dict(cls, d: dict | None, path: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from a TOML table.

    Raises
    ------
    ConfigError
        An unknown key, a value of the wrong type, or what ``cls.__post_init__`` refuses.
    """
    d = dict(d or {})
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ConfigError(f"{path or cls.__name__}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(known)}")
    kw = {}
    for name, v in d.items():
        kw[name] = _check(f"{path + '.' if path else ''}{name}", hints[name], v)
    for name, f in known.items():
        if name not in kw and f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{path or cls.__name__}: missing key {name}")
    try:
        return cls(**kw)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path or cls.__name__}: {e}") from None


def load_toml(path) -> dict:
    """Read a TOML file; :class:`ConfigError` (one line) when it is missing or malformed."""
    try:
        with open(Path(path), "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: bad TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
