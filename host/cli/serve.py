"""``python -m host serve``: the operator console in the browser (:mod:`host.console`).

Replays an input (``--replay``; ``--session`` adds the scripted kill switches of
``python -m host session``) through the card source and the trading session at ``--speed``
times the feed's own clock, and serves the page, its WebSocket, the operator actions and
``/metrics`` on 127.0.0.1 (``--host`` to change it). Actions need the token: ``--token``, else
``$ITCHFPGA_CONSOLE_TOKEN``, else a generated one, printed at start. ``--store`` writes the
session to the store while it runs through :class:`host.store.live.StoreWriter`, as
``python -m host session --store`` does.
"""

from __future__ import annotations

import os
import sys

from host.cli.args import add_symbols_argument
from host.cli.db import add_store_arguments
from host.errors import UserError

__all__ = ["register"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(subparsers) -> None:
    """Add the ``serve`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "serve", help="operator console in the browser (WebSocket, actions, /metrics)",
        description="Replay an input through the card and the trading session at a chosen "
        "speed and serve the operator console: books and depth, trades, risk, card status, "
        "latency, positions and P&L; kill switches and clear-stale from the page; "
        "Prometheus metrics at /metrics.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--replay", metavar="INPUT",
                     help="NASDAQ ITCH 5.0 file (.gz ok) or MoldUDP64 pcap to replay; the "
                     "built-in order flow trades on it, the kill switches are the operator's")
    src.add_argument("--session", metavar="INPUT",
                     help="the same, with the scripted kill switches of python -m host "
                     "session too")
    p.add_argument("--speed", type=float, default=100.0,
                   help="feed seconds per wall second (0: as fast as possible; quiet stretches "
                   "longer than a wall second are skipped); default 100")
    p.add_argument("--card", default="model", help="market-data source: model or sim")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--token", help="action token (default: $ITCHFPGA_CONSOLE_TOKEN or a "
                   "generated one)")
    p.add_argument("--hz", type=float, default=20.0, help="WebSocket pushes per second")
    p.add_argument("--depth", type=int, default=5, help="ladder levels per side (1..50)")
    p.add_argument("--clock-mhz", type=float, help="--card sim: also show the card latency in ns "
                   "at this core clock, one your build closes (default: cycles only; the "
                   "nominal 322 MHz is not timing-closed, see docs/synthesis.md)")
    p.add_argument("--drop-packets", type=int, nargs="*", default=[],
                   help="packet indices to leave out (sequence gaps; ITCH input only)")
    p.add_argument("--out", default="out/console", help="folder of the session's journals")
    add_store_arguments(p)
    add_symbols_argument(p, default_help="up to 8 symbols quoted at $1.00 or more")
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(a) -> int:
    import secrets

    from host.feed.capture import detect_format

    scripted = a.replay is None
    a.replay = a.replay or a.session
    detect_format(a.replay)
    if not (a.speed >= 0 and a.speed < float("inf")):
        raise UserError("--speed must be a number >= 0")
    if not 0 < a.port < 65536:
        raise UserError("--port must be in 1..65535")
    if not 1 <= a.hz <= 100:
        raise UserError("--hz must be between 1 and 100")
    if not 1 <= a.depth <= 50:
        raise UserError("--depth must be between 1 and 50")
    from host.cli.card import check_clock_mhz

    clock_mhz = check_clock_mhz(a.clock_mhz)
    token = a.token or os.environ.get("ITCHFPGA_CONSOLE_TOKEN") or secrets.token_urlsafe(24)
    if len(token) < 16:
        raise UserError("the token must have at least 16 characters")
    import uvicorn

    from host.console.app import create_app
    from host.console.live import LiveConfig, LiveSession
    from host.console.metrics import ConsoleMetrics
    from host.trading.session import CARD_SOURCES

    if a.card not in CARD_SOURCES:
        raise UserError(f"unknown card {a.card!r}; choose from: {', '.join(sorted(CARD_SOURCES))}")
    _check_bind(a.host, a.port)  # before the seconds of set-up, and as one line
    metrics = ConsoleMetrics()
    writer = _store_writer(a, scripted)
    try:
        session = LiveSession(LiveConfig(input=a.replay, card=a.card, speed=a.speed,
                                         out_dir=a.out, symbols=tuple(a.symbols or ()),
                                         depth=a.depth, scripted=scripted,
                                         drop_packets=tuple(a.drop_packets),
                                         clock_hz=clock_mhz * 1e6 if clock_mhz else 0.0),
                              metrics=metrics, store_sink=writer)
    except BaseException as e:
        from host.store.live import StoreWriteError

        if writer is not None:
            writer.abort()
        if isinstance(e, StoreWriteError):
            raise UserError(str(e)) from None
        if isinstance(e, ValueError | KeyError):
            raise UserError(str(e).strip("'\"")) from None
        if isinstance(e, OSError | EOFError):
            raise UserError(f"{a.replay}: cannot read: {e}") from None
        raise
    if writer is not None:
        metrics.attach_store(writer)
    failed: list[str] = []

    def shutdown():  # after session.stop(): write what is pending, then say what was written
        if writer is None:
            return
        from host.cli.db import finish_store
        from host.store.live import StoreWriteError

        try:
            finish_store(writer, a.store)
        except StoreWriteError as e:  # printed here: uvicorn re-raises SIGTERM/SIGINT after
            failed.append(str(e))  # the shutdown, so the code after run() may not run
            print(f"error: {e}", file=sys.stderr, flush=True)

    loopback = a.host in _LOOPBACK or a.host.startswith("127.")
    app = create_app(session, token=token, metrics=metrics, hz=a.hz, on_shutdown=shutdown,
                     allowed_hosts=("127.0.0.1", "localhost", "::1", a.host) if loopback
                     else None)
    host = f"[{a.host}]" if ":" in a.host else a.host
    if not loopback:
        print(f"warning: binding {a.host}: the console is reachable from other machines "
              "(read-only without the token)", file=sys.stderr)
    print(f"console: http://{host}:{a.port}/  ({len(session.locates)} instruments, "
          f"{session.n_records:,} card records, speed {a.speed:g}x)")
    print(f"actions token: {token}")
    print(f"open with the token: http://{host}:{a.port}/#token={token}", flush=True)
    try:
        uvicorn.run(app, host=a.host, port=a.port, log_level="critical", ws="websockets-sansio")
    except (OSError, SystemExit) as e:  # uvicorn exits when it cannot bind (taken meanwhile)
        raise UserError(f"cannot serve on {a.host}:{a.port}: {e}") from None
    return 1 if failed else 0


def _store_writer(a, scripted: bool):
    """``--store``: the run's :class:`host.store.live.StoreWriter` (as ``session --store``).

    A console run is not reproducible (the operator's actions decide its orders), so without
    ``--run-id`` its id is new every time (the options and the start time); with the same
    ``--run-id`` the writes are idempotent (a replay without operator actions writes nothing
    new the second time).
    """
    import time

    from host.cli.db import store_writer
    from host.store.ingest import RUN_ID_FILE

    if a.store:
        from pathlib import Path

        Path(a.out, RUN_ID_FILE).unlink(missing_ok=True)  # a stale id is not this run's
    started = None if a.run_id else time.time_ns()
    return store_writer(a, "serve", a.out, input_path=a.replay, card=a.card,
                        symbols=a.symbols, drop_packets=a.drop_packets, scripted=scripted,
                        started=started)


def _check_bind(host: str, port: int) -> None:
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UserError(f"--host {host}: {e.strerror}") from None
    fam, _, _, _, addr = infos[0]
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            raise UserError(f"cannot serve on {host}:{port}: {e.strerror}") from None
