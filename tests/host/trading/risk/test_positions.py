"""Positions and P&L against hand-checked fills.

Money is Price(4) x shares (1e-4 USD): 100 shares at $10.00 cost 100 * 100_000 = 10_000_000.
Each scenario writes out the arithmetic so a reader can check it by hand.
"""

from __future__ import annotations

import numpy as np

from host.trading.matching import Side
from host.trading.risk import checks as K
from host.trading.risk.positions import position_view
from host.trading.risk.testing import Harness, acct


def _arrays():
    A = np.zeros((1, K.A_NF), np.int64)
    N = np.zeros((1, K.N_NF), np.int64)
    P = np.zeros((1, 1, K.P_NF), np.int64)
    return A, N, P


def _fill(A, N, P, side, qty, px):
    K.apply_fill(A, N, P, 0, 0, side, qty, px)
    return position_view(A, N, P, 0, 0)


def test_long_add_reduce_flip_close():
    A, N, P = _arrays()
    N[0, K.N_MARK] = 100_000
    p = _fill(A, N, P, Side.BUY, 100, 100_000)   # 100 @ $10.00: cost 10_000_000
    p = _fill(A, N, P, Side.BUY, 50, 103_000)    # + 50 @ $10.30: cost 15_150_000
    assert (p.qty, p.cost, p.avg_px) == (150, 15_150_000, 101_000)   # avg $10.10
    # sell 60 @ $10.50: removed 15_150_000 * 60 // 150 = 6_060_000;
    # realized 60 * 105_000 - 6_060_000 = 240_000 ($24.00)
    p = _fill(A, N, P, Side.SELL, 60, 105_000)
    assert (p.qty, p.cost, p.realized) == (90, 9_090_000, 240_000)
    # mark at the card mid 104_100: unrealized 90 * 104_100 - 9_090_000 = 279_000
    K.apply_marks(np.array([0]), np.array([6]), np.array([104_000]), np.array([104_200]),
                  np.zeros(K.G_NF, np.int64), A, N, P, np.array([0]))
    p = position_view(A, N, P, 0, 0)
    assert (p.mark, p.unrealized) == (104_100, 279_000)
    # sell 120 @ $10.40: closes 90 (realized 90 * 104_000 - 9_090_000 = 270_000), then short 30
    p = _fill(A, N, P, Side.SELL, 120, 104_000)
    assert (p.qty, p.cost, p.realized) == (-30, -3_120_000, 510_000)
    assert p.avg_px == 104_000
    # short 30 marked at 104_100: -30 * 104_100 + 3_120_000 = -3_000
    assert p.unrealized == -3_000
    # buy 30 @ $10.39 closes: realized += -30 * 103_900 + 3_120_000 = 3_000
    p = _fill(A, N, P, Side.BUY, 30, 103_900)
    assert (p.qty, p.cost, p.realized, p.unrealized) == (0, 0, 513_000, 0)
    # total check: sells 6_300_000 + 12_480_000 - buys 10_000_000 + 5_150_000 + 3_117_000
    assert p.realized == 18_780_000 - 18_267_000
    assert int(A[0, K.A_REALIZED]) == 513_000 and int(A[0, K.A_UNREAL]) == 0


def test_truncated_cost_removal_is_exact_at_flat():
    A, N, P = _arrays()
    _fill(A, N, P, Side.BUY, 1, 100)
    p = _fill(A, N, P, Side.BUY, 2, 101)          # cost 302, pos 3 (avg 100.67)
    assert (p.cost, p.avg_px) == (302, 100)
    p = _fill(A, N, P, Side.SELL, 1, 105)         # removed 302 // 3 = 100: realized 5
    assert (p.realized, p.cost) == (5, 202)
    p = _fill(A, N, P, Side.SELL, 2, 105)         # removed 202: realized 210 - 202 = 8
    assert (p.realized, p.qty, p.cost) == (13, 0, 0)  # = 315 - 302


def test_short_profit():
    A, N, P = _arrays()
    _fill(A, N, P, Side.SELL, 100, 50_000)        # short 100 @ $5.00: cost -5_000_000
    p = _fill(A, N, P, Side.BUY, 40, 49_000)      # removed -2_000_000;
    # realized -40 * 49_000 + 2_000_000 = 40_000 ($4.00 = 40 shares x $0.10)
    assert (p.qty, p.cost, p.realized) == (-60, -3_000_000, 40_000)


def test_fills_through_the_venue_update_both_sides():
    h = Harness(accounts=(acct(1), acct(2)))
    h.bbo(1_000_000, 1_000_200)                   # mid 1_000_100
    h.fill(buyer=2, seller=1, qty=300, px=1_000_200)
    ev = h.fill(buyer=1, seller=2, qty=100, px=1_000_000)
    changed = [e for e in ev if type(e).__name__ == "PositionChanged"]
    assert {(e.account, e.qty) for e in changed} == {(1, -200), (2, 200)}
    p1, p2 = h.risk.position(1, 5), h.risk.position(2, 5)
    # account 1: short 300 @ 1_000_200 (cost -300_060_000), buys back 100 @ 1_000_000:
    # removed -100_020_000, realized -100_000_000 + 100_020_000 = 20_000
    assert (p1.qty, p1.cost, p1.realized) == (-200, -200_040_000, 20_000)
    # unrealized at mid: -200 * 1_000_100 + 200_040_000 = 20_000
    assert p1.unrealized == 20_000
    assert (p2.qty, p2.realized, p2.unrealized) == (200, -20_000, -20_000)
    assert p1.exposure == 200 * 1_000_100
    s = h.risk.account(1)
    assert (s.realized, s.unrealized, s.pnl) == (20_000, 20_000, 40_000)


def test_marks_ignore_stale_books():
    from hw.bbo_record import FLAG_ASK_VALID, FLAG_BID_VALID, FLAG_GAP

    h = Harness()
    h.bbo(1_000_000, 1_000_200)
    h.fill(buyer=1, seller=2, qty=10, px=1_000_100)
    h.bbo(900_000, 900_200, flags=FLAG_GAP | FLAG_BID_VALID | FLAG_ASK_VALID)
    assert h.risk.position(1, 5).unrealized == 0      # mark stays at 1_000_100
    h.bbo(990_000, 990_200)
    h.bbo(990_000, 990_200)
    h.bbo(990_000, 990_200)                            # valid again: mark 990_100
    assert h.risk.position(1, 5).unrealized == 10 * (990_100 - 1_000_100)
