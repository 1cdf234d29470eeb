"""A primary paused past the takeover time (SIGSTOP) is fenced: it steps down, never answers.

One shard, a primary and a hot standby on a real NATS server. The primary is stopped; the
standby takes over (epoch entry in the log); requests go on through the new primary. The old
primary is continued: it finds the log past its own position and exits with status 3,
having answered nothing after the pause.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import numpy as np

from host.cluster.client import connect
from host.cluster.local import heartbeats, spawn_replica, wait_ready
from host.cluster.router import NatsTransport, Router
from host.cluster.shard import OP_EPOCH, OP_MARKET, OP_SETUP, log_stream, unframe
from hw import bbo_record


def _records(i: int) -> bytes:
    r = np.zeros(1, bbo_record.DTYPE)
    r["locate"], r["flags"] = 1, 6
    r["bid_px"], r["ask_px"], r["ts_event"] = 100_000 + 100 * i, 100_200 + 100 * i, i
    return r.tobytes()


def test_paused_primary_is_fenced(nats_server, tmp_path, warm_kernels):
    url = nats_server.url
    p = spawn_replica(url, 0, tmp_path / "p", "primary")
    s = spawn_replica(url, 0, tmp_path / "s", "standby", takeover_ms=400)
    try:
        asyncio.run(wait_ready(url, {0: ["primary", "standby"]}, timeout=180))

        async def go():
            nc = await connect(url)
            tr = NatsTransport(nc, timeout_s=0.2)
            r = Router(tr, [[1]])
            await r.call(0, OP_SETUP, json.dumps({
                "shard": 0, "locates": [1], "max_orders": 64,
                "instruments": [[1, 100, 100, 2_000_000]]}).encode())
            for i in range(5):
                await r.call(0, OP_MARKET, _records(i))
            os.kill(p.pid, signal.SIGSTOP)
            t = time.monotonic()
            for i in range(5, 10):  # answered by the standby once it took over
                await r.call(0, OP_MARKET, _records(i))
            took = time.monotonic() - t
            os.kill(p.pid, signal.SIGCONT)
            for i in range(10, 15):  # whoever gets these, only the new primary answers
                await r.call(0, OP_MARKET, _records(i))
            js = nc.jetstream()
            stream, subject = log_stream(0)
            n = (await js.stream_info(stream)).state.last_seq
            ops = [unframe((await js.get_msg(stream, k)).data)[0] for k in range(1, n + 1)]
            await nc.close()
            return took, ops, r.req[0]

        took, ops, sent = asyncio.run(go())
        assert p.wait(15) == 3  # fenced: stepped down by itself
        # an epoch entry when the first primary started, one when the standby took over
        assert ops[0] == OP_EPOCH and ops.count(OP_EPOCH) == 2 and len(ops) == sent + 2
        hb = asyncio.run(heartbeats(url, 0.3))
        assert [h["role"] for h in hb.values()] == ["primary"]
        assert next(iter(hb.values()))["pid"] == s.pid
        assert next(iter(hb.values()))["applied"] == sent
        assert took < 20
        log = (tmp_path / "p" / "replica.log").read_text()
        assert "stepping down" in log
    finally:
        for q in (p, s):
            if q.poll() is None:
                os.kill(q.pid, signal.SIGCONT)
                q.terminate()
                q.wait(10)
