"""Cluster benchmark: shard throughput with 1, 2, 4 shards; NATS latencies on loopback.

``python bench/bench_cluster.py [--quick] [--shards 1,2,4]`` (run by ``make bench``).

Everything runs on this machine: one ``nats-server -js`` (the PyPI wheel) on loopback, the
shard processes (``python -m host.cluster.shard``, primaries only unless said), and this
process as the router / client.

Figures
-------
1. market-data fan-out: publish -> receive latency of one 52-byte record on ``md.lat.<sym>``
   (JetStream-captured subject) at a paced <= 2 000 records/s, p50/p99, for a core subscriber
   and for a JetStream ordered consumer of the stream (both in this process); JetStream
   publish -> PubAck (stored) round trip, p50/p99; windowed
   publish throughput (records/s, every record acknowledged by the stream).
2. shard request round trip: one command per request (router -> primary -> JetStream
   journal append -> risk + matching + journal -> reply), p50/p99; with a hot standby
   following as well.
3. throughput: :func:`host.trading.matching.workload.mixed_workload` (8 instruments, 64
   accounts; 40 % adds, 35 % cancels, 15 % replaces, 7 % IOC, 3 % market) through the router
   in batches of 1 024 commands to 1, 2, 4 shards (instruments split in ranges), commands/s,
   and the CPU seconds each process used (router, shards, nats-server) to show the limit;
   the same batches through one shard in this process (no NATS) for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from host.cluster.local import reset_logs, spawn_replica, wait_ready  # noqa: E402
from host.cluster.marketdata import MD_DTYPE, ensure_md_stream  # noqa: E402
from host.cluster.router import LocalTransport, NatsTransport, Router, partition  # noqa: E402
from host.cluster.server import NatsServer  # noqa: E402
from host.cluster.shard import OP_ORDERS, OP_SETUP, ShardCore  # noqa: E402
from host.trading.matching.workload import WorkloadSpec, mixed_workload  # noqa: E402
from hw import bbo_record  # noqa: E402


def _pct(x) -> str:
    a = np.asarray(x) * 1e6
    return f"p50 {np.percentile(a, 50):.0f} us, p99 {np.percentile(a, 99):.0f} us"


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process so far."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


async def fan_out(url: str, n: int) -> None:
    import nats
    from nats.js.api import ConsumerConfig, DeliverPolicy

    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_md_stream(js, "bench")
    await ensure_md_stream(js, "lat")  # the latency records: a venue of their own
    recv, jrecv = np.zeros(n), np.zeros(n)
    got, jgot = asyncio.Event(), asyncio.Event()
    count = [0, 0]

    def receiver(arr, k, ev):
        async def cb(msg):
            i = int(np.frombuffer(msg.data, MD_DTYPE)[0]["sym_seq"])
            arr[i] = time.perf_counter()
            count[k] += 1
            if count[k] == n:
                ev.set()
        return cb

    # a core subscriber (live fan-out) and a JetStream consumer (ordered push consumer of the
    # stream, new messages only) receive the same records
    sub = await nc.subscribe("md.lat.>", cb=receiver(recv, 0, got))
    jsub = await js.subscribe("md.lat.>", ordered_consumer=True,
                              cb=receiver(jrecv, 1, jgot),
                              config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW))
    rec = np.zeros(1, MD_DTYPE)
    sent = np.zeros(n)
    for i in range(n):  # paced: latency, not queueing
        rec["sym_seq"] = i
        rec["bid_px"] = 1_000_000 + i
        sent[i] = time.perf_counter()
        await nc.publish(f"md.lat.S{i % 8}", rec.tobytes())
        await nc.flush()
        await asyncio.sleep(0.0005)
    await asyncio.wait_for(got.wait(), 30)
    await asyncio.wait_for(jgot.wait(), 30)
    await sub.unsubscribe()
    await jsub.unsubscribe()
    print(f"fan-out publish -> receive, {n:,} records, loopback, core subscriber: "
          f"{_pct(recv - sent)}")
    print(f"fan-out publish -> consume, same records, JetStream ordered consumer: "
          f"{_pct(jrecv - sent)}")
    acks = []
    for i in range(min(n, 2000)):
        rec["sym_seq"] = i
        t = time.perf_counter()
        await js.publish(f"md.bench.A{i % 8}", rec.tobytes())
        acks.append(time.perf_counter() - t)
    print(f"JetStream publish -> PubAck (stored), {len(acks):,} sequential: {_pct(acks)}")
    m = 20 * n
    t = time.perf_counter()
    pend = []
    for i in range(m):
        rec["sym_seq"] = i
        pend.append(await js.publish_async(f"md.bench.T{i % 8}", rec.tobytes()))
        if len(pend) >= 4096:
            await asyncio.gather(*pend)
            pend = []
    await asyncio.gather(*pend)
    dt = time.perf_counter() - t
    print(f"JetStream publish throughput (4 096 in flight, all acknowledged): "
          f"{m / dt:,.0f} records/s ({m:,} records)")
    await nc.close()


def _setup(k, locs, spec, max_orders):
    return json.dumps({"shard": k, "locates": locs, "max_orders": max_orders,
                       "open_accounts": spec.n_accounts,
                       "instruments": [[i, 100, 100, 2_000_000] for i in locs]}).encode()


def _bbo(spec) -> np.ndarray:
    rec = np.zeros(spec.n_instruments, bbo_record.DTYPE)
    rec["locate"] = np.arange(1, spec.n_instruments + 1)
    rec["flags"] = bbo_record.FLAG_BID_VALID | bbo_record.FLAG_ASK_VALID
    rec["bid_px"], rec["ask_px"] = spec.mid - 100, spec.mid + 100
    return rec


async def drive(router: Router, spec, pre, ops, batch: int, max_orders: int,
                probe=lambda: None) -> tuple[float, object, object]:
    """Set up, preload, then time ``ops``: ``(commands/s, probe() before, probe() after)``."""
    await router.broadcast(OP_SETUP, [_setup(k, locs, spec, max_orders)
                                      for k, locs in enumerate(router.shards)])
    await router.market_data(_bbo(spec))
    strat = np.zeros(batch, np.int64)
    for i in range(0, len(pre), 4096):
        c = pre[i:i + 4096]
        await router.process(c, np.zeros(len(c), np.int64))
    p0 = probe()
    t = time.perf_counter()
    for i in range(0, len(ops), batch):
        c = ops[i:i + batch]
        await router.process(c, strat[:len(c)])
    dt = time.perf_counter() - t
    return len(ops) / dt, p0, probe()


async def rtt(router: Router, spec, n: int) -> list:
    """One-command requests: round trip seconds each."""
    await router.broadcast(OP_SETUP, [_setup(k, locs, spec, 1 << 16)
                                      for k, locs in enumerate(router.shards)])
    await router.market_data(_bbo(spec))
    _, ops = mixed_workload(n, WorkloadSpec(n_resting=1000, n_instruments=spec.n_instruments))
    out = []
    z = np.zeros(1, np.int64)
    for i in range(n):
        t = time.perf_counter()
        await router.call(0, OP_ORDERS, struct.pack("<I", 1) + ops[i:i + 1].tobytes()
                          + z.tobytes())
        out.append(time.perf_counter() - t)
    return out


SPAWNED: list = []  # every replica this bench started (stopped on any exit)


def cluster(url, tmp, n, standby=False):
    asyncio.run(reset_logs(url, range(n)))
    procs = []
    for k in range(n):
        procs.append(spawn_replica(url, k, tmp / f"n{n}s{k}p", "primary"))
        if standby:
            procs.append(spawn_replica(url, k, tmp / f"n{n}s{k}s", "standby"))
    want = {k: ["primary"] + (["standby"] if standby else []) for k in range(n)}
    SPAWNED.extend(procs)
    asyncio.run(wait_ready(url, want, timeout=300))
    return procs


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except Exception:
            p.kill()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--shards", default="1,2,4")
    ap.add_argument("--fan-out-only", action="store_true", help="figure 1 only")
    a = ap.parse_args(argv)
    n_ops = 100_000 if a.quick else 400_000
    spec = WorkloadSpec(n_resting=10_000 if a.quick else 40_000)
    pre, ops = mixed_workload(n_ops, spec)
    max_orders = 1 << 18
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}; load average at start "
          f"{os.getloadavg()[0]:.2f} (a shared VM: other jobs run)")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        with NatsServer(tmp / "nats") as srv:
            asyncio.run(fan_out(srv.url, 2000 if a.quick else 10_000))
            if a.fan_out_only:
                return 0
            for standby in (False, True):
                procs = cluster(srv.url, tmp / f"rtt{int(standby)}", 1, standby)
                lat = asyncio.run(_with_nc(srv.url, lambda r: rtt(r, spec, 2000),
                                           [list(range(1, spec.n_instruments + 1))]))
                stop(procs)
                print(f"shard request round trip, 1 command, "
                      f"{'primary + hot standby' if standby else 'primary only'}: "
                      f"{_pct(lat)}")
            cores = {0: ShardCore(tmp / "local")}
            r = Router(LocalTransport(cores), [list(range(1, spec.n_instruments + 1))])
            rate, c0, c1 = asyncio.run(drive(r, spec, pre, ops, 1024, max_orders,
                                             lambda: sum(os.times()[:2])))
            cores[0].close()
            print(f"throughput, 1 shard in this process (no NATS): {rate:,.0f} commands/s; "
                  f"{len(ops) / (c1 - c0):,.0f} commands per CPU second")
            for n in [int(x) for x in a.shards.split(",")]:
                procs = cluster(srv.url, tmp / f"tp{n}", n)
                parts = partition(range(1, spec.n_instruments + 1), n)

                def probe(procs=procs):
                    return (time.perf_counter(), sum(os.times()[:2]),
                            sum(_cpu(p.pid) for p in procs), _cpu(srv.proc.pid))

                rate, c0, c1 = asyncio.run(_with_nc(srv.url, lambda r, probe=probe: drive(
                    r, spec, pre, ops, 1024, max_orders, probe), parts))
                stop(procs)
                wall, me, sh, ns = (b - a for a, b in zip(c0, c1, strict=True))
                print(f"throughput, {n} shard(s) over NATS, batches of 1 024: {rate:,.0f} "
                      f"commands/s; CPU seconds in the {wall:.2f} s run: router {me:.2f}, "
                      f"shards {sh:.2f}, nats-server {ns:.2f} (= {(me + sh + ns) / wall:.2f} "
                      f"cores busy); {len(ops) / (me + sh + ns):,.0f} commands per CPU "
                      f"second; load average {os.getloadavg()[0]:.2f}")
    return 0


async def _with_nc(url, fn, parts):
    import nats

    nc = await nats.connect(url)
    try:
        return await fn(Router(NatsTransport(nc, timeout_s=30), parts))
    finally:
        await nc.close()


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    finally:
        stop(SPAWNED)
