"""Post-trade views: positions, average price, realized / unrealized P&L, exposure.

The numbers are kept by the compiled kernels (:func:`host.trading.risk.checks.apply_fill`,
:func:`host.trading.risk.checks.apply_marks`) in the ``P`` and ``A`` state arrays and updated on
every fill (engine events) and every mark (card BBO records). This module only reads them.

Arithmetic (all integers)
-------------------------
* ``qty``: signed position (long > 0). ``cost``: signed sum of qty x price of the open
  position, so ``avg_px = cost // qty`` (truncated toward zero, Price(4)).
* A fill that adds to the position (or opens one) adds ``q * px`` to ``cost``.
* A fill that reduces a position ``pos`` by ``c`` shares at ``px`` removes
  ``removed = sign(cost) * (|cost| * c // |pos|)`` from ``cost`` and realizes
  ``sign(pos) * c * px - removed``. Truncation leaves the remainder in ``cost``; it is realized
  with the last share, so a round trip to flat realizes exactly ``sum(sell) - sum(buy)``.
* A fill larger than the position closes it and opens ``q - |pos|`` at ``px`` (flip).
* ``unrealized = qty * mark - cost`` with ``mark`` the floor mid of the card BBO (the one valid
  side when the other is empty; the last fill price before the card has quoted). Stale books
  do not move the mark.
* ``exposure = |qty| * mark`` (gross, money units); ``open_buy`` / ``open_sell`` the open
  orders' remaining quantity, counted by the position limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from host.trading.risk import checks as K
from host.trading.risk.types import TradingState

__all__ = ["Position", "AccountSummary", "position_view", "account_view"]


@dataclass(frozen=True, slots=True)
class Position:
    """Position of one account in one instrument (money in 1e-4 USD, prices Price(4))."""

    account: int
    instrument: int
    qty: int
    avg_px: int
    cost: int
    realized: int
    unrealized: int
    mark: int
    exposure: int
    open_buy: int
    open_sell: int

    @property
    def pnl(self) -> int:
        """Realized + unrealized."""
        return self.realized + self.unrealized


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """P&L and state of one account across instruments."""

    account: int
    realized: int
    unrealized: int
    exposure: int
    state: TradingState
    breaker_tripped: bool
    kill_switch: bool

    @property
    def pnl(self) -> int:
        """Realized + unrealized."""
        return self.realized + self.unrealized


def position_view(A, N, P, a: int, i: int) -> Position:
    """:class:`Position` from the state arrays (row indices ``a``, ``i``)."""
    q = int(P[a, i, K.P_QTY])
    cost = int(P[a, i, K.P_COST])
    mark = int(N[i, K.N_MARK])
    avg = abs(cost) // abs(q) if q else 0
    return Position(
        account=int(A[a, K.A_ID]), instrument=int(N[i, K.N_ID]), qty=q, avg_px=avg, cost=cost,
        realized=int(P[a, i, K.P_REAL]), unrealized=int(P[a, i, K.P_UNREAL]), mark=mark,
        exposure=abs(q) * mark, open_buy=int(P[a, i, K.P_OPEN_BUY]),
        open_sell=int(P[a, i, K.P_OPEN_SELL]),
    )


def account_view(A, N, P, a: int) -> AccountSummary:
    """:class:`AccountSummary` of account row ``a``."""
    expo = int((abs(P[a, :, K.P_QTY]) * N[:, K.N_MARK]).sum())
    return AccountSummary(
        account=int(A[a, K.A_ID]), realized=int(A[a, K.A_REALIZED]),
        unrealized=int(A[a, K.A_UNREAL]), exposure=expo,
        state=TradingState(int(A[a, K.A_STATE])), breaker_tripped=bool(A[a, K.A_TRIPPED]),
        kill_switch=bool(A[a, K.A_KILL]),
    )
