"""Account-wide limits across shards: the same denials as one risk engine for every symbol.

Four instruments, two shards (locates 1, 2 | 3, 4). The session's accounts (built-in risk
configuration) spread their orders over both shards: BURST sends more orders than its
message rate allows, alternating shards inside one batch; LOSER loses money on shard 0 and
then buys on shard 1 (daily loss limit); MAKER fills its position limit on one instrument of
each shard. The deny reason of every command must equal the single-process engine's, with
the shards in process and in separate processes over NATS (with shard 0's primary SIGKILLed
between two batches: the standby goes on with the same account state). Without the router's
account synchronisation the same flow gets through more orders (the test would see it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import numpy as np
import pytest

from host.cluster.local import spawn_replica, wait_ready
from host.cluster.router import DUP_DEPTH, LocalTransport, NatsTransport, Router
from host.cluster.shard import OP_FINISH, OP_SETUP, ShardCore
from host.trading.matching import COMMAND_DTYPE, EngineConfig, InstrumentConfig
from host.trading.risk import DenyReason
from host.trading.session import BURST, LOSER, LP, MAKER, default_risk_config
from hw import bbo_record

LOCS = [1, 2, 3, 4]
PARTS = [[1, 2], [3, 4]]
T0 = 34_200_000_000_000  # 09:30
MS = 1_000_000


def _md(ts, quotes):
    r = np.zeros(len(quotes), bbo_record.DTYPE)
    for k, (loc, bid, ask) in enumerate(quotes):
        r[k]["ts_event"], r[k]["locate"], r[k]["flags"] = ts, loc, 6
        r[k]["bid_px"], r[k]["ask_px"], r[k]["bid_sz"], r[k]["ask_sz"] = bid, ask, 100, 100
    return r


class _Orders:
    def __init__(self):
        self.rows, self.oid = [], 0

    def sub(self, ts, inst, acct, side, qty, px):
        self.oid += 1
        r = np.zeros(1, COMMAND_DTYPE)[0]
        r["ts"], r["order_id"], r["instrument"], r["account"] = ts, self.oid, inst, acct
        r["kind"], r["side"], r["qty"], r["price"] = 1, side, qty, px
        r["order_type"], r["tif"] = 1, 2
        self.rows.append(r)

    def batch(self):
        out = np.array(self.rows, COMMAND_DTYPE)
        self.rows = []
        return out


def scenario():
    """``[("md", records) | ("orders", commands)]`` (see the module docstring)."""
    o, steps = _Orders(), []
    quotes = [(loc, 1_000_000, 1_001_000) for loc in LOCS]
    steps.append(("md", _md(T0, quotes)))
    o.sub(T0 + 1, 1, LP, 2, 1_000, 1_001_000)           # LP offers on instrument 1
    o.sub(T0 + 2, 1, LOSER, 1, 1_000, 1_001_000)        # LOSER lifts it (shard 0)
    for j in range(12):                                  # MAKER: 11 x 9 000 fit per instrument
        o.sub(T0 + 10 * MS + 2 * j * MS, 1, MAKER, 1, 9_000, 990_000)
        o.sub(T0 + 11 * MS + 2 * j * MS, 3, MAKER, 1, 9_000, 990_000)
    for j in range(30):                                  # BURST: 20 per second, two shards
        o.sub(T0 + 100 * MS + j * MS, 2 if j % 2 else 4, BURST, 1, 100, 990_000 - 100 * j)
    steps.append(("orders", o.batch()))
    # instrument 1 falls: LOSER is down ~$7 100 (> $5 000 daily loss, < $10 000 breaker)
    steps.append(("md", _md(T0 + 200 * MS, [(1, 930_000, 931_000)])))
    o.sub(T0 + 201 * MS, 3, LOSER, 1, 100, 1_000_000)   # shard 1: denied (loss on shard 0)
    o.sub(T0 + 202 * MS, 1, LOSER, 2, 100, 931_000)     # reducing: passes
    for j in range(5):                                   # still inside BURST's second
        o.sub(T0 + 300 * MS + j * MS, 4 if j % 2 else 2, BURST, 1, 100, 980_000 - 100 * j)
    steps.append(("orders", o.batch()))
    o.sub(T0 + 400 * MS, 4, LOSER, 1, 100, 1_000_000)
    o.sub(T0 + 401 * MS, 2, LOSER, 1, 100, 1_000_000)
    for j in range(25):                                  # a new second: 20 pass again
        o.sub(T0 + 1_200 * MS + j * MS, 2 if j % 3 else 3, BURST, 1, 100, 970_000 - 100 * j)
    steps.append(("orders", o.batch()))
    return steps


def _engine_config():
    return EngineConfig(instruments=tuple(InstrumentConfig(loc, tick=100, min_price=100_000,
                                                           max_price=5_000_000)
                                          for loc in LOCS), max_orders=1 << 12)


def _rcfg():
    return default_risk_config().with_instruments(LOCS, dict.fromkeys(LOCS, 100))


def single_process(tmp_path) -> list[np.ndarray]:
    """One risk engine and venue for the four instruments: reasons per orders step."""
    from host.trading.journal import JournaledEngine
    from host.trading.risk import RiskEngine

    venue, _ = JournaledEngine.open(tmp_path / "venue.journal", config=_engine_config())
    risk = RiskEngine(_rcfg(), venue)
    gw = risk.gateway((LP, MAKER, 3, BURST, LOSER))
    out = []
    for kind, x in scenario():
        if kind == "md":
            risk.on_market_data(x)
        else:
            out.append(np.asarray(gw.process(x, np.full(len(x), -1, np.int64)).reasons))
    venue.close()
    return out


async def sharded(router: Router, between=None) -> list[np.ndarray]:
    await router.broadcast(OP_SETUP, [json.dumps({
        "shard": k, "locates": locs, "max_orders": 1 << 12,
        "instruments": [[loc, 100, 100_000, 5_000_000] for loc in locs]}).encode()
        for k, locs in enumerate(PARTS)])
    out, n = [], 0
    for kind, x in scenario():
        if kind == "md":
            await router.market_data(x)
        else:
            if between is not None:
                between(n)
            n += 1
            out.append(await router.process(x, np.full(len(x), -1, np.int64)))
    out.append(await router.broadcast(OP_FINISH, [b""] * len(PARTS)))
    return out


def _names(reasons) -> dict:
    v, c = np.unique(np.concatenate(reasons), return_counts=True)
    return {DenyReason(int(a)).name: int(b) for a, b in zip(v, c, strict=True) if a}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return single_process(tmp_path_factory.mktemp("single"))


def test_dup_depth_matches_the_risk_kernel():
    from host.trading.risk import checks as K

    assert DUP_DEPTH == K.DUP_DEPTH


def test_scenario_hits_the_limits(reference):
    assert _names(reference) == {"POSITION_LIMIT": 2, "RATE_LIMIT": 20,
                                 "DAILY_LOSS_LIMIT": 3}


def test_sharded_in_process_equals_single(reference, tmp_path):
    cores = {k: ShardCore(tmp_path / f"s{k}") for k in range(2)}
    router = Router(LocalTransport(cores), PARTS, Router.limits(_rcfg()))
    got = asyncio.run(sharded(router))
    for a, b in zip(reference, got[:-1], strict=True):
        assert a.tolist() == b.tolist()
    assert router.split_batches >= 2  # BURST's batches were cut where it switched shards
    # per-shard account state (the earlier behaviour) lets more orders through
    cores = {k: ShardCore(tmp_path / f"o{k}") for k in range(2)}
    old = asyncio.run(sharded(Router(LocalTransport(cores), PARTS)))
    assert _names(old[:-1]) != _names(reference)
    assert _names(old[:-1]).get("RATE_LIMIT", 0) < 20
    assert "DAILY_LOSS_LIMIT" not in _names(old[:-1]) or \
        _names(old[:-1])["DAILY_LOSS_LIMIT"] < 3


def test_sharded_over_nats_with_failover_equals_single(reference, nats_server, tmp_path,
                                                       warm_kernels, capsys):
    from host.cluster.client import connect
    from host.cluster.local import reset_logs

    asyncio.run(reset_logs(nats_server.url, range(2)))
    procs = {"p0": spawn_replica(nats_server.url, 0, tmp_path / "s0p", "primary"),
             "s0": spawn_replica(nats_server.url, 0, tmp_path / "s0s", "standby"),
             "p1": spawn_replica(nats_server.url, 1, tmp_path / "s1p", "primary")}
    try:
        asyncio.run(wait_ready(nats_server.url, {0: ["primary", "standby"], 1: ["primary"]},
                               timeout=180))

        def between(n):
            if n == 2:  # before the last batch: shard 0 loses its primary
                os.kill(procs["p0"].pid, signal.SIGKILL)
                procs["p0"].wait(5)

        async def go():
            nc = await connect(nats_server.url)
            try:
                r = Router(NatsTransport(nc, timeout_s=0.25), PARTS, Router.limits(_rcfg()))
                t = time.perf_counter()
                res = await sharded(r, between)
                return r, res, time.perf_counter() - t
            finally:
                await nc.close()

        router, got, _ = asyncio.run(go())
        for a, b in zip(reference, got[:-1], strict=True):
            assert a.tolist() == b.tolist()
        assert any(o[0] == 0 for o in router.t.outages)  # the failover was ridden through
        fin = [json.loads(x) for x in got[-1]]
        assert fin[0]["venue_journal"].startswith(str(tmp_path / "s0s"))
        # and the journals equal the in-process shards'
        cores = {k: ShardCore(tmp_path / f"l{k}") for k in range(2)}
        loc = asyncio.run(sharded(Router(LocalTransport(cores), PARTS, Router.limits(_rcfg()))))
        for a, b in zip(fin, [json.loads(x) for x in loc[-1]], strict=True):
            assert (a["venue_digest"], a["risk_digest"]) == (b["venue_digest"],
                                                             b["risk_digest"])
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            try:
                p.wait(10)
            except Exception:
                p.kill()


def test_no_path_around_the_router(reference, nats_server, tmp_path, warm_kernels):
    """With a key, a request not signed by the router is refused before the log, and an
    entry published to the log subject directly is skipped by every replica (it fences the
    primary, a failover: denial of service, not a way around the limits)."""
    import struct

    from host.cluster.client import connect
    from host.cluster.local import heartbeats, reset_logs
    from host.cluster.shard import OP_ORDERS, ORDERS_SYNC, frame, log_stream, unframe

    asyncio.run(reset_logs(nats_server.url, range(1)))
    key = tmp_path / "k"
    key.write_bytes(os.urandom(32))
    kx = ("--key-file", str(key))
    procs = {"p0": spawn_replica(nats_server.url, 0, tmp_path / "p", "primary", extra=kx),
             "s0": spawn_replica(nats_server.url, 0, tmp_path / "s", "standby", extra=kx)}
    one = [LOCS]
    try:
        asyncio.run(wait_ready(nats_server.url, {0: ["primary", "standby"]}, timeout=180))

        async def go():
            nc = await connect(nats_server.url)
            try:
                r = Router(NatsTransport(nc, timeout_s=0.25), one, Router.limits(_rcfg()),
                           key=key.read_bytes())
                steps = scenario()
                await r.broadcast(OP_SETUP, [json.dumps({
                    "shard": 0, "locates": LOCS, "max_orders": 1 << 12,
                    "instruments": [[loc, 100, 100_000, 5_000_000] for loc in LOCS]}).encode()])
                out = []
                for n, (kind, x) in enumerate(steps):
                    if kind == "md":
                        await r.market_data(x)
                        continue
                    if n == 3:  # forge: lift LOSER's loss limit, empty BURST's window
                        sync = json.dumps({"pnl": {str(LOSER): 10**15},
                                           "ring": {str(BURST): []}}).encode()
                        body = (struct.pack("<I", len(x)) + x.tobytes()
                                + np.full(len(x), -1, np.int64).tobytes()
                                + struct.pack("<II", ORDERS_SYNC, len(sync)) + sync)
                        req = frame(OP_ORDERS, r.req[0] + 1, body)
                        m = await nc.request("shard.0.cmd", req, timeout=5)
                        st, _, msg = unframe(m.data)
                        assert st == 1 and b"not signed" in msg
                        m = await nc.request("shard.0.cmd", req + b"x" * 16, timeout=5)
                        assert unframe(m.data)[0] == 1  # a wrong MAC too
                        js = nc.jetstream()
                        await js.publish(log_stream(0)[1], req)  # around the primary
                    out.append(await r.process(x, np.full(len(x), -1, np.int64)))
                return r, out
            finally:
                await nc.close()

        router, got = asyncio.run(go())
        for a, b in zip(reference, got, strict=True):
            assert a.tolist() == b.tolist()
        assert procs["p0"].wait(20) == 3  # fenced by the forged log entry
        hb = next(h for h in asyncio.run(heartbeats(nats_server.url, 0.3)).values()
                  if h["shard"] == 0)
        assert hb["pid"] == procs["s0"].pid and hb["role"] == "primary"
        assert hb["applied"] == router.req[0]  # the forged entry was not applied
        assert "not signed by the router; skipped" in (tmp_path / "s" / "replica.log").read_text()
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            try:
                p.wait(10)
            except Exception:
                p.kill()
