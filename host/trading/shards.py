"""Symbol -> shard partition, the one rule every sharded part of the project uses.

The cluster session (:mod:`host.cluster.router`, :mod:`host.cluster.session`) and the sharded
backtest (:mod:`host.trading.backtest.sharded`) both split the traded locates with
:func:`partition`, so a symbol lands in the same shard of a session and of a backtest run with
the same ``N``. It lives on the trading floor (the backtester's) and the cluster imports it.
"""

from __future__ import annotations

__all__ = ["partition", "shard_of"]


def partition(locates, n: int) -> list[list[int]]:
    """Sorted locates in ``n`` contiguous ranges of (nearly) equal count.

    Parameters
    ----------
    locates : iterable of int
        Stock locates (duplicates are kept as given; callers pass distinct ones).
    n : int
        Number of shards, ``1 <= n <= len(locates)``.

    Returns
    -------
    list of list of int
        ``n`` non-empty ranges, in locate order; shard ``k`` holds the ``k``-th range.

    Raises
    ------
    ValueError
        ``n < 1`` or more shards than locates (a shard would own nothing).
    """
    locs = sorted(int(x) for x in locates)
    if n < 1:
        raise ValueError("at least one shard")
    if n > len(locs):
        raise ValueError(f"{n} shards for {len(locs)} instruments")
    bounds = [round(i * len(locs) / n) for i in range(n + 1)]
    return [locs[bounds[i]:bounds[i + 1]] for i in range(n)]


def shard_of(parts: list[list[int]]) -> dict[int, int]:
    """Locate -> shard index of a :func:`partition` result."""
    return {loc: k for k, locs in enumerate(parts) for loc in locs}
