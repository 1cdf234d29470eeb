"""Shards in separate processes over a real NATS server; SIGKILL a primary mid-session.

The reference is the same sharded session with the shards in this process (which also loads
every compiled kernel before the replicas start). Shard 0 runs a primary and a hot standby,
shard 1 a primary only. The primary of shard 0 is killed with SIGKILL while requests are in
flight; the session goes on through the standby. Afterwards every shard's venue and risk
journals (the standby's for shard 0) must hash exactly like the uninterrupted run's: no
acknowledged order lost, none applied twice, so no duplicate fill.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import numpy as np
import pytest

from host.cluster.local import heartbeats, spawn_replica, wait_ready
from host.cluster.session import fills, run_sharded_session
from host.trading.journal import read_journal


@pytest.fixture
def replicas(nats_server, tmp_path, warm_kernels, reference):
    procs = {
        "p0": spawn_replica(nats_server.url, 0, tmp_path / "s0p", "primary"),
        "s0": spawn_replica(nats_server.url, 0, tmp_path / "s0s", "standby", takeover_ms=500),
        "p1": spawn_replica(nats_server.url, 1, tmp_path / "s1p", "primary"),
    }
    try:
        asyncio.run(wait_ready(nats_server.url, {0: ["primary", "standby"], 1: ["primary"]},
                               timeout=180))
        yield procs, tmp_path
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            try:
                p.wait(10)
            except Exception:
                p.kill()


def test_sigkill_primary_mid_session(nats_server, itch_day, reference, single, replicas,
                                    capsys):
    prep, ref = reference
    procs, tmp = replicas
    n_chunks = -(-len(prep[1]) // 64)
    killed = {}

    def kill():
        killed["t"] = time.monotonic()
        os.kill(procs["p0"].pid, signal.SIGKILL)

    def on_chunk(c):
        if c == n_chunks // 2:  # a few ms later, while the next requests are in flight
            threading.Timer(0.005, kill).start()

    r = asyncio.run(run_sharded_session(itch_day, shards=2, transport="nats",
                                        nats_url=nats_server.url, prepared=prep,
                                        on_chunk=on_chunk, timeout_s=0.2))
    assert procs["p0"].wait(5) == -signal.SIGKILL
    # the journals of the run that lost its primary are those of the run that did not
    for a, b in zip(ref.summaries, r.summaries, strict=True):
        assert (a["venue_digest"], a["risk_digest"]) == (b["venue_digest"], b["risk_digest"])
        assert a["trades"] == b["trades"] and a["denied"] == b["denied"]
    assert r.summaries[0]["venue_journal"].startswith(str(tmp / "s0s"))  # served by the standby
    # what the dead primary had journaled is a prefix of what the standby journaled
    dead = read_journal(tmp / "s0p" / "venue.journal")
    live = read_journal(tmp / "s0s" / "venue.journal")
    assert 0 < len(dead.commands) < len(live.commands)
    assert dead.commands.tobytes() == live.commands[:len(dead.commands)].tobytes()
    f = fills([s["venue_journal"] for s in r.summaries])
    assert np.array_equal(f, fills([s["venue_journal"] for s in ref.summaries]))
    assert len(np.unique(f, axis=0)) == len(f)  # no fill twice
    # and they are the single-process session's fills, denials and trades
    assert np.array_equal(f, single[1]) and len(f) > 0
    assert r.denied == single[0].denied and r.trades == single[0].trades
    # the client rode through the outage of shard 0 (other retries: answers slower than the
    # 0.2 s request timeout on this loaded machine, e.g. the set-up's fsyncs)
    after = [o for o in r.outages if o[0] == 0 and o[3] > killed["t"]]
    assert after, r.outages
    takeover = after[0][3] - killed["t"]
    hb = asyncio.run(heartbeats(nats_server.url, 0.3))
    new = next(h for h in hb.values() if h["shard"] == 0)
    assert new["role"] == "primary" and new["pid"] == procs["s0"].pid
    with capsys.disabled():
        print(f"\nclient retries (shard, request, s): {[o[:3] for o in r.outages]}")
        print(f"failover: SIGKILL -> first answer of the new primary {takeover:.3f} s; "
              f"standby's own count (last heartbeat -> serving) {new['takeover_s']:.3f} s")
    assert takeover < 20.0
