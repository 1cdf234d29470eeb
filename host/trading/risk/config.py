"""Risk configuration: frozen dataclasses with documented defaults, loadable from TOML.

Units: prices Price(4) (1e-4 USD per share), quantities shares, money (notional, P&L, loss
limits, capital) Price(4) x shares = 1e-4 USD (so ``$1`` is ``10_000``), times ns.

Every value is validated when the dataclass is built, and :func:`load_config` rejects unknown
keys and wrong types with the TOML path of the offending key, so a bad file fails at start.

Example (``examples/risk.toml``)::

    [risk]
    deny_on_stale = true
    collar = { mode = "bps", value = 500 }

    [[risk.accounts]]
    account = 2
    max_order_qty = 5000
    position_limits = { "8154" = 2000 }
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["ConfigError", "CollarConfig", "AccountConfig", "InstrumentRiskConfig", "RiskConfig",
           "load_config", "config_from_dict", "USD"]

USD = 10_000
"""One dollar in money units (Price(4) x shares)."""

_STATES = ("ACTIVE", "REDUCING", "HALTED")
_COLLAR_MODES = ("bps", "ticks", "none")


class ConfigError(ValueError):
    """An invalid risk configuration (raised at construction / load time)."""


def _int(name: str, v: Any, lo: int | None = 0, hi: int | None = None) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{name} must be an integer, got {v!r}")
    if lo is not None and v < lo:
        raise ConfigError(f"{name} must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise ConfigError(f"{name} must be <= {hi}, got {v}")


def _state(name: str, v: Any) -> None:
    if v not in _STATES:
        raise ConfigError(f"{name} must be one of {_STATES}, got {v!r}")


@dataclass(frozen=True)
class CollarConfig:
    """Price collar around the card's reference price (floor mid of the BBO).

    Parameters
    ----------
    mode : str
        ``"bps"`` (band = ref * value // 10 000), ``"ticks"`` (band = value * tick) or
        ``"none"``; default ``"bps"``.
    value : int
        Basis points or ticks; default 500 (5 %).
    """

    mode: str = "bps"
    value: int = 500

    def __post_init__(self) -> None:
        if self.mode not in _COLLAR_MODES:
            raise ConfigError(f"collar.mode must be one of {_COLLAR_MODES}, got {self.mode!r}")
        _int("collar.value", self.value)


@dataclass(frozen=True)
class AccountConfig:
    """Limits of one account.

    Parameters
    ----------
    account : int
        Account id as in the orders (0 <= id < 2**20).
    strategy : int
        Default strategy of the account's orders (for strategy kill switches); default 0.
    strategies : tuple of int
        Further strategies bound to the account (its orders may name them with
        ``strategy=``); default none. Any other strategy is denied ``STRATEGY_NOT_PERMITTED``,
        so a sender cannot escape a strategy kill switch by naming another strategy. A
        strategy may be bound to several accounts (its kill switch then spans them).
    max_order_qty : int
        Largest quantity of one order; default 10 000.
    max_order_notional : int
        Largest price x quantity of one order (market orders: far side of the card BBO);
        default 1e10 ($1 000 000).
    max_position : int
        Limit on ``|position + open orders on one side|`` per instrument; default 100 000.
    position_limits : dict
        Per-instrument overrides of ``max_position``: ``{instrument: limit}``.
    max_orders_per_window : int
        Orders (submits and replaces forwarded) allowed in any ``rate_window_ns`` window;
        0 = unlimited; default 1 000.
    rate_window_ns : int
        Sliding window of the throttle; default 1 s.
    duplicate_window_ns : int
        An order equal to an earlier forwarded one (instrument, side, price, quantity) within
        this window is a duplicate; 0 = off; default 1 ms.
    daily_loss_limit : int
        Orders that do not reduce the position are denied while realized + unrealized P&L is
        below ``-daily_loss_limit``; default 1e9 ($100 000).
    capital : int
        Capital of the account; default 1e11 ($10 000 000).
    breaker_loss_bps : int
        Circuit breaker: the account is HALTED (and its orders canceled) when its P&L falls
        below ``-capital * breaker_loss_bps // 10 000``; 0 = off; default 200 (2 %).
    state : str
        Initial trading state: ``ACTIVE``, ``REDUCING`` or ``HALTED``; default ``ACTIVE``.
    """

    account: int
    strategy: int = 0
    strategies: tuple[int, ...] = ()
    max_order_qty: int = 10_000
    max_order_notional: int = 1_000_000 * USD
    max_position: int = 100_000
    position_limits: dict[int, int] = field(default_factory=dict, hash=False)
    max_orders_per_window: int = 1_000
    rate_window_ns: int = 1_000_000_000
    duplicate_window_ns: int = 1_000_000
    daily_loss_limit: int = 100_000 * USD
    capital: int = 10_000_000 * USD
    breaker_loss_bps: int = 200
    state: str = "ACTIVE"

    def __post_init__(self) -> None:
        p = f"account {self.account}"
        _int("account", self.account, 0, (1 << 20) - 1)
        for f in ("strategy", "max_order_qty", "max_order_notional", "max_position",
                  "max_orders_per_window", "rate_window_ns", "duplicate_window_ns",
                  "daily_loss_limit", "capital", "breaker_loss_bps"):
            _int(f"{p}: {f}", getattr(self, f))
        if self.max_orders_per_window and not self.rate_window_ns:
            raise ConfigError(f"{p}: rate_window_ns must be > 0 with a rate limit")
        if self.breaker_loss_bps > 10_000:
            raise ConfigError(f"{p}: breaker_loss_bps must be <= 10000")
        _state(f"{p}: state", self.state)
        if not isinstance(self.strategies, tuple):
            raise ConfigError(f"{p}: strategies must be a list of strategy ids")
        for st in self.strategies:
            _int(f"{p}: strategies", st)
        for k, v in self.position_limits.items():
            _int(f"{p}: position_limits key", k, 0, 65535)
            _int(f"{p}: position_limits[{k}]", v)

    @property
    def owned_strategies(self) -> tuple[int, ...]:
        """The default strategy and the further bound ones."""
        return (self.strategy, *self.strategies)

    @property
    def breaker_loss(self) -> int:
        """Loss (positive, money units) that trips the circuit breaker; 0 = off."""
        return self.capital * self.breaker_loss_bps // 10_000


@dataclass(frozen=True)
class InstrumentRiskConfig:
    """Risk settings of one instrument (an ITCH stock locate).

    Parameters
    ----------
    instrument : int
        Instrument id (0 <= id < 65536).
    tick : int
        Tick in Price(4) units (for collars in ticks); default 100.
    collar : CollarConfig or None
        Overrides :attr:`RiskConfig.collar`; default None.
    restricted : bool
        Every order is denied ``RESTRICTED_INSTRUMENT``; default False.
    state : str
        Initial trading state; default ``ACTIVE``.
    """

    instrument: int
    tick: int = 100
    collar: CollarConfig | None = None
    restricted: bool = False
    state: str = "ACTIVE"

    def __post_init__(self) -> None:
        _int("instrument", self.instrument, 0, 65535)
        _int(f"instrument {self.instrument}: tick", self.tick, 1)
        _state(f"instrument {self.instrument}: state", self.state)


@dataclass(frozen=True)
class RiskConfig:
    """The whole risk configuration.

    Parameters
    ----------
    accounts : tuple of AccountConfig
        Known accounts; orders of any other account are denied ``UNKNOWN_ACCOUNT``.
    instruments : tuple of InstrumentRiskConfig
        Known instruments; others are denied ``UNKNOWN_INSTRUMENT``
        (:meth:`with_instruments` adds defaults for the subscribed locates).
    collar : CollarConfig
        Default price collar; default 5 % (500 bps).
    restricted : tuple of int
        Restricted instruments (added to the per-instrument flag); default none.
    deny_on_stale : bool
        While the card marks an instrument's book stale, checks that need its reference price
        deny with ``STALE_REFERENCE``; default True. When False the last valid BBO is used.
    require_reference : bool
        Deny limit orders ``NO_REFERENCE_PRICE`` when the card has no BBO for the instrument
        (otherwise the collar is skipped); default True.
    stale_gap_all : bool
        A card record flagged ``gap`` marks every instrument stale (a lost packet may have held
        any symbol's messages); default True. False: only that record's instrument.
    stale_recovery_updates : int
        A stale instrument is valid again after this many consecutive gap-free, two-sided,
        uncrossed card records; default 3.
    max_open_orders : int
        Capacity of the open-order table; default 262 144.
    n_strategies : int
        Strategy ids 0 .. n-1; default 64.
    state : str
        Initial global trading state; default ``ACTIVE``.
    """

    accounts: tuple[AccountConfig, ...] = ()
    instruments: tuple[InstrumentRiskConfig, ...] = ()
    collar: CollarConfig = field(default_factory=CollarConfig)
    restricted: tuple[int, ...] = ()
    deny_on_stale: bool = True
    require_reference: bool = True
    stale_gap_all: bool = True
    stale_recovery_updates: int = 3
    max_open_orders: int = 1 << 18
    n_strategies: int = 64
    state: str = "ACTIVE"

    def __post_init__(self) -> None:
        ids = [a.account for a in self.accounts]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"duplicate account ids: {sorted(ids)}")
        ins = [i.instrument for i in self.instruments]
        if len(set(ins)) != len(ins):
            raise ConfigError("duplicate instrument ids")
        for a in self.accounts:
            for st in (a.strategy, *a.strategies):
                if st >= self.n_strategies:
                    raise ConfigError(f"account {a.account}: strategy {st} >= n_strategies")
        for r in self.restricted:
            _int("restricted", r, 0, 65535)
        _int("stale_recovery_updates", self.stale_recovery_updates, 1)
        _int("max_open_orders", self.max_open_orders, 1, 1 << 26)
        _int("n_strategies", self.n_strategies, 1, 1 << 16)
        _state("state", self.state)
        for b in ("deny_on_stale", "require_reference", "stale_gap_all"):
            if not isinstance(getattr(self, b), bool):
                raise ConfigError(f"{b} must be true or false")

    def with_instruments(self, ids, ticks: dict[int, int] | None = None) -> RiskConfig:
        """A copy with default :class:`InstrumentRiskConfig` added for ids not configured.

        ``ticks`` gives the tick of each new instrument (default 100).
        """
        have = {i.instrument for i in self.instruments}
        ticks = ticks or {}
        new = tuple(InstrumentRiskConfig(int(i), tick=int(ticks.get(int(i), 100)))
                    for i in ids if int(i) not in have)
        return replace(self, instruments=self.instruments + new)

    def account(self, account: int) -> AccountConfig:
        """The :class:`AccountConfig` of ``account`` (KeyError if unknown)."""
        for a in self.accounts:
            if a.account == account:
                return a
        raise KeyError(f"unknown account {account}")


# ---------------------------------------------------------------- loading


def _build(cls, d: Any, path: str):
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a table, got {type(d).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; known: {sorted(names)}")
    kw = dict(d)
    try:
        if cls is AccountConfig and "position_limits" in kw:
            pl = kw["position_limits"]
            if not isinstance(pl, dict):
                raise ConfigError(f"{path}.position_limits: expected a table")
            try:
                kw["position_limits"] = {int(k): v for k, v in pl.items()}
            except ValueError:
                raise ConfigError(f"{path}.position_limits: keys must be instrument ids"
                                  ) from None
        if cls is AccountConfig and "strategies" in kw:
            kw["strategies"] = tuple(_list(kw["strategies"], f"{path}.strategies"))
        if cls is InstrumentRiskConfig and kw.get("collar") is not None:
            kw["collar"] = _build(CollarConfig, kw["collar"], f"{path}.collar")
        if cls is RiskConfig:
            if "collar" in kw:
                kw["collar"] = _build(CollarConfig, kw["collar"], f"{path}.collar")
            if "accounts" in kw:
                kw["accounts"] = tuple(_build(AccountConfig, a, f"{path}.accounts[{n}]")
                                       for n, a in enumerate(_list(kw["accounts"], path)))
            if "instruments" in kw:
                kw["instruments"] = tuple(
                    _build(InstrumentRiskConfig, a, f"{path}.instruments[{n}]")
                    for n, a in enumerate(_list(kw["instruments"], path)))
            if "restricted" in kw:
                kw["restricted"] = tuple(_list(kw["restricted"], f"{path}.restricted"))
        return cls(**kw)
    except ConfigError as e:
        msg = str(e)
        raise ConfigError(msg if msg.startswith(path) else f"{path}: {msg}") from None
    except TypeError as e:
        raise ConfigError(f"{path}: {e}") from None


def _list(v, path):
    if not isinstance(v, list):
        raise ConfigError(f"{path}: expected an array")
    return v


def config_from_dict(d: dict) -> RiskConfig:
    """:class:`RiskConfig` from a dict shaped like the ``[risk]`` TOML table."""
    return _build(RiskConfig, d, "risk")


def load_config(path) -> RiskConfig:
    """Load the ``[risk]`` table of a TOML file.

    Raises
    ------
    ConfigError
        Unreadable or invalid TOML, a missing ``[risk]`` table, unknown keys, wrong types or
        out-of-range values (the message names the key).
    """
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    if "risk" not in doc:
        raise ConfigError(f"{path}: no [risk] table")
    try:
        return config_from_dict(doc["risk"])
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
