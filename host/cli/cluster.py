"""``python -m host cluster up|status|down|session|publish``: scale-out on NATS JetStream.

The command line of :mod:`host.cluster` (top floor). Everything heavy (nats-py, numpy, the
trading floor) is imported inside the command functions. See ``docs/cluster.md``.
"""

from __future__ import annotations

from host.cli.args import add_symbols_argument
from host.errors import UserError

__all__ = ["register"]

_DIR = "out/cluster"


def register(subparsers) -> None:
    """Add the ``cluster`` subcommand (with its own sub-subcommands)."""
    p = subparsers.add_parser(
        "cluster", help="NATS JetStream: local cluster of symbol shards, sharded session, "
        "market-data fan-out",
        description="Start/stop a local NATS server and N symbol shards (primary + optional "
        "hot standby), run the trading session through them, publish market data.")
    sub = p.add_subparsers(dest="cluster_cmd", required=True)
    u = sub.add_parser("up", help="start nats-server, N shards and their supervisor (they "
                       "keep running)")
    u.add_argument("--shards", type=int, default=2)
    u.add_argument("--standby", action="store_true", help="a hot standby per shard")
    u.add_argument("--dir", default=_DIR, help=f"state, NATS store, journals (default {_DIR})")
    u.add_argument("--nats", help="use this running NATS server instead of starting one")
    u.add_argument("--host", default="127.0.0.1", help="NATS listen address")
    u.add_argument("--port", type=int, default=0, help="NATS port (default: a free one)")
    u.add_argument("--takeover-ms", type=float, default=500,
                   help="a standby takes over after this long without primary heartbeat")
    u.add_argument("--no-supervise", action="store_true",
                   help="no supervisor (dead replicas stay down)")
    u.add_argument("--max-restarts", type=int, default=5,
                   help="supervisor: restarts of one replica within --restart-window-s before "
                   "it is reported as a crash loop and left down (default %(default)s)")
    u.add_argument("--restart-window-s", type=float, default=60.0)
    u.set_defaults(func=_cmd_up)
    s = sub.add_parser("status", help="replicas and their roles, from their heartbeats")
    s.add_argument("--dir", default=_DIR)
    s.set_defaults(func=_cmd_status)
    d = sub.add_parser("down", help="stop the shards and the NATS server `up` started")
    d.add_argument("--dir", default=_DIR)
    d.set_defaults(func=_cmd_down)
    r = sub.add_parser("session", help="the trading session, sharded by symbol")
    r.add_argument("input", help="NASDAQ ITCH 5.0 file (.gz ok) or MoldUDP64 pcap")
    r.add_argument("--shards", type=int, default=2)
    r.add_argument("--local", action="store_true",
                   help="shards in this process (no NATS): the reference run")
    r.add_argument("--dir", default=_DIR, help="the cluster `up` started (default %(default)s)")
    r.add_argument("--nats", help="NATS URL of shards started elsewhere")
    r.add_argument("--key-file", help="the shards' request key (default: the cluster in --dir's"
                   " cluster.key)")
    r.add_argument("--config", help="TOML file with a [risk] table (default: built in)")
    r.add_argument("--chunk", type=int, default=64)
    r.add_argument("--seed", type=int, default=1)
    add_symbols_argument(r, default_help="up to 8 symbols quoted at $1.00 or more")
    r.set_defaults(func=_cmd_session)
    m = sub.add_parser("publish", help="publish card BBO records to md.<venue>.<symbol>")
    m.add_argument("input", help="NASDAQ ITCH 5.0 file (.gz ok) or MoldUDP64 pcap")
    m.add_argument("--card", default="model", help="model (reference book) or sim")
    m.add_argument("--venue", default="nasdaq")
    m.add_argument("--dir", default=_DIR)
    m.add_argument("--nats", help="NATS URL (default: the cluster in --dir)")
    m.add_argument("--verify", action="store_true",
                   help="read everything back from the stream and compare with the records")
    m.add_argument("--depth", type=_int_arg, default=1,
                   help="levels per side, 1..16: more than 1 publishes top-N records (levels "
                   "2..N after the 52 bytes, header Md-Depth: N; docs/cluster.md) from the "
                   "reference model, or from a card source that gives them (default 1: BBO)")
    add_symbols_argument(m, default_help="every symbol of the feed")
    m.set_defaults(func=_cmd_publish)


def _cmd_up(a) -> int:
    from host.cluster.control import up

    for line in up(a.dir, shards=a.shards, standby=a.standby, nats_url=a.nats, host=a.host,
                   port=a.port, takeover_ms=a.takeover_ms, supervise=not a.no_supervise,
                   max_restarts=a.max_restarts, window_s=a.restart_window_s):
        print(line)
    return 0


def _cmd_status(a) -> int:
    from host.cluster.control import status

    for line in status(a.dir):
        print(line)
    return 0


def _cmd_down(a) -> int:
    from host.cluster.control import down

    for line in down(a.dir):
        print(line)
    return 0


def _int_arg(text: str):
    try:
        return int(text)
    except ValueError:
        return text


def _url(a) -> str:
    from host.cluster.control import cluster_url

    return a.nats or cluster_url(a.dir)


def _cmd_session(a) -> int:
    import asyncio

    from host.cluster.router import ShardError
    from host.cluster.session import run_sharded_session
    from host.feed.capture import detect_format

    detect_format(a.input)
    if a.shards < 1 or a.chunk < 1:
        raise UserError("--shards and --chunk must be positive")
    url = None if a.local else _url(a)
    key = None
    if a.key_file:
        try:
            key = open(a.key_file, "rb").read()  # noqa: SIM115
        except OSError as e:
            raise UserError(f"{a.key_file}: {e.strerror}") from None
    elif not a.local and not a.nats:
        from host.cluster.control import cluster_key

        key = cluster_key(a.dir)
    try:
        rep = asyncio.run(run_sharded_session(
            a.input, shards=a.shards, transport="local" if a.local else "nats", nats_url=url,
            out_dir=a.dir + "/local" if a.local else a.dir, config_path=a.config,
            symbols=a.symbols, chunk=a.chunk, seed=a.seed, key=key))
    except (ValueError, KeyError, ShardError) as e:
        raise UserError(str(e).strip("'\"")) from None
    except OSError as e:
        raise UserError(f"cannot reach the cluster or read the input: {e}") from None
    for line in rep.lines():
        print(line)
    return 0


def _cmd_publish(a) -> int:
    import asyncio
    import inspect

    from host.card.replay import resolve_locates
    from host.cli.feed import check_depth
    from host.cluster.marketdata import (
        MdConsumer,
        as_md,
        ensure_md_stream,
        model_depth_records,
        publish_records,
        subject_token,
        to_md,
    )
    from host.feed.capture import load_feed, symbol_directory
    from host.trading.session import CARD_SOURCES

    if a.card not in CARD_SOURCES:
        raise UserError(f"unknown card {a.card!r}; choose from: {', '.join(sorted(CARD_SOURCES))}")
    depth = check_depth(a.depth)
    source = CARD_SOURCES[a.card]
    if depth > 1 and a.card != "model" and \
            "depth" not in inspect.signature(source).parameters:  # a registered BBO-only card
        raise UserError(f"--depth {depth}: card {a.card!r} gives the BBO only (no top-N "
                        "records); --card model publishes the reference model's top-N")
    url = _url(a)
    try:
        feed = load_feed(a.input)
        locs = resolve_locates(feed, a.symbols)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{a.input}: {e}") from None
    if depth == 1:
        recs = source(feed, locs)
    elif a.card == "model":
        recs = model_depth_records(feed, locs, depth)
    else:
        recs = source(feed, locs, depth=depth)
    names = {v: k for k, v in symbol_directory(feed.itch).items()}

    async def go():
        from host.cluster.client import connect

        nc = await connect(url)
        try:
            js = nc.jetstream()
            stream = await ensure_md_stream(js, a.venue)
            pub = await publish_records(js, a.venue, recs, names)
            cons = None
            if a.verify:
                cons = MdConsumer(js, stream)
                await cons.consume(f"md.{subject_token(a.venue).lower()}.>",
                                   (await js.stream_info(stream)).state.messages)
            return stream, pub, cons
        finally:
            await nc.close()

    try:
        stream, pub, cons = asyncio.run(go())
    except ConnectionError as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"NATS at {url}: {e}") from None
    print(f"{pub['records']:,} records of {len(pub['subjects'])} symbols -> stream {stream} "
          f"(sequences {pub['first_stream_seq']}..{pub['last_stream_seq']})")
    if cons is not None:
        direct = to_md(recs)
        bad = 0
        for loc, subj in pub["subjects"].items():
            got = cons.frame(subj)
            want = direct[direct["locate"] == loc]
            # the stream may hold earlier publications too: ours are the last ones
            tail = got[len(got) - len(want):].copy()
            if tail.dtype != want.dtype:  # an earlier, deeper publication widened the frame
                tail = as_md(tail, want.dtype)
            tail["sym_seq"] = want["sym_seq"] = 0
            if len(got) < len(want) or tail.tobytes() != want.tobytes():
                bad += 1
        r = cons.report
        print(f"verify: {r.received:,} read back, gaps {r.gaps}, repaired {r.repaired}, "
              f"MoldUDP64 seq backwards {r.seq_backwards}; subjects differing {bad}")
        if bad:
            raise UserError(f"{bad} subjects differ from the published records")
    return 0
