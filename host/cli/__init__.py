"""Command line of the market-data stack and the trading host: ``python -m host COMMAND``.

One module per floor, each adding its subcommands with ``register(subparsers)``:

:mod:`host.cli.feed`
    ``generate`` (seeded sample stream), ``bbo`` (BBO trace as CSV, reference book or
    ``--card sim``), ``stats`` (message counts, framing counters, book anomalies).
:mod:`host.cli.card`
    ``replay``: replay a file through the card (counters, BBO updates, msgs/s, latency per
    message type, plots; ``--verify`` against the reference model).
:mod:`host.cli.trading`
    ``session``: end-to-end session, card -> risk -> matching engine, with journal.
:mod:`host.cli.journal`
    ``journal check|repair``: validate a journal and its acknowledgement sidecar; drop a torn
    tail; ``--salvage`` cuts lost acknowledged data, reported.
:mod:`host.cli.backtest`
    ``backtest`` (a strategy against the replayed L3 book, exact queue position, report) and
    ``sweep`` (several configs over the cores).
:mod:`host.cli.serve`, :mod:`host.cli.db`
    ``serve`` (operator console in the browser, ``/metrics``), ``db`` (load captures and
    sessions into DuckDB/Parquet or PostgreSQL, standard queries).
:mod:`host.cli.cluster`
    ``cluster``: NATS JetStream scale-out (local server, symbol shards, standby).

Errors (missing file, unknown format, unknown card, bad arguments) print one line on stderr
and exit with status 1 (2 for usage errors found by argparse).
"""

from __future__ import annotations

import argparse
import sys

from host.errors import UserError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from host.cli import backtest, card, cluster, db, feed, journal, serve, trading

    p = argparse.ArgumentParser(prog="python -m host", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    feed.register(sub)
    card.register(sub)
    trading.register(sub)
    journal.register(sub)
    backtest.register(sub)
    serve.register(sub)
    db.register(sub)
    cluster.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m host`` and the ``itchfpga`` script; returns the exit status."""
    a = _parser().parse_args(argv)
    try:
        return a.func(a)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
