"""Risk layer benchmark: per-order check cost and throughput through risk + matching.

``python bench/bench_risk.py [--quick]``

Workload: :func:`host.trading.matching.workload.mixed_workload` (64 accounts, 8 instruments, $100
mid; 40 % adds, 35 % cancels, 15 % replaces, 7 % IOC, 3 % market), with every check on (collar
5 %, position limits, loss limits, duplicate window 1 ms, rate throttle 1 000 000 per
second) and the card BBO set for every instrument.

Figures
-------
1. check cost, batch API: :func:`host.trading.risk.checks.check_batch` alone (compiled, no Python
   per order), ns per command;
2. risk + matching, batch API: :meth:`host.trading.risk.RiskEngine.process` in batches of 4 096
   (checks, engine, post-trade kernel), commands per second; the matching engine alone on the
   same commands for comparison;
3. per-command API: :meth:`host.trading.risk.RiskEngine.submit` (encode, check, engine, decode
   events), and one :func:`~host.trading.risk.checks.check_command` call from Python, us per
   command.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from host.trading.matching import MatchingEngine  # noqa: E402
from host.trading.matching.workload import (  # noqa: E402
    WorkloadSpec,
    mixed_workload,
    workload_config,
)
from host.trading.risk import AccountConfig, DenyReason, RiskConfig, RiskEngine  # noqa: E402
from host.trading.risk import checks as K  # noqa: E402
from hw import bbo_record  # noqa: E402


def _risk(spec: WorkloadSpec, venue) -> RiskEngine:
    cfg = RiskConfig(accounts=tuple(
        AccountConfig(a, max_position=10**9, max_orders_per_window=1_000_000)
        for a in range(1, spec.n_accounts + 1)),
        max_open_orders=1 << 18).with_instruments(range(1, spec.n_instruments + 1))
    r = RiskEngine(cfg, venue)
    rec = np.zeros(spec.n_instruments, bbo_record.DTYPE)
    rec["locate"] = np.arange(1, spec.n_instruments + 1)
    rec["flags"] = bbo_record.FLAG_BID_VALID | bbo_record.FLAG_ASK_VALID
    rec["bid_px"] = spec.mid - 100
    rec["ask_px"] = spec.mid + 100
    r.on_market_data(rec)
    return r


def _state(r: RiskEngine):
    return [a.copy() for a in (r.G, r.A, r.N, r.P, r.SK, r.RING, r.DUP, r.H)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workload (a few seconds)")
    a = ap.parse_args(argv)
    n_ops = 200_000 if a.quick else 2_000_000
    spec = WorkloadSpec(n_resting=20_000 if a.quick else 100_000)
    pre, ops = mixed_workload(n_ops, spec)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}; {len(ops):,} commands after "
          f"{len(pre):,} resting orders")

    # 1. check cost alone (state copied so every repetition starts from the same book)
    venue = MatchingEngine(workload_config(spec, 1 << 21))
    r = _risk(spec, venue)
    r.process(pre)
    base = _state(r)
    # without the engine nothing releases open orders: measure on the first 200k commands so
    # the open-order table does not fill up (the same slice in --quick and full runs)
    C = np.ascontiguousarray(ops[:200_000]).view(np.int64).reshape(-1, 8)
    S = np.zeros(0, np.int64)
    reasons = np.zeros(len(C), np.int64)
    out = np.empty_like(C)
    hold = np.empty(len(C), np.int64)
    PR, PS = r._operator  # the operator's principal (every account, the configured strategies)
    best = float("inf")
    for _ in range(3):
        G, A, N, P, SK, RING, DUP, H = (x.copy() for x in base)
        t = time.perf_counter()
        n, _ = K.check_batch(C, S, G, A, N, P, SK, RING, DUP, H, r.AMAP, r.NMAP, PR, PS,
                             reasons, out, hold)
        best = min(best, time.perf_counter() - t)
    den = np.bincount(reasons)
    print(f"check cost, batch API (compiled): {best / len(C) * 1e9:.1f} ns/command "
          f"over {len(C):,} commands ({n:,} passed, denied {len(C) - n:,}: "
          + ", ".join(f"{DenyReason(i).name}={c}" for i, c in enumerate(den) if i and c)
          + ")")

    # 2. throughput risk + matching, batch API; matching alone for comparison
    rates = []
    for with_risk in (True, False):
        venue = MatchingEngine(workload_config(spec, 1 << 21))
        r = _risk(spec, venue)
        if with_risk:
            r.process(pre)
        else:
            venue.process(pre)
        t = time.perf_counter()
        for lo in range(0, len(ops), 4096):
            chunk = ops[lo:lo + 4096]
            if with_risk:
                r.process(chunk, copy=False)
            else:
                venue.process(chunk, copy=False)
        dt = time.perf_counter() - t
        rates.append(len(ops) / dt)
        if with_risk:
            print(f"open orders after risk + matching: {r.open_orders:,} (capacity 262 144)")
    print(f"risk + matching, batch API (4096/batch): {rates[0] / 1e6:.2f} M commands/s "
          f"(matching alone: {rates[1] / 1e6:.2f} M/s; risk share "
          f"{(1 / rates[0] - 1 / rates[1]) * 1e9:.0f} ns/command)")

    # 3. per-command API
    venue = MatchingEngine(workload_config(spec, 1 << 21))
    r = _risk(spec, venue)
    r.process(pre)
    m = 20_000 if a.quick else 100_000
    objs = [_to_obj(x) for x in ops[:m]]
    t = time.perf_counter()
    for c in objs:
        r.submit(c)
    dt = time.perf_counter() - t
    print(f"per-command API (RiskEngine.submit, object in, events out): "
          f"{dt / m * 1e6:.2f} us/command ({m / dt / 1e3:.0f} k/s)")
    row = C[:1].copy()
    out1 = np.empty((1, 8), np.int64)
    G, A, N, P, SK, RING, DUP, H = (x.copy() for x in base)
    k = 100_000
    t = time.perf_counter()
    for _ in range(k):
        K.check_command(row, 0, -1, G, A, N, P, SK, RING, DUP, H, r.AMAP, r.NMAP, PR, PS, out1)
    dt = time.perf_counter() - t
    print(f"one check_command call from Python (dispatch + check): {dt / k * 1e9:.0f} ns")
    return 0


def _to_obj(c):
    from host.trading.matching import CancelOrder, ReplaceOrder, Side, SubmitOrder

    k = int(c["kind"])
    if k == 1:
        return SubmitOrder(int(c["order_id"]), int(c["instrument"]), int(c["account"]),
                           Side(int(c["side"])), int(c["qty"]), int(c["price"]),
                           order_type=int(c["order_type"]), tif=int(c["tif"]), ts=int(c["ts"]))
    if k == 2:
        return CancelOrder(int(c["order_id"]), ts=int(c["ts"]))
    return ReplaceOrder(int(c["order_id"]), int(c["qty"]), int(c["price"]), ts=int(c["ts"]))


if __name__ == "__main__":
    sys.exit(main())
