"""Multi-book backtests, in one process or split by symbol over worker processes.

A *multi-book* backtest trades one-symbol strategy (``mm``, ``momentum``) on each of ``K``
symbols (``backtest --books K`` or ``--symbols A,B,...``): every symbol is a *book* -- its
replayed L3 book, its own strategy instance, its own risk engine with the account's limits,
its own event loop -- and the books' results are merged into one
:class:`~host.trading.backtest.engine.BacktestResult` (fills, orders and quotes by time, the
books in locate order within a time; counters and denials summed).

``--shards N`` splits the books with :func:`host.trading.shards.partition` (the cluster
router's partition) and runs each shard's books in a worker process (``multiprocessing``:
fork where this process has a single thread, else spawn, :func:`_start_method`). Nothing
is shared between books, so the result is the same for every ``N``, byte for byte: each book
runs the same code on the same messages whichever process it is in, and the merge does not
depend on the partition.

Exactness, by construction and tested:

* **Order ids.** Book ``locate`` numbers its orders from :func:`first_order_id` =
  ``(locate << 40) + 1``: unique across books (2**40 orders per book) and independent of
  ``N`` (a per-shard base would change the ids with the partition).
* **Risk.** Every limit of the risk configuration applies *per book*, in the single-process
  run as in a sharded one: per-instrument limits (position, order size and notional, collar)
  as they are, and the account-wide ones too (daily loss limit, order-rate window, duplicate
  window, ``max_open_orders``, the circuit breaker), each book's risk engine counting only
  that book's orders and P&L. A backtest has no live feed to keep up with: coupling the books
  through one account state would need every book to advance in lockstep in exchange time
  (each risk check waiting for every other book to reach that time), the cost a sharded
  session pays (:mod:`host.cluster.router` merges account state across shards per batch).
* **Event loop.** The loop (Python or compiled, :func:`host.trading.backtest.fast.choice`)
  is chosen once for the whole run, on the total number of book messages, so every book runs
  on the same loop.

:func:`book_digest` is a SHA-256 of one book's fills, orders, quotes and strategy log (the
journal of a book); :func:`shard_digest` combines the digests of a shard's books, so a
sharded run and the single-process run can be compared shard by shard.
"""

from __future__ import annotations

import hashlib
import pickle
import time
from dataclasses import dataclass, replace

import numpy as np

from host.errors import UserError
from host.trading.backtest.data import MarketData
from host.trading.backtest.engine import ORDER_DTYPE, BacktestResult
from host.trading.backtest.exchange import FILL_DTYPE
from host.trading.shards import partition

__all__ = ["ORDER_ID_BITS", "first_order_id", "split_books", "plan_shards", "run_books",
           "merge_results", "book_digest", "shard_digest", "ShardedRun"]

ORDER_ID_BITS = 40
"""Order ids of one book: ``(locate << ORDER_ID_BITS) + 1`` on (2**40 per book)."""


def first_order_id(locate: int) -> int:
    """First order id of the book of ``locate`` in a multi-book backtest."""
    return (int(locate) << ORDER_ID_BITS) + 1


def split_books(market: MarketData, locates=None) -> list[MarketData]:
    """One :class:`MarketData` per locate of ``market`` (or of ``locates``, a subset): its
    messages in input order, the books in locate order.

    One stable sort by locate (numpy's radix sort for 16-bit keys) and one gather per column,
    then each book is a slice: a fraction of the cost of one boolean mask per book and column.
    """
    cols = market.cols
    want = sorted(int(x) for x in (market.locates if locates is None else locates))
    loc = cols["stock_locate"]
    order = np.argsort(loc, kind="stable")
    lo = np.searchsorted(loc[order], want, side="left")
    hi = np.searchsorted(loc[order], want, side="right")
    srt = {c: v[order] for c, v in cols.items()}
    return [MarketData({c: v[i:j] for c, v in srt.items()}, (x,), market.symbols,
                       market.n_input, dict(market.stats))
            for x, i, j in zip(want, lo.tolist(), hi.tolist(), strict=True)]


def plan_shards(locates, shards: int) -> tuple[list[list[int]], str | None]:
    """The partition of ``locates`` for ``shards`` workers and a note when it was reduced.

    More shards than books run one shard per book (a shard without a book would do
    nothing): the note says so. ``shards < 1`` is a :class:`UserError`.
    """
    locs = sorted(int(x) for x in locates)
    if shards < 1:
        raise UserError(f"--shards must be >= 1, got {shards}")
    note = None
    if shards > len(locs):
        note = (f"{shards} shards for {len(locs)} book(s): running {len(locs)} shard(s), one "
                "book each")
        shards = len(locs)
    return partition(locs, shards), note


@dataclass
class ShardedRun:
    """What :func:`run_books` returns besides the merged result."""

    parts: list[list[int]]
    """Locates of each shard."""
    book_digests: dict[int, str]
    """Locate -> :func:`book_digest`."""
    shard_digests: list[str]
    """Shard -> :func:`shard_digest` of its books."""
    book_results: dict[int, BacktestResult]
    """Locate -> that book's own result."""
    seconds: float
    """Wall time of the run (workers started, books run, results back)."""
    note: str | None = None
    messages: list[int] | None = None
    """Book messages of each shard (the partition balances symbols, not messages: the
    largest shard bounds the speed-up)."""


def _strategy_log_bytes(log) -> bytes:
    # pickle: 6x faster than repr on the market maker's rows (ts, floats, ints) and exact
    return pickle.dumps(log, protocol=5)


def book_digest(res: BacktestResult) -> str:
    """SHA-256 of one book's fills, orders, quotes and strategy log (row bytes in order)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(res.fills).tobytes())
    h.update(np.ascontiguousarray(res.orders).tobytes())
    h.update(np.ascontiguousarray(res.quotes, np.int64).tobytes())
    h.update(_strategy_log_bytes(res.strategy_log))
    return h.hexdigest()


def shard_digest(book_digests: dict[int, str], locates) -> str:
    """SHA-256 of the digests of ``locates``' books, in locate order."""
    h = hashlib.sha256()
    for loc in sorted(int(x) for x in locates):
        h.update(f"{loc}:{book_digests[loc]};".encode())
    return h.hexdigest()


def _sorted_by_ts(parts: list[np.ndarray], dtype, key) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype)
    a = np.concatenate(parts)
    return a[np.argsort(key(a), kind="stable")]


def merge_results(results: list[BacktestResult], seconds: float) -> BacktestResult:
    """One result from the books' results (given in locate order).

    Fills, orders and quotes are concatenated book by book and stably sorted by time (so
    rows of one time keep the books' locate order and each book's own order); counters and
    denials are summed; ``strategy_log`` rows are tagged with their book's locate:
    ``(locate, row)``.
    """
    if not results:
        raise ValueError("no book results")
    if len(results) == 1:
        return replace(results[0], seconds=seconds)
    fills = _sorted_by_ts([r.fills for r in results], FILL_DTYPE, lambda a: a["ts"])
    orders = _sorted_by_ts([r.orders for r in results], ORDER_DTYPE, lambda a: a["ts"])
    quotes = _sorted_by_ts([np.asarray(r.quotes, np.int64).reshape(-1, 4) for r in results],
                           np.int64, lambda a: a[:, 0])
    counters: dict = {}
    denied: dict = {}
    for r in results:
        for k, v in r.counters.items():
            counters[k] = counters.get(k, 0) + v
        for k, v in r.denied.items():
            denied[k] = denied.get(k, 0) + v
    paths = sorted({r.path for r in results})
    reasons = sorted({r.path_reason for r in results})
    n_book = sum(r.n_book for r in results)
    first = [r.first_ts for r in results if r.n_book]
    last = [r.last_ts for r in results if r.n_book]
    log = [(r.instruments[0], row) for r in results for row in r.strategy_log]
    r0 = results[0]
    return BacktestResult(
        fills=fills, orders=orders, quotes=quotes.reshape(-1, 4),
        instruments=tuple(i for r in results for i in r.instruments), symbols=r0.symbols,
        counters=counters, config=r0.config, strategy=r0.strategy, strategy_log=log,
        n_input=r0.n_input, n_book=n_book, seconds=seconds,
        first_ts=min(first) if first else 0, last_ts=max(last) if last else 0,
        denied=denied, path="/".join(paths), path_reason="; ".join(r for r in reasons if r))


# ---------------------------------------------------------------------- one shard's work

_PROGRESS = None  # worker: the shared per-shard message counters (set by _init_worker)
_INHERITED = None  # shard -> its books: set in the parent just before the pool forks


def _init_worker(counters) -> None:
    global _PROGRESS
    _PROGRESS = counters


def _run_shard(args) -> tuple[list[BacktestResult], list[str]]:
    """Run the books of one shard in order (in a worker, or in this process for N = 1);
    return their results and :func:`book_digest` (computed here: in parallel in workers).

    ``books`` None: the shard's books are the ones the worker inherited at the fork
    (:data:`_INHERITED`), rather than pickled through the pool's pipe."""
    (k, books, strategy, strategy_table, bt_cfg, risk_cfg, want, progress_cb) = args
    from host.trading.backtest.fast import make_backtester
    from host.trading.strategy import make_strategy

    if books is None:
        books = _INHERITED[k]
    out = []
    done = 0
    for m in books:
        loc = m.locates[0]
        strat = make_strategy(strategy, strategy_table)
        bt = make_backtester(m, strat, bt_cfg, risk_cfg, first_order_id=first_order_id(loc),
                             want=want)
        if progress_cb is not None:
            def cb(n, base=done):
                progress_cb(k, base + n)
        elif _PROGRESS is not None:
            def cb(n, base=done):
                _PROGRESS[k] = base + n
        else:
            cb = None
        out.append(bt.run(cb))
        done += len(m)
    return out, [book_digest(r) for r in out]


def _loop_choice(n_book: int) -> str:
    """The event loop every book runs (decided once: the books must not differ)."""
    from host.trading.backtest.fast import AUTO_COMPILE_MIN, choice, compiled_cache_warm

    want = choice()
    if want == "auto":
        want = "fast" if (compiled_cache_warm() or n_book >= AUTO_COMPILE_MIN) else "auto"
    return want


def run_books(market: MarketData, strategy: str, strategy_table: dict, bt_cfg, risk_cfg,
              shards: int = 1, progress=None) -> tuple[BacktestResult, ShardedRun]:
    """Run ``strategy`` on every locate of ``market`` as its own book, on ``shards`` processes.

    Parameters
    ----------
    market : MarketData
        Book messages of the traded locates (each locate becomes a book).
    strategy, strategy_table :
        Strategy name and its ``[strategy]`` table (one instance per book).
    bt_cfg : BacktestConfig
    risk_cfg : RiskConfig or None
        Applied to each book on its own (see the module docstring).
    shards : int
        Worker processes; 1 runs every book in this process. More shards than books: one per
        book (``ShardedRun.note`` says so).
    progress : callable, optional
        ``progress(done, total)`` with book messages done over all books, every ~0.2 s from
        the workers (every 32,768 messages of a book in one process).

    Returns
    -------
    (BacktestResult, ShardedRun)
    """
    from host.trading.strategy import make_strategy

    n_inst = make_strategy(strategy, strategy_table).n_instruments
    if n_inst != 1:
        raise UserError(f"strategy {strategy} trades {n_inst} symbols together: --books and "
                        "--shards split the run by symbol and need a one-symbol strategy "
                        "(mm, momentum)")
    t0 = time.perf_counter()
    parts, note = plan_shards(market.locates, shards)
    want = _loop_choice(len(market))
    total = len(market)
    if len(parts) == 1:
        cb = None
        if progress is not None:
            def cb(_k, n):
                progress(n, total)
        shard_res = [_run_shard((0, split_books(market), strategy, strategy_table, bt_cfg,
                                 risk_cfg, want, cb))]
    else:
        shard_res = _run_pool(market, parts, strategy, strategy_table, bt_cfg, risk_cfg, want,
                              progress, total)
    per_book, digests = {}, {}
    for p, (rs, ds) in zip(parts, shard_res, strict=True):
        per_book.update(zip(p, rs, strict=True))
        digests.update(zip(p, ds, strict=True))
    merged = merge_results([per_book[x] for x in sorted(per_book)], 0.0)
    seconds = time.perf_counter() - t0
    merged.seconds = seconds
    info = ShardedRun(parts, digests, [shard_digest(digests, p) for p in parts], per_book,
                      seconds, note, [sum(per_book[x].n_book for x in p) for p in parts])
    if progress is not None:
        progress(total, total)
    return merged, info


def _start_method() -> str:
    """``fork`` where it is safe (POSIX, this process has one thread, so no lock can be held
    by another thread at the fork; the project runs no numba ``parallel`` kernels, whose thread
    pools fork badly), else ``spawn``. Fork spares each worker the interpreter start, the
    imports and the pickling of its books: on the 2-core VM it took a 2-shard run of the demo
    sample's 8 books from 1.7 s to 0.4 s (compiled loop)."""
    import multiprocessing as mp
    import threading

    if "fork" in mp.get_all_start_methods() and threading.active_count() == 1:
        return "fork"
    return "spawn"


def _warm_fast(book: MarketData, strategy, strategy_table, bt_cfg, risk_cfg) -> None:
    """Load the compiled kernels in this process before it forks, so that every worker
    inherits them instead of loading them from numba's cache itself (~0.5 s a process on
    the 2-core VM): a throw-away run on the first 2,000 messages of one book."""
    from host.trading.backtest.fast import make_backtester
    from host.trading.strategy import make_strategy

    head = MarketData({c: v[:2000] for c, v in book.cols.items()}, book.locates, book.symbols,
                      book.n_input, dict(book.stats))
    make_backtester(head, make_strategy(strategy, strategy_table), bt_cfg, risk_cfg,
                    want="fast").run()


def _run_pool(market, parts, strategy, strategy_table, bt_cfg, risk_cfg, want, progress,
              total):
    import multiprocessing as mp

    global _INHERITED
    method = _start_method()
    ctx = mp.get_context(method)
    counters = ctx.Array("q", len(parts), lock=False)
    by_loc = {b.locates[0]: b for b in split_books(market)}
    books = [[by_loc[x] for x in p] for p in parts]
    tasks = [(k, None if method == "fork" else books[k], strategy, strategy_table, bt_cfg,
              risk_cfg, want, None) for k in range(len(parts))]
    if method == "fork" and want == "fast":
        _warm_fast(books[0][0], strategy, strategy_table, bt_cfg, risk_cfg)
    _INHERITED = books if method == "fork" else None
    try:
        with ctx.Pool(len(parts), initializer=_init_worker, initargs=(counters,)) as pool:
            _INHERITED = None  # the workers have their copy; do not keep the parent's alive
            job = pool.map_async(_run_shard, tasks, chunksize=1)
            while not job.ready():
                job.wait(0.2)
                if progress is not None:
                    progress(min(sum(counters[:]), total), total)
            return job.get()
    finally:
        _INHERITED = None
