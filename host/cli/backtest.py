"""``python -m host backtest|sweep``: strategies on a replayed ITCH day (trading floor).

``backtest`` runs one strategy through risk against the simulated venue (exact FIFO queue
position, :mod:`host.trading.backtest`) and writes ``metrics.json``, ``fills.parquet``,
``orders.parquet`` and a self-contained ``report.html``; it prints the headline metrics.
``sweep`` runs one backtest per configuration file on 2 processes and writes ``sweep.json``.
Heavy modules are imported inside the command functions (start-up time of the CLI).
"""

from __future__ import annotations

from host.cli.args import add_symbols_argument
from host.cli.db import add_store_arguments
from host.errors import UserError

__all__ = ["register"]

STRATEGY_NAMES = ("mm", "pairs", "momentum")


def register(subparsers) -> None:
    """Add the ``backtest`` and ``sweep`` subcommands."""
    p = subparsers.add_parser(
        "backtest", help="backtest a strategy on an ITCH file or pcap (exact queue position)",
        description="Replay INPUT through an L3 book with the strategy's orders in the real "
        "FIFO queues (through the risk layer), then write metrics.json, fills/orders Parquet "
        "and report.html into --out. The mm strategy runs on a compiled event loop (numba, "
        "same results as the Python one) once numba has compiled it (~1 min, once per machine: "
        "ITCHFPGA_BACKTEST=fast compiles it; unset, small inputs stay on Python until then); "
        "ITCHFPGA_BACKTEST=python forces the Python loop. "
        "The output says which loop ran ('event loop: ...').")
    p.add_argument("input", help="NASDAQ ITCH 5.0 file (.gz ok) or MoldUDP64 pcap")
    p.add_argument("--strategy", required=True, choices=STRATEGY_NAMES)
    p.add_argument("--config", help="TOML file with [strategy], [backtest], [risk] tables")
    p.add_argument("--out", default="out/backtest", help="output folder")
    add_symbols_argument(p, default_help="the most active symbol(s) of the input")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true", help="report without plots (faster)")
    p.add_argument("--books", type=int, metavar="K",
                   help="multi-book run: trade the strategy (one symbol: mm, momentum) on each "
                   "of the K most active symbols, each its own book with its own risk limits "
                   "(with --symbols: on each listed symbol); see docs/backtest.md")
    p.add_argument("--shards", type=int, metavar="N",
                   help="split the books by symbol over N worker processes (the cluster's "
                   "partition); results equal the one-process run exactly; more shards than "
                   "books run one book per shard")
    add_store_arguments(p)
    p.set_defaults(func=_cmd_backtest)

    s = subparsers.add_parser(
        "sweep", help="run a backtest per config file on 2 processes",
        description="One backtest per --config file (in parallel), sweep.json with the "
        "metrics of each, one output folder per config under --out.")
    s.add_argument("input", help="NASDAQ ITCH 5.0 file (.gz ok) or MoldUDP64 pcap")
    s.add_argument("--strategy", required=True, choices=STRATEGY_NAMES)
    s.add_argument("--config", nargs="+", required=True, help="TOML files, one run each")
    s.add_argument("--out", default="out/sweep", help="output folder")
    s.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    add_symbols_argument(s, default_help="the most active symbol(s) of the input")
    s.add_argument("--store", metavar="DIR|URL",
                   help="write each backtest to this store while it runs, as backtest --store "
                   "does (one run id per config: the one backtest --config C --store derives)")
    s.add_argument("--run-id", metavar="PREFIX",
                   help="with --store: run ids PREFIX-<config file stem> instead")
    s.set_defaults(func=_cmd_sweep)


def _guard(fn):
    try:
        return fn()
    except UserError:
        raise
    except (ValueError, KeyError) as e:
        raise UserError(str(e).strip("'\"")) from None
    except (OSError, EOFError) as e:
        raise UserError(f"cannot read input: {e}") from None


def _cmd_backtest(a) -> int:
    from host.cli.db import finish_store, store_writer
    from host.feed.capture import detect_format
    from host.store.live import StoreWriteError
    from host.trading.analytics.report import HEADLINE
    from host.trading.backtest.run import run_backtest

    detect_format(a.input)
    if a.shards is not None and a.shards < 1:
        raise UserError(f"--shards must be >= 1, got {a.shards}")
    if a.books is not None and a.books < 1:
        raise UserError(f"--books must be >= 1, got {a.books}")
    multi = a.shards is not None or a.books is not None
    if multi and a.store:
        raise UserError("--store is not supported with --shards/--books")
    writer = store_writer(a, "backtest", a.out, strategy=a.strategy, config=a.config,
                          symbols=a.symbols)
    try:
        res, m, paths = _guard(lambda: run_backtest(
            a.input, a.strategy, a.config, a.out, symbols=a.symbols,
            progress=not a.no_progress, plots=not a.no_plots, store_sink=writer,
            shards=a.shards, books=a.books))
    except StoreWriteError as e:  # the run ends; the message says what was written
        writer.abort()
        raise UserError(str(e)) from None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    print(f"backtest {a.strategy} on {', '.join(m['instruments'])}: {res.n_input:,} messages "
          f"({res.n_book:,} of the traded symbols) in {res.seconds:.2f} s")
    print(f"event loop: {res.path} ({res.path_reason})")
    sh = m.get("shards")
    if sh is not None:
        if sh["note"]:
            print(f"note: {sh['note']}")
        print(f"shards: {sh['n']} ({'; '.join(','.join(map(str, p)) for p in sh['parts'])}), "
              f"{len(sh['book_digests'])} book(s), book messages per shard "
              + "/".join(f"{n:,}" for n in sh["messages"]) + "; shard digests "
              + " ".join(d[:12] for d in sh["shard_digests"]))
    for k in HEADLINE:
        v = m.get(k)
        print(f"  {k:<24} {v:,.4f}" if isinstance(v, float) else f"  {k:<24} {v}")
    c = m["counters"]
    print(f"  anomalies: unknown_ref={c['unknown_ref']} duplicate_add={c['duplicate_add']} "
          f"ahead_inconsistent={c['ahead_inconsistent']}; denied by risk: {m['denied'] or 0}")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    if writer is not None:
        try:
            finish_store(writer, a.store)
        except StoreWriteError as e:
            raise UserError(str(e)) from None
    return 0


def _sweep_run_ids(a) -> list[str] | None:
    """One run id per config (``--store``): ``--run-id PREFIX`` gives ``PREFIX-<stem>``,
    else the id ``backtest --config C --store`` derives for the same input and options."""
    import re
    from pathlib import Path

    if not a.store:
        if a.run_id:
            raise UserError("--run-id needs --store")
        return None
    from host.cli.db import _open
    from host.store.live import run_id

    stems = [Path(c).stem for c in a.config]
    if len(set(stems)) < len(stems):
        raise UserError("two --config files have the same name (their output folders and run "
                        "ids would collide)")
    if a.run_id:
        ids = [f"{a.run_id}-{s}" for s in stems]
    else:
        ids = [run_id("backtest", a.input, strategy=a.strategy, config=c, symbols=a.symbols)
               for c in a.config]
    for rid in ids:
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", rid):
            raise UserError(f"run id {rid!r}: use 1-64 letters, digits, '_', '.', ':', '-'")
    _open(a.store).close()  # create or check it once (unreachable: one line, nothing runs)
    return ids


def _cmd_sweep(a) -> int:
    from host.feed.capture import detect_format
    from host.trading.backtest.run import run_sweep

    detect_format(a.input)
    if a.jobs < 1:
        raise UserError("--jobs must be >= 1")
    ids = _sweep_run_ids(a)
    sinks = None
    if a.store:
        from host.store.live import SweepSinks

        sinks = SweepSinks(a.store)
    table = _guard(lambda: run_sweep(a.input, a.strategy, a.config, a.out, jobs=a.jobs,
                                     symbols=a.symbols, sinks=sinks, run_ids=ids))
    print(f"{'config':<20} {'pnl_total':>12} {'sharpe':>8} {'max_dd':>10} {'fills':>6}")
    failed = 0
    for name, m in table.items():
        if "error" in m:
            failed += 1
            print(f"{name:<20} error: {m['error']}")
            continue
        print(f"{name:<20} {m['pnl_total']:>12.2f} {m['sharpe']:>8.2f} "
              f"{m['max_drawdown']:>10.2f} {m['n_fills']:>6}")
    for name, m in table.items():
        st = m.get("store")
        if st:
            print(f"store {a.store.split('@')[-1]}: run {st['run']} ({name}): "
                  + ", ".join(f"{t} +{n:,}" for t, n in sorted(st["written"].items()))
                  + f" ({st['batches']} batches)")
    print(f"wrote {a.out}/sweep.json")
    return 1 if failed and a.store else 0
