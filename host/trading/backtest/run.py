"""One-call backtests and parameter sweeps (what ``python -m host backtest|sweep`` runs).

A sweep runs one backtest per configuration file in a pool of worker processes (2 by default,
the machine's core budget); every worker loads the input itself (nothing big is pickled) and
writes its own output folder, and the sweep writes ``sweep.json`` with the headline metrics of
every configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from host.errors import UserError
from host.trading.backtest.data import load_market
from host.trading.backtest.engine import BacktestConfig
from host.trading.backtest.fast import make_backtester
from host.trading.strategy import from_dict, load_toml, make_strategy

__all__ = ["BacktestRun", "load_run_config", "run_backtest", "run_sweep"]


@dataclass(frozen=True)
class BacktestRun:
    """Everything a config file says: strategy table, backtest and risk configs."""

    strategy_table: dict
    backtest: BacktestConfig
    risk: object | None


def load_run_config(path=None, overrides: dict | None = None) -> BacktestRun:
    """Read ``[strategy]``, ``[backtest]`` and ``[risk]`` from a TOML file (all optional);
    ``overrides`` (a dict of the same shape) wins over the file."""
    d = load_toml(path) if path else {}
    for k, v in (overrides or {}).items():
        d.setdefault(k, {}).update(v)
    unknown = sorted(set(d) - {"strategy", "backtest", "risk"})
    if unknown:
        raise UserError(f"{path}: unknown table(s) {', '.join(unknown)}; "
                        "known: strategy, backtest, risk")
    bt = from_dict(BacktestConfig, d.get("backtest"), "backtest")
    risk = None
    if "risk" in d:
        from host.trading.risk import ConfigError as RiskConfigError
        from host.trading.risk import config_from_dict

        try:
            risk = config_from_dict(d["risk"])
        except RiskConfigError as e:
            raise UserError(str(e)) from None
    return BacktestRun(dict(d.get("strategy", {})), bt, risk)


def run_backtest(path, strategy: str, config=None, out_dir=None, *, symbols=None,
                 progress: bool = False, plots: bool = True, overrides: dict | None = None,
                 store_sink=None, shards: int | None = None, books: int | None = None):
    """Load ``path``, run ``strategy`` with the config file ``config``, write the outputs.

    The event loop is :func:`host.trading.backtest.fast.make_backtester`'s choice (the
    compiled one for ``mm`` unless ``ITCHFPGA_BACKTEST=python``; ``result.path`` says which).

    ``store_sink`` (``python -m host backtest --store``, a
    :class:`host.store.live.StoreWriter`; this floor only calls it) gets
    ``start_backtest(market, account, strategy)``, ``backtest_progress(backtester)`` with the
    progress calls (every 32,768 messages; it reads ``progress_rows``) and
    ``finish_backtest(result, out_dir)``.

    ``shards`` / ``books`` (``backtest --shards N --books K``) make it a multi-book run
    (:mod:`host.trading.backtest.sharded`): the strategy (one symbol) trades each of the ``K``
    most active symbols (or each of ``symbols``) as its own book, split over ``N`` worker
    processes; ``metrics["shards"]`` has the partition, the per-book and per-shard digests
    and a note when ``N`` was reduced to the number of books.

    Returns
    -------
    (BacktestResult, dict, dict)
        The result, the metrics and the paths written (empty without ``out_dir``).
    """
    from host.trading.analytics import analyze

    run = load_run_config(config, overrides)
    strat = make_strategy(strategy, run.strategy_table)
    locs = [s for s in (symbols or []) if isinstance(s, int)]
    names = [s for s in (symbols or []) if isinstance(s, str)]
    if shards is not None or books is not None:
        return _run_multi(path, strategy, run, out_dir, locs, names, progress, plots,
                          store_sink, shards, books)
    market = load_market(path, locs or None, names or None, n_auto=strat.n_instruments,
                         max_messages=run.backtest.max_messages)
    if len(market.locates) < strat.n_instruments:
        raise UserError(f"strategy {strategy} needs {strat.n_instruments} symbols, got "
                        f"{len(market.locates)}")
    bt = make_backtester(market, strat, run.backtest, run.risk)
    bar = None
    cb = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(market), unit="msg", unit_scale=True, desc=f"backtest {strategy}",
                   leave=False)

        def cb(n, bar=bar):
            bar.update(n - bar.n)
    if store_sink is not None:
        acct = bt.cfg.account
        store_sink.start_backtest(market, acct, bt.risk_config.account(acct).strategy)

        def cb(n, bar_cb=cb):
            if bar_cb is not None:
                bar_cb(n)
            store_sink.backtest_progress(bt)
    try:
        result = bt.run(cb)
    finally:
        if bar is not None:
            bar.close()
    if store_sink is not None:
        store_sink.finish_backtest(result, out_dir)
    metrics, series = analyze(result)
    paths = {}
    if out_dir is not None:
        from host.trading.analytics.report import write_outputs

        paths = write_outputs(result, metrics, series, out_dir, plots=plots)
    return result, metrics, paths


def _run_multi(path, strategy, run, out_dir, locs, names, progress, plots, store_sink,
               shards, books):
    """``run_backtest`` with ``--shards`` / ``--books`` (see there)."""
    from host.trading.analytics import analyze
    from host.trading.backtest.sharded import run_books

    if store_sink is not None:
        raise UserError("--store is not supported with --shards/--books (one run per book "
                        "would be written from several processes); run without them")
    if books is not None and books < 1:
        raise UserError(f"--books must be >= 1, got {books}")
    if shards is not None and shards < 1:
        raise UserError(f"--shards must be >= 1, got {shards}")
    if books is not None and (locs or names):
        raise UserError("give --books K (the K most active symbols) or --symbols, not both")
    market = load_market(path, locs or None, names or None, n_auto=books or 1,
                         max_messages=run.backtest.max_messages)
    if books is not None and len(market.locates) < books:
        raise UserError(f"--books {books}: {path} has book messages for "
                        f"{len(market.locates)} symbol(s)")
    bars: list = []  # made at the first call: tqdm's monitor thread would stop a fork
    cb = None
    n_sh = min(shards or 1, len(market.locates))
    if progress:
        def cb(n, total):
            if not bars:
                from tqdm import tqdm

                bars.append(tqdm(total=total, unit="msg", unit_scale=True, leave=False,
                                 desc=f"backtest {strategy}, {len(market.locates)} books, "
                                 f"{n_sh} shard(s)"))
            bars[0].update(n - bars[0].n)
    try:
        result, info = run_books(market, strategy, run.strategy_table, run.backtest, run.risk,
                                 shards or 1, progress=cb)
    finally:
        if bars:
            bars[0].close()
    metrics, series = analyze(result)
    metrics["shards"] = {
        "n": len(info.parts), "parts": info.parts, "note": info.note,
        "messages": info.messages,
        "book_digests": {str(k): v for k, v in sorted(info.book_digests.items())},
        "shard_digests": info.shard_digests,
        "books": {str(k): {"fills": len(r.fills), "orders": len(r.orders),
                           "denied": sum(r.denied.values()), "path": r.path}
                  for k, r in sorted(info.book_results.items())},
    }
    paths = {}
    if out_dir is not None:
        from host.trading.analytics.report import write_outputs

        paths = write_outputs(result, metrics, series, out_dir, plots=plots)
    return result, metrics, paths


def _sweep_one(args):
    path, strategy, cfg, out, symbols, sinks, rid = args
    writer = None
    try:
        if sinks is not None:
            writer = sinks(rid, out, path)
        _, m, _ = run_backtest(path, strategy, cfg, out, symbols=symbols, plots=True,
                               store_sink=writer)
        if writer is not None:
            m["store"] = {"run": rid, "written": writer.close(), "batches": writer.batches}
    except BaseException as e:
        if writer is not None:
            writer.abort()
        if isinstance(e, UserError | getattr(sinks, "errors", ())):
            return cfg, {"error": str(e)}
        raise
    return cfg, m


def run_sweep(path, strategy: str, configs, out_dir, *, jobs: int = 2, symbols=None,
              sinks=None, run_ids=None) -> dict:
    """Run one backtest per config file on ``jobs`` processes; write ``sweep.json``.

    With ``sinks`` (``sweep --store``: :class:`host.store.live.SweepSinks`, a picklable
    ``(run_id, out_dir, input) -> writer`` whose ``errors`` are the exceptions that fail one
    config) each backtest writes itself to the store as ``backtest --store`` does, from its
    own process, under its run id (``run_ids``: one per config, in order); its entry in
    ``sweep.json`` then has ``store``: ``{"run", "written", "batches"}``. A store error fails
    that config only (its entry has ``error``). The store floor is above this one, hence the
    factory passed in rather than imported here.
    """
    import multiprocessing as mp

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rids = list(run_ids) if run_ids is not None else [None] * len(configs)
    tasks = [(str(path), strategy, str(c), str(out / Path(c).stem), symbols, sinks, r)
             for c, r in zip(configs, rids, strict=True)]
    for c in configs:  # a bad file fails before any worker starts
        load_run_config(c)
    with mp.get_context("spawn").Pool(max(1, jobs)) as pool:
        results = pool.map(_sweep_one, tasks)
    table = {Path(c).stem: m for c, m in results}
    (out / "sweep.json").write_text(json.dumps(table, indent=2) + "\n")
    return table
