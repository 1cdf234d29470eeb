"""The trading session of :mod:`host.trading.session`, sharded by symbol.

Same card records, same order flow (:class:`host.trading.session.OrderFlow`, which depends on
the card records only), same kill-switch plan, same risk configuration per instrument; the
venue and the risk engine are split into shards (:func:`host.cluster.router.partition`), each
with its own venue and risk journals. With ``transport="local"`` the shards are objects in
this process; with ``"nats"`` they are separate processes (:mod:`host.cluster.shard`) reached
through a NATS server.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host.cluster.router import LocalTransport, NatsTransport, Router, partition
from host.cluster.shard import OP_FINISH, OP_SETUP, ShardCore

__all__ = ["ShardedReport", "prepare", "run_sharded_session", "fills"]


@dataclass
class ShardedReport:
    """What :func:`run_sharded_session` did."""

    shards: list
    locates: list
    records: int
    submitted: int = 0
    denied: dict = field(default_factory=dict)
    trades: int = 0
    requests: int = 0
    summaries: list = field(default_factory=list)
    outages: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"{len(self.shards)} shards over {len(self.locates)} instruments; "
               f"{self.records:,} card records; {self.requests:,} shard requests",
               f"orders submitted {self.submitted:,}; denied {sum(self.denied.values()):,}; "
               f"trades {self.trades:,}",
               "denied by reason: " + (", ".join(f"{k}={v}" for k, v in sorted(
                   self.denied.items(), key=lambda kv: (-kv[1], kv[0]))) or "none")]
        for s in self.summaries:
            out.append(f"shard {s['shard']}: locates {s['locates']}; forwarded "
                       f"{s['forwarded']:,}; trades {s['trades']:,}; venue journal "
                       f"{s['venue_digest']}; risk journal {s['risk_digest']}")
        for k, rid, sec, _ in self.outages:
            out.append(f"retried: shard {k}, request {rid} answered {sec:.3f} s after its "
                       "first attempt went unanswered (a failover, or an answer slower than "
                       "the request timeout)")
        out.append("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in self.seconds.items()))
        return out


def prepare(input_path, *, symbols=None, max_symbols: int = 8, card: str = "model"):
    """``(locates, records, EngineConfig)`` exactly as :func:`run_session` computes them."""
    from host.feed.capture import load_feed
    from host.trading.session import CARD_SOURCES, select_locates, venue_config

    feed = load_feed(input_path)
    # the single-process session's own choice of instruments (same rule, same result)
    locates = select_locates(feed, symbols, max_symbols)
    if not locates:
        raise ValueError("no instrument to trade (no symbol quoted at $1.00 or more)")
    records = CARD_SOURCES[card](feed, locates)
    ecfg, ticks = venue_config(records, locates)
    return locates, records, ecfg, ticks


def fills(venue_journals) -> np.ndarray:
    """Every fill of the given venue journals as sorted rows of the fields that do not
    depend on how the venue was split (not ``seq``, ``cmd_seq`` nor ``trade_id``)."""
    from host.trading.journal import read_journal
    from host.trading.matching import EventKind

    rows = []
    for p in venue_journals:
        ev = read_journal(p).events
        f = ev[ev["kind"] == EventKind.FILLED]
        rows.append(np.stack([f[c].astype(np.int64) for c in (
            "ts", "order_id", "account", "instrument", "side", "last_px", "last_qty",
            "contra_id", "contra_account", "leaves_qty", "cum_qty", "flags")], 1))
    a = np.concatenate(rows) if rows else np.zeros((0, 12), np.int64)
    return a[np.lexsort(a.T[::-1])]


async def run_sharded_session(
    input_path, *, shards: int = 2, transport: str = "local", nats_url: str | None = None,
    out_dir="out/cluster", config_path=None, symbols=None, max_symbols: int = 8,
    chunk: int = 64, seed: int = 1, kill_switch: bool = True, on_chunk=None,
    prepared=None, timeout_s: float = 0.25, deadline_s: float = 30.0,
    exact_accounts: bool = True, key: bytes | None = None,
) -> ShardedReport:
    """Run the session through ``shards`` shards.

    Parameters
    ----------
    transport : {"local", "nats"}
        ``nats`` needs ``nats_url`` and a primary (and optionally a standby) per shard
        serving ``shard.<k>.cmd`` (``python -m host cluster up``).
    out_dir : path
        With ``local``: the shards' journals go to ``out_dir/shard<k>/``. With ``nats`` each
        replica writes where it was started.
    on_chunk : callable, optional
        ``f(chunk_index)`` before each chunk (tests kill a primary there).
    prepared : tuple, optional
        :func:`prepare`'s result (skips loading the input again).
    exact_accounts : bool
        Account-wide limits exact across shards (the router merges the accounts' P&L, rate
        and duplicate windows; docs/cluster.md). False: each shard keeps its own (the
        earlier behaviour, for comparison).
    key : bytes, optional
        The shards' request key (``DIR/cluster.key`` of ``cluster up``).
    """
    from host.trading.risk import DenyReason, KillScope
    from host.trading.session import MAKER, OrderFlow, default_risk_config

    t0 = time.perf_counter()
    locates, records, ecfg, ticks = prepared or prepare(input_path, symbols=symbols,
                                                        max_symbols=max_symbols)
    parts = partition(locates, shards)
    nc = None
    if transport == "local":
        cores = {k: ShardCore(Path(out_dir) / f"shard{k}") for k in range(shards)}
        tr = LocalTransport(cores)
    elif transport == "nats":
        from host.cluster.client import connect

        nc = await connect(nats_url, keep_trying=True)
        tr = NatsTransport(nc, timeout_s=timeout_s, deadline_s=deadline_s)
    else:
        raise ValueError(f"unknown transport {transport!r}")
    rcfg = default_risk_config().with_instruments(locates, ticks)
    if config_path:
        from host.trading.risk import load_config

        rcfg = load_config(config_path).with_instruments(locates, ticks)
    router = Router(tr, parts, Router.limits(rcfg) if exact_accounts else None, key=key)
    inst = {i.instrument_id: i for i in ecfg.instruments}
    await router.broadcast(OP_SETUP, [json.dumps({
        "shard": k, "locates": locs, "max_orders": ecfg.max_orders,
        "config": str(config_path) if config_path else None,
        "instruments": [[loc, inst[loc].tick, inst[loc].min_price, inst[loc].max_price]
                        for loc in locs]}).encode() for k, locs in enumerate(parts)])
    flow = OrderFlow(locates, ticks, records, rcfg, seed=seed)
    rep = ShardedReport(shards=parts, locates=list(locates), records=len(records))
    n = len(records)
    n_chunks = max(1, -(-n // chunk))
    kill_plan = {}
    if kill_switch and n_chunks >= 10:  # the single-process session's plan
        kill_plan = {int(n_chunks * 0.55): (True, KillScope.STRATEGY, MAKER),
                     int(n_chunks * 0.75): (False, KillScope.STRATEGY, MAKER),
                     int(n_chunks * 0.35): (True, KillScope.INSTRUMENT, locates[0]),
                     int(n_chunks * 0.40): (False, KillScope.INSTRUMENT, locates[0])}
    denied = np.zeros(0, np.int64)
    t1 = time.perf_counter()
    try:
        for c in range(n_chunks):
            if on_chunk is not None:
                on_chunk(c)
            lo, hi = c * chunk, min(n, (c + 1) * chunk)
            recs = records[lo:hi]
            await router.market_data(recs)
            if c in kill_plan:
                engage, scope, value = kill_plan[c]
                await router.kill_switch(engage, scope, value, int(recs["ts_event"][-1]))
            cmds, strat = flow.on_records(recs, lo)
            if len(cmds):
                reasons = await router.process(cmds, strat)
                rep.submitted += int(np.count_nonzero(cmds["kind"] != 2))
                denied = np.concatenate([denied, reasons[reasons != 0]])
        t2 = time.perf_counter()
        res = await router.broadcast(OP_FINISH, [b""] * shards)
    finally:
        if nc is not None:
            await nc.close()
    rep.summaries = [json.loads(r) for r in res]
    for s in rep.summaries:
        for k, v in s["denied"].items():
            rep.denied[k] = rep.denied.get(k, 0) + v
        rep.trades += s["trades"]
    # every denial the router saw is one a shard counted (a check on the merge)
    vals, cnt = np.unique(denied, return_counts=True)
    rep.router_denied = {DenyReason(int(v)).name: int(c) for v, c in zip(vals, cnt, strict=True)}
    rep.requests = router.requests
    rep.split_batches = router.split_batches
    rep.outages = list(getattr(tr, "outages", []))
    rep.seconds = {"load": t1 - t0, "trading": t2 - t1, "finish": time.perf_counter() - t2}
    return rep
