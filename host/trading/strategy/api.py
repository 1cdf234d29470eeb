"""Strategy API: market events in, commands out, through the risk layer.

A :class:`Strategy` is driven by a runner (the backtester, :mod:`host.trading.backtest`) with

* :meth:`Strategy.on_quote` -- a :class:`QuoteTick` (best bid/offer and the top-N levels of one
  instrument) whenever the best bid or offer (price or size) changed,
* :meth:`Strategy.on_trade` -- a :class:`TradeTick` per execution printed by the market,
* :meth:`Strategy.on_order` -- its own order events: the matching engine's event types
  (:class:`~host.trading.matching.OrderAccepted`, ``OrderFilled``, ``OrderCanceled``,
  ``OrderRejected``, ``OrderReplaced``) and the risk layer's
  :class:`~host.trading.risk.OrderDenied`,
* :meth:`Strategy.on_timer` -- every ``timer_ns`` of event time (:meth:`StrategyContext.set_timer`),

and each handler returns the commands to send (an iterable, or None): ``SubmitOrder``,
``CancelOrder`` and ``ModifyOrder`` -- the command types of :mod:`host.trading.matching`
(``ModifyOrder`` is its ``ReplaceOrder``: new total quantity, new price). The runner sends every
command through an :class:`~host.trading.risk.OrderGateway` (the pre-trade risk checks); a
strategy never sees the venue.

:class:`StrategyContext` is the strategy's view of itself: the clock, its position and open
orders as its order events told it (so with the latency the runner models), order ids, and
helpers that build commands. Prices are integer Price(4), sizes integer shares, times ns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from host.trading.matching import (
    CancelOrder,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderType,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TimeInForce,
)
from host.trading.risk import OrderDenied

__all__ = ["ModifyOrder", "QuoteTick", "TradeTick", "OpenOrder", "Strategy", "StrategyContext"]

ModifyOrder = ReplaceOrder
"""Modify a live order (new total quantity, new price; 0 = unchanged): the matching engine's
``ReplaceOrder`` under the nautilus name."""


@dataclass(frozen=True, slots=True)
class QuoteTick:
    """Best bid/offer and top-N depth of one instrument as the strategy receives it.

    ``bids``/``asks`` are ``((price, shares), ...)`` best first (at most the runner's depth);
    an empty side has price 0 and size 0. ``ts`` is the exchange time of the message that
    changed the book; ``ts_recv`` when the strategy got it (market-data latency).
    """

    ts: int
    ts_recv: int
    instrument: int
    bid_px: int
    bid_sz: int
    ask_px: int
    ask_sz: int
    bids: tuple = ()
    asks: tuple = ()

    @property
    def mid(self) -> float:
        """Mid price (float, Price(4) units); 0.0 when a side is empty."""
        return (self.bid_px + self.ask_px) / 2 if self.bid_px and self.ask_px else 0.0


@dataclass(frozen=True, slots=True)
class TradeTick:
    """One execution printed by the market: ``aggressor`` is the taker's :class:`Side` (the
    other side of the resting order), ``hidden`` for a trade with non-displayed interest."""

    ts: int
    ts_recv: int
    instrument: int
    price: int
    qty: int
    aggressor: int
    hidden: bool = False


@dataclass
class OpenOrder:
    """An own order as the strategy knows it (from its commands and events)."""

    order_id: int
    instrument: int
    side: int
    price: int
    qty: int
    leaves: int
    acknowledged: bool = False
    cancel_sent: bool = False


class StrategyContext:
    """What a strategy can see and build; the runner keeps it current.

    Parameters
    ----------
    account : int
        Account the strategy trades for (its orders carry it).
    first_order_id : int
        First order id handed out by :meth:`next_id`.
    """

    def __init__(self, account: int = 1, first_order_id: int = 1):
        self.account = account
        self.now = 0
        self._next_id = first_order_id
        self.positions: dict[int, int] = {}
        self.orders: dict[int, OpenOrder] = {}
        self.timer_ns = 0
        self.fills = 0
        self.cash = 0  # money units (1e-4 USD): -sum(side * price * qty), fees excluded

    # -- state
    def position(self, instrument: int) -> int:
        """Signed position in shares, as the fills received so far say."""
        return self.positions.get(instrument, 0)

    def open_orders(self, instrument: int | None = None, side: int | None = None) -> list:
        """Live own orders (sent, not known to be done), optionally of one instrument/side."""
        return [o for o in self.orders.values()
                if (instrument is None or o.instrument == instrument)
                and (side is None or o.side == side)]

    def set_timer(self, interval_ns: int) -> None:
        """Call :meth:`Strategy.on_timer` every ``interval_ns`` of event time (0 = off)."""
        self.timer_ns = int(interval_ns)

    # -- commands
    def next_id(self) -> int:
        oid = self._next_id
        self._next_id += 1
        return oid

    def limit(self, instrument: int, side: int, qty: int, price: int, *,
              tif: TimeInForce = TimeInForce.GTC, post_only: bool = False) -> SubmitOrder:
        """A limit order (integer price and size; registered as open)."""
        oid = self.next_id()
        cmd = SubmitOrder(order_id=oid, instrument=int(instrument), account=self.account,
                          side=Side(side), qty=int(qty), price=int(price), tif=tif,
                          post_only=post_only, ts=self.now)
        self.orders[oid] = OpenOrder(oid, int(instrument), int(side), int(price), int(qty),
                                     int(qty))
        return cmd

    def market(self, instrument: int, side: int, qty: int) -> SubmitOrder:
        """A market order (the risk layer turns it into a collared IOC limit)."""
        oid = self.next_id()
        cmd = SubmitOrder(order_id=oid, instrument=int(instrument), account=self.account,
                          side=Side(side), qty=int(qty), order_type=OrderType.MARKET,
                          tif=TimeInForce.IOC, ts=self.now)
        self.orders[oid] = OpenOrder(oid, int(instrument), int(side), 0, int(qty), int(qty))
        return cmd

    def cancel(self, order_id: int) -> CancelOrder:
        o = self.orders.get(order_id)
        if o is not None:
            o.cancel_sent = True
        return CancelOrder(order_id=order_id, ts=self.now)

    def modify(self, order_id: int, qty: int, price: int = 0) -> ModifyOrder:
        o = self.orders.get(order_id)
        if o is not None:
            o.price = int(price) or o.price
            o.leaves = int(qty) - (o.qty - o.leaves)
            o.qty = int(qty)
        return ModifyOrder(order_id=order_id, qty=int(qty), price=int(price), ts=self.now)

    def cancel_all(self, instrument: int | None = None) -> list[CancelOrder]:
        return [self.cancel(o.order_id) for o in self.open_orders(instrument)
                if not o.cancel_sent]

    # -- events (called by the runner before the strategy sees them)
    def apply(self, e) -> None:
        """Update position and open orders from one own order event."""
        o = self.orders.get(e.order_id)
        if isinstance(e, OrderFilled):
            sgn = 1 if e.side == Side.BUY else -1
            self.positions[e.instrument] = self.positions.get(e.instrument, 0) + sgn * e.last_qty
            self.cash -= sgn * e.last_px * e.last_qty
            self.fills += 1
            if o is not None:
                o.leaves = e.leaves_qty
                if e.leaves_qty <= 0:
                    del self.orders[e.order_id]
        elif isinstance(e, OrderCanceled | OrderDenied):
            if o is not None and (not isinstance(e, OrderDenied) or e.cmd_kind == 1):
                del self.orders[e.order_id]
            elif o is not None:
                o.cancel_sent = False  # a denied cancel/modify: the order is still live
        elif isinstance(e, OrderRejected):
            if o is not None and int(e.cmd_kind) == 1:  # the submit itself was refused
                del self.orders[e.order_id]
            elif o is not None and int(e.cmd_kind) == 2 and e.reason == 2:
                del self.orders[e.order_id]  # cancel of an order already gone
        elif isinstance(e, OrderReplaced):
            if o is not None:
                o.price, o.leaves, o.qty = e.price, e.leaves_qty, e.init_qty
        elif o is not None:
            o.acknowledged = True


class Strategy:
    """Base class: override the handlers you need; each returns commands (or None).

    Attributes
    ----------
    config : frozen dataclass
        The strategy's parameters (:func:`host.trading.strategy.load_strategy_config`).
    instruments : tuple of int
        Instruments (stock locates) it trades; set by the runner before :meth:`on_start`.
    """

    name = "base"
    n_instruments = 1
    config_class: type = object

    def __init__(self, config=None):
        self.config = config if config is not None else self.config_class()
        self.instruments: tuple[int, ...] = ()
        self.log: list[tuple] = []  # (ts, kind, values...) rows the report may plot

    def on_start(self, ctx: StrategyContext) -> Iterable | None:
        return None

    def on_quote(self, ctx: StrategyContext, q: QuoteTick) -> Iterable | None:
        return None

    def on_trade(self, ctx: StrategyContext, t: TradeTick) -> Iterable | None:
        return None

    def on_order(self, ctx: StrategyContext, e) -> Iterable | None:
        return None

    def on_timer(self, ctx: StrategyContext) -> Iterable | None:
        return None

    def on_stop(self, ctx: StrategyContext) -> Iterable | None:
        """End of data: by default cancel every open order."""
        return ctx.cancel_all()
