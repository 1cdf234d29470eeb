"""Price tick of each subscribed symbol's ladder (``CONFIG_SUB_SLOT.sub_tick``).

The card's book keeps each (symbol, side) as a price-indexed ladder (:mod:`hw.ladder`): the
level at price ``px`` sits at tick ``px / tick``, with ``tick`` one of
:data:`hw.ladder.TICKS` (1, 100, 10000 Price(4) units, codes 0, 1, 2) chosen per slot when the
symbol is subscribed. A coarser tick widens the window the ladder holds exactly (``levels``
ticks from the touch); a price that is not a multiple of the slot's tick cannot be held: the
card counts it (``CNT_OFF_GRID``) and marks the symbol's book not valid, never silently wrong.

The host picks the tick from the prices it is about to replay: the coarsest tick that divides
every order price (``A``, ``F``, ``U``) of the symbol. NASDAQ stocks at or above $1 quote in
cents (Reg NMS rule 612: tick 100); sub-dollar ones in 1/10000 (tick 1). For a live feed with
no file to look at, :data:`DEFAULT_TICK_CODE` (one cent) is the rule-612 choice for stocks
>= $1; a sub-dollar quote then shows up as an ``off_grid`` count and a not-valid book.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hw.ladder import TICKS

__all__ = ["DEFAULT_TICK_CODE", "tick_code", "tick_codes"]

DEFAULT_TICK_CODE = TICKS.index(100)
"""Code of a one-cent tick (``TICKS[1] == 100``), for symbols with no price to look at."""

_ORDER_TYPES = (ord("A"), ord("F"), ord("U"))


def tick_code(prices: Iterable[int]) -> int:
    """Code (index into :data:`hw.ladder.TICKS`) of the coarsest tick dividing every price.

    An empty ``prices`` gives :data:`DEFAULT_TICK_CODE`.
    """
    p = np.asarray(list(prices) if not isinstance(prices, np.ndarray) else prices, np.int64)
    if p.size == 0:
        return DEFAULT_TICK_CODE
    for code in sorted(range(len(TICKS)), key=lambda c: -TICKS[c]):
        if not np.any(p % TICKS[code]):
            return code
    return TICKS.index(1)


def tick_codes(itch, locates: Iterable[int]) -> dict[int, int]:
    """``{locate: tick code}`` for ``locates`` from the order prices in ``itch``.

    Parameters
    ----------
    itch : bytes
        Messages in NASDAQ file framing (what the card will be given).
    locates : iterable of int
        The subscribed stock locates.
    """
    from host.feed.bulk import parse_records

    recs, _ = parse_records(itch)
    sel = np.isin(recs["msg_type"], _ORDER_TYPES)
    loc = recs["stock_locate"][sel].astype(np.int64)
    px = recs["price"][sel].astype(np.int64)
    return {int(x): tick_code(px[loc == int(x)]) for x in locates}
