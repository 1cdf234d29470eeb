"""``python -m host session``: the command line of the trading floor.

Runs :func:`host.trading.session.run_session` (card -> risk -> matching engine, journaled) and
prints its report; bad input is one line on stderr (:class:`host.errors.UserError`).
"""

from __future__ import annotations

from host.cli.args import add_symbols_argument
from host.cli.db import add_store_arguments
from host.errors import UserError

__all__ = ["register"]


def register(subparsers) -> None:
    """Add the ``session`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "session", help="end-to-end session: card -> risk -> matching engine, with journal",
        description="Replay market data through the card, run the built-in order flow "
        "through the risk engine into the matching engine, journal everything, print "
        "orders / denials / fills / positions and P&L, export the journals.")
    p.add_argument("input", help="NASDAQ ITCH 5.0 file (.gz ok) or MoldUDP64 pcap")
    p.add_argument("--card", default="model",
                   help="market-data source: model (the reference book) or sim (the simulated "
                   "card, Verilated hw/top.py); default: model")
    p.add_argument("--config", help="TOML file with a [risk] table (default: built in)")
    p.add_argument("--out", default="out/session", help="output folder (journals, exports)")
    add_symbols_argument(p, default_help="up to 8 symbols quoted at $1.00 or more")
    p.add_argument("--chunk", type=int, default=64, help="card records per order batch")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--drop-packets", type=int, nargs="*", default=[],
                   help="packet indices to leave out (sequence gaps; ITCH input only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_store_arguments(p)
    p.set_defaults(func=_cmd_session)


def _cmd_session(a) -> int:
    from host.feed.capture import detect_format
    from host.trading.risk import ConfigError, load_config
    from host.trading.session import CARD_SOURCES, run_session

    detect_format(a.input)  # missing, empty, foreign file: one line before anything runs
    if a.card not in CARD_SOURCES:
        raise UserError(f"unknown card {a.card!r}; choose from: {', '.join(sorted(CARD_SOURCES))}")
    try:
        cfg = load_config(a.config) if a.config else None
    except ConfigError as e:
        raise UserError(str(e)) from None
    if a.chunk < 1:
        raise UserError("--chunk must be positive")
    from pathlib import Path

    from host.cli.db import finish_store, store_writer
    from host.store.ingest import RUN_ID_FILE
    from host.store.live import StoreWriteError

    Path(a.out, RUN_ID_FILE).unlink(missing_ok=True)  # a stale id is not this run's
    writer = store_writer(a, "session", a.out, card=a.card, config=a.config,
                          symbols=a.symbols, chunk=a.chunk, seed=a.seed,
                          drop_packets=a.drop_packets)
    try:
        rep = run_session(a.input, card=a.card, config=cfg, out_dir=a.out, symbols=a.symbols,
                          chunk=a.chunk, seed=a.seed, drop_packets=a.drop_packets,
                          progress=not a.no_progress, store_sink=writer)
        if writer is not None:
            writer.finish_session(a.out)
    except StoreWriteError as e:  # the run ends; the message says what was written
        writer.abort()
        raise UserError(str(e)) from None
    except (ValueError, KeyError) as e:
        _abort(writer)
        raise UserError(str(e).strip("'\"")) from None
    except (OSError, EOFError) as e:  # unreadable input: a truncated gzip, an I/O error
        _abort(writer)
        raise UserError(f"{a.input}: cannot read: {e}") from None
    except Exception as e:  # card not available, build failures: one line, not a traceback
        _abort(writer)
        if a.card != "model" and type(e).__module__.startswith("host.card"):
            raise UserError(f"card {a.card!r}: {e}") from None
        raise
    except BaseException:  # Ctrl-C: what is queued still lands
        _abort(writer)
        raise
    for line in rep.lines():
        print(line)
    if writer is not None:
        try:
            finish_store(writer, a.store)
        except StoreWriteError as e:
            raise UserError(str(e)) from None
    return 0


def _abort(writer) -> None:
    if writer is not None:
        writer.abort()
