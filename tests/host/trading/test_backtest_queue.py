"""Queue position of own orders at the simulated venue, on hand-checked scenarios.

Each scenario is a short ITCH story on one locate; the expected fills were worked out by hand
from price-time priority (comments give the reasoning).
"""

from __future__ import annotations

import pytest

from host.trading.backtest.exchange import Fees, SimExchange
from host.trading.backtest.fast import FastExchange
from host.trading.matching import EventKind, OrderType, TimeInForce

LOC = 7
B, S = 1, 2
A_, E_, C_, X_, D_, U_, P_ = (ord(c) for c in "AECXDUP")
VENUES = {"python": SimExchange, "fast": FastExchange}
ENGINE = {"venue": SimExchange}


@pytest.fixture(autouse=True, params=list(VENUES))
def engine(request):
    """Every scenario runs on both venues: the Python SimExchange and the compiled one of the
    fast backtest path (host.trading.backtest.fastcore)."""
    ENGINE["venue"] = VENUES[request.param]
    yield request.param
    ENGINE["venue"] = SimExchange


class Story:
    """Drive a simulated venue with readable calls; message index and time advance by one."""

    def __init__(self, fees=None):
        self.ex = ENGINE["venue"]([LOC], fees or Fees(maker=-20, taker=30))
        self.i = 0

    def _msg(self, mt, ref=0, nref=0, side=0, shares=0, price=0):
        self.i += 1
        return self.ex.apply(self.i, mt, LOC, 1000 * self.i, ref, nref, side, shares, price)

    def add(self, ref, side, shares, price):
        return self._msg(A_, ref, side=ord("B") if side == B else ord("S"), shares=shares,
                         price=price)

    def exe(self, ref, shares):
        return self._msg(E_, ref, shares=shares)

    def exe_c(self, ref, shares, price):
        return self._msg(C_, ref, shares=shares, price=price)

    def cancel(self, ref, shares):
        return self._msg(X_, ref, shares=shares)

    def delete(self, ref):
        return self._msg(D_, ref)

    def replace(self, ref, nref, shares, price):
        return self._msg(U_, ref, nref=nref, shares=shares, price=price)

    def hidden(self, side, shares, price):
        return self._msg(P_, side=ord("B") if side == B else ord("S"), shares=shares,
                         price=price)

    def own(self, oid, side, qty, price, *, tif=TimeInForce.GTC, otype=OrderType.LIMIT,
            post_only=False):
        self.ex.submit(oid, 1, LOC, side, qty, price, otype, tif, int(post_only),
                       1000 * self.i + 1)
        return self.ex.own.get(oid)

    def fills(self, oid=None):
        return [(f[5], f[6], bool(f[4])) for f in self.ex.fills if oid is None or f[1] == oid]


def test_ahead_volume_then_fill_behind():
    s = Story()
    s.add(1, B, 300, 100)
    s.add(2, B, 200, 100)
    o = s.own(10, B, 100, 100)
    assert o.ahead == 500  # everything displayed at 100 arrived before
    s.exe(1, 300)
    assert o.ahead == 200 and s.fills() == []
    s.exe(2, 150)
    assert o.ahead == 50 and s.fills() == []
    s.add(3, B, 200, 100)  # joins behind the own order
    assert o.ahead == 50
    s.exe(2, 50)  # the last share ahead trades: the own order is at the front now
    assert o.ahead == 0 and s.fills() == []
    s.exe(3, 80)  # an order behind trades: the aggressor would have hit the own order first
    assert s.fills(10) == [(100, 80, True)]
    assert o.leaves == 20
    s.exe(3, 50)
    assert s.fills(10) == [(100, 80, True), (100, 20, True)]
    assert 10 not in s.ex.own and s.ex.n_resting == 0


def test_partial_executions_ahead_never_fill():
    s = Story()
    s.add(1, S, 500, 200)
    o = s.own(10, S, 100, 200)
    for _ in range(4):
        s.exe(1, 100)
    assert o.ahead == 100 and s.fills() == []
    s.exe(1, 100)  # ref 1 is gone: nothing ahead, nothing behind either
    assert o.ahead == 0 and s.fills() == []


def test_cancels_ahead_move_the_order_up():
    s = Story()
    s.add(1, B, 300, 100)
    s.add(2, B, 200, 100)
    s.add(3, B, 100, 100)
    o = s.own(10, B, 100, 100)
    assert o.ahead == 600
    s.cancel(1, 100)  # partial cancel ahead (keeps its priority)
    assert o.ahead == 500
    s.delete(2)
    assert o.ahead == 300
    s.replace(3, 4, 100, 100)  # U loses priority: ref 4 is behind the own order
    assert o.ahead == 200
    s.exe(1, 200)
    assert o.ahead == 0 and s.fills() == []
    s.exe(4, 60)  # behind: fills the own order
    assert s.fills(10) == [(100, 60, True)]


def test_cancels_behind_do_not_move_the_order():
    s = Story()
    s.add(1, B, 100, 100)
    o = s.own(10, B, 100, 100)
    s.add(2, B, 300, 100)
    s.add(3, B, 300, 100)
    s.cancel(2, 100)
    s.delete(3)
    assert o.ahead == 100
    s.exe(1, 100)
    assert o.ahead == 0 and s.fills() == []
    s.exe(2, 200)  # behind, 200 executed: the own order takes its 100
    assert s.fills(10) == [(100, 100, True)]


def test_price_improvement_own_order_alone_at_a_better_price():
    s = Story()
    s.add(1, B, 500, 100)
    o = s.own(10, B, 100, 101)  # improves the bid: a new level, nothing ahead
    assert o.ahead == 0
    s.exe(1, 70)  # a seller hit 100, so it went through 101 first
    assert s.fills(10) == [(101, 70, True)]
    s.exe(1, 50)
    assert s.fills(10) == [(101, 70, True), (101, 30, True)]


def test_order_at_a_new_price_level_with_later_joiners():
    s = Story()
    s.add(1, S, 100, 104)
    s.add(2, S, 100, 102)
    o = s.own(10, S, 200, 103)  # no visible order at 103
    assert o.ahead == 0
    s.add(3, S, 50, 103)  # behind the own order
    s.exe(2, 100)  # 102 is better than 103: no effect on the own order
    assert s.fills() == []
    s.exe(3, 50)  # behind at 103
    assert s.fills(10) == [(103, 50, True)]
    s.exe(1, 100)  # worse price: the buyer went through 103
    assert s.fills(10) == [(103, 50, True), (103, 100, True)]
    assert o.leaves == 50


def test_marketable_order_walks_levels_at_their_prices():
    s = Story()
    s.add(1, S, 100, 101)
    s.add(2, S, 100, 102)
    s.add(3, S, 100, 103)
    s.add(4, S, 100, 104)
    s.own(10, B, 250, 103, tif=TimeInForce.IOC)
    assert s.fills(10) == [(101, 100, False), (102, 100, False), (103, 50, False)]
    assert s.ex.fills[-1][7] == 50 * 30  # taker fee, money units
    assert 10 not in s.ex.own  # filled
    s.own(11, B, 500, 102, tif=TimeInForce.IOC)  # the book is unchanged (no impact)
    assert s.fills(11) == [(101, 100, False), (102, 100, False)]
    ev = s.ex.collect()
    assert ev["kind"][-1] == EventKind.CANCELED and ev["last_qty"][-1] == 300


def test_market_order_and_post_only():
    s = Story()
    s.add(1, S, 100, 101)
    s.add(2, S, 100, 105)
    s.own(10, B, 150, 0, otype=OrderType.MARKET, tif=TimeInForce.IOC)
    assert s.fills(10) == [(101, 100, False), (105, 50, False)]
    s.ex.collect()
    assert s.own(11, B, 100, 101, post_only=True) is None
    ev = s.ex.collect()
    assert ev["kind"][-1] == EventKind.REJECTED and ev["reason"][-1] == 14  # POST_ONLY_WOULD_TAKE


def test_crossing_add_fills_resting_own_order():
    s = Story()
    s.add(1, B, 100, 99)
    s.add(2, S, 100, 103)
    s.own(10, B, 100, 101)
    s.add(3, S, 60, 100)  # a seller posting at 100 would have traded with the 101 bid
    assert s.fills(10) == [(101, 60, True)]
    s.add(4, S, 60, 102)  # does not cross 101
    assert s.fills(10) == [(101, 60, True)]


def test_hidden_trades_do_not_fill():
    s = Story()
    s.add(1, B, 100, 100)
    o = s.own(10, B, 100, 100)
    s.hidden(B, 500, 100)
    assert s.fills() == [] and o.ahead == 100
    assert s.ex.counts["hidden_trades"] == 1


def test_execution_budget_is_shared_by_priority():
    s = Story()
    s.add(1, B, 1000, 99)
    s.own(10, B, 100, 100)
    s.own(11, B, 100, 101)
    s.exe(1, 150)  # 150 shares reached 99: 101 first (100), then 100 (50)
    assert s.fills(11) == [(101, 100, True)]
    assert s.fills(10) == [(100, 50, True)]


def test_c_execution_uses_the_order_price_level():
    s = Story()
    s.add(1, S, 100, 200)
    o = s.own(10, S, 100, 200)
    s.exe_c(1, 40, 199)  # printed at 199, the order still sits at 200: ahead shrinks
    assert o.ahead == 60 and s.fills() == []


def test_replace_keeps_priority_only_for_a_size_decrease():
    s = Story()
    s.add(1, B, 100, 100)
    o = s.own(10, B, 300, 100)
    s.add(2, B, 100, 100)
    s.ex.replace(10, 200, 0, 5000)
    assert o.ahead == 100 and o.leaves == 200  # kept its place
    s.ex.replace(10, 200, 99, 5001)
    assert o.price == 99 and o.ahead == 0  # a new level at 99, nothing there
    s.ex.replace(10, 200, 100, 5002)
    assert o.ahead == 200  # back to 100 behind both visible orders


def test_cancel_and_unknown_cancel():
    s = Story()
    s.add(1, B, 100, 100)
    s.own(10, B, 100, 100)
    s.ex.collect()
    s.ex.cancel(10, 5000)
    s.ex.cancel(10, 5001)
    ev = s.ex.collect()
    assert list(ev["kind"]) == [EventKind.CANCELED, EventKind.REJECTED]
    assert s.ex.n_resting == 0
    s.exe(1, 100)
    assert s.fills() == []


@pytest.mark.parametrize("maker", [-20, 0, 15])
def test_fees_signed_per_share(maker):
    s = Story(Fees(maker=maker, taker=30))
    s.add(1, B, 100, 100)
    s.own(10, B, 100, 101)
    s.exe(1, 100)
    assert s.ex.fills[0][7] == 100 * maker


@pytest.mark.parametrize("profile", ["classic", "realistic"])
def test_replayed_book_matches_the_reference_book(tmp_path, profile, engine):
    """The simulated venue's book (bid/ask price and size after every message of the traded
    locates) equals the reference L3 book of host.feed on generated days."""
    from host.feed.book import L3Book, iter_indexed
    from host.feed.generator import generate
    from host.trading.backtest import load_market

    buf = generate(20_000, 3, 5, profile=profile)
    p = tmp_path / "d.itch"
    p.write_bytes(buf)
    m = load_market(p, n_auto=2)
    if engine == "python":
        exs = dict.fromkeys(m.locates, SimExchange(m.locates))
    else:  # the compiled venue keeps one locate
        exs = {loc: FastExchange([loc]) for loc in m.locates}
    ref = L3Book()
    c = m.cols
    want = {}
    for idx, msg in iter_indexed(buf):
        ref.apply(msg)
        if ref.last_locate in m.locates:
            b = ref.bbo(ref.last_locate)
            want[idx] = (ref.last_locate, (b.bid_px, b.bid_sz, b.ask_px, b.ask_sz))
    checked = 0
    for i in range(len(c["msg_type"])):
        idx = int(c["msg_index"][i])
        lc = int(c["stock_locate"][i])
        exs[lc].apply(idx, int(c["msg_type"][i]), lc, int(c["timestamp"][i]),
                      int(c["order_ref"][i]), int(c["new_order_ref"][i]), int(c["side"][i]),
                      int(c["shares"][i]), int(c["price"][i]))
        if idx in want:
            loc, bbo = want[idx]
            assert exs[loc].best(loc) == bbo, (idx, loc)
            checked += 1
    assert checked > 1000
