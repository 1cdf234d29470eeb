"""Sharded session (shards in process) gives the single-process session's fills exactly."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from host.cluster.router import partition
from host.cluster.session import fills, prepare, run_sharded_session
from host.cluster.shard import ERROR, OP_MARKET, OP_SETUP, ShardCore, frame, unframe


def test_partition():
    assert partition([9, 3, 5, 1], 2) == [[1, 3], [5, 9]]
    assert partition([1, 2, 3], 3) == [[1], [2], [3]]
    assert sum(partition(range(10), 4), []) == list(range(10))
    with pytest.raises(ValueError):
        partition([1], 2)


def test_core_orders_and_retries(tmp_path):
    """Requests apply in id order; a retried id gets the same reply; others are refused."""
    import json

    c = ShardCore(tmp_path)
    setup = frame(OP_SETUP, 1, json.dumps({"shard": 0, "locates": [1], "max_orders": 64,
                                           "instruments": [[1, 100, 100, 10_000]]}).encode())
    r1 = c.handle(setup)
    assert unframe(r1)[0] == 0
    assert c.handle(setup) == r1 and c.applied == 1  # retry: same reply, not applied twice
    st, rid, msg = unframe(c.handle(frame(OP_MARKET, 5, b"")))
    assert (st, rid) == (ERROR, 5) and b"out of order" in msg
    st, _, msg = unframe(c.handle(frame(77, 2)))
    assert st == ERROR and b"unknown op" in msg and c.applied == 2
    assert unframe(c.handle(b"x"))[0] == ERROR
    c.close()


@pytest.fixture(scope="module")
def single(itch_day, tmp_path_factory):
    from host.trading.session import run_session

    out = tmp_path_factory.mktemp("single")
    rep = run_session(itch_day, out_dir=out, export=False)
    return rep, fills([out / "venue.journal"])


@pytest.mark.parametrize("n", [1, 3])  # 2 shards: test_failover
def test_sharded_equals_single_process(n, itch_day, single, tmp_path):
    rep, ref = single
    r = asyncio.run(run_sharded_session(itch_day, shards=n, out_dir=tmp_path,
                                        prepared=prepare(itch_day)))
    assert len(r.summaries) == n
    assert r.trades == rep.trades > 0
    assert r.denied == rep.denied and r.router_denied == r.denied
    got = fills([s["venue_journal"] for s in r.summaries])
    assert len(got) == len(ref) and np.array_equal(got, ref)
    # positions and P&L per account and instrument
    for a in rep.accounts:
        for p in a["positions"]:
            sh = next(s for s in r.summaries if p.instrument in s["locates"])
            assert sh["accounts"][str(a["account"])]["positions"][str(p.instrument)] == p.qty
        assert sum(s["accounts"][str(a["account"])]["realized"] for s in r.summaries) == \
            a["summary"].realized


def test_route_vectorised_equals_command_by_command():
    from host.cluster.router import Router
    from host.trading.matching.workload import WorkloadSpec, mixed_workload

    pre, ops = mixed_workload(3000, WorkloadSpec(n_resting=500, n_instruments=8))
    cmds = np.concatenate([pre, ops])
    cmds[5]["kind"], cmds[5]["flags"], cmds[5]["instrument"] = 4, 2, 7  # mass cancel, inst 7
    cmds[6]["kind"], cmds[6]["flags"] = 5, 0  # end session, every instrument
    a, b = Router(None, partition(range(1, 9), 3)), Router(None, partition(range(1, 9), 3))
    for i in range(0, len(cmds), 256):
        c = cmds[i:i + 256]
        assert np.array_equal(a._route(c), b._route_each(c))
    assert a.of_order == b.of_order
    assert a._route(cmds[5:7]).tolist() == [2, -1]
