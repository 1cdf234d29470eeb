"""Benchmark of the host matching engine and audit journal (issue 7).

Run: ``.venv/bin/python bench/bench_matching.py [--quick]``

Prints, in one run on this machine:

* machine (CPU model, cores) and versions;
* sustained mixed-workload throughput (adds, cancels, replaces, IOC, market orders against a
  book of >= 100k resting orders) through the batch API and the per-command object API;
* open-loop latency p50/p99/p99.9 at fixed offered rates, measured from each command's
  *intended* send time (a late start counts against the command: no coordinated omission);
* journal throughput with group commit under each durability policy, end-to-end journaled
  engine throughput, and recovery time of a journal of >= 1M events;
* the same workload on a third-party engine from PyPI (liquibook: C++ LiquiBook via SWIG).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from host.trading.journal import (  # noqa: E402
    DurabilityPolicy,
    JournalConfig,
    JournaledEngine,
    JournalWriter,
    recover,
)
from host.trading.matching import (  # noqa: E402
    CancelOrder,
    MatchingEngine,
    ReplaceOrder,
    SubmitOrder,
    core,
)
from host.trading.matching.workload import WorkloadSpec, mixed_workload, workload_config  # noqa: E402

CHUNK = 1 << 14


# ------------------------------------------------------------------------------ machine


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba

    return (f"{model}; {os.cpu_count()} logical cores; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, numpy {np.__version__},"
            f" numba {numba.__version__}")


# ------------------------------------------------------------------------- cycle counter


@intrinsic
def _rdtsc(typingctx):
    sig = types.int64()

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.readcyclecounter")
        return builder.call(fn, [])

    return sig, codegen


@njit(_nrt=False)
def _tsc():
    return _rdtsc()


def tsc_per_ns() -> float:
    """Calibrate the cycle counter against perf_counter_ns."""
    _tsc()
    best = []
    for _ in range(3):
        t0, c0 = time.perf_counter_ns(), _tsc()
        time.sleep(0.05)
        t1, c1 = time.perf_counter_ns(), _tsc()
        best.append((c1 - c0) / (t1 - t0))
    return float(np.median(best))


@njit(_nrt=False)
def _open_loop(C, E, S, P, H, L, BM, I, IMAP, TQ, period, lat, svc):  # noqa: E741
    """Send command i at t0 + i*period (cycles); lat[i] = completion - intended send time.

    ``svc[i]`` = completion - actual start (service time alone, for reference).
    """
    t0 = _rdtsc() + 100_000
    late = 0
    for i in range(C.shape[0]):
        t_i = t0 + np.int64(i * period)
        now = _rdtsc()
        if now > t_i:
            late += 1
        while now < t_i:
            now = _rdtsc()
        nxt, n, need = core.process(C[i:i + 1], 0, E, S, P, H, L, BM, I, IMAP, TQ)
        if nxt != 1:
            return -1
        done = _rdtsc()
        lat[i] = done - t_i
        svc[i] = done - now
    return late


# --------------------------------------------------------------------------- workloads


def build(n_ops: int, n_resting: int, seed: int = 7):
    spec = WorkloadSpec(n_resting=n_resting)
    pre, ops = mixed_workload(n_ops, spec, seed=seed)
    return spec, pre, ops


def fresh(spec, pre) -> MatchingEngine:
    eng = MatchingEngine(workload_config(spec))
    eng.process(pre, copy=False)
    return eng


def to_objects(ops: np.ndarray) -> list:
    out = []
    for r in ops.tolist():
        ts, oid, px, qty, disp, stop, acct, inst, kind, side, otype, tif, flags, stp, _ = r
        if kind == 1:
            out.append(SubmitOrder(oid, inst, acct, side, qty, px, otype, tif, bool(flags & 1),
                                   disp, stop, stp, ts))
        elif kind == 2:
            out.append(CancelOrder(oid, ts))
        else:
            out.append(ReplaceOrder(oid, qty, px, ts))
    return out


# ------------------------------------------------------------------------ measurements


def bench_batch(spec, pre, ops, reps: int):
    rates, cpu_rates, evs = [], [], 0
    for _ in range(reps):
        eng = fresh(spec, pre)
        nev = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(ops), CHUNK):
            nev += len(eng.process(ops[i:i + CHUNK], copy=False))
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        rates.append(len(ops) / dt)
        cpu_rates.append(len(ops) / dc)
        evs = nev / dt
    return max(rates), float(np.median(rates)), evs, eng.live_orders, max(cpu_rates)


def bench_objects(spec, pre, ops):
    objs = to_objects(ops)
    eng = fresh(spec, pre)
    t0 = time.perf_counter()
    for c in objs:
        eng.submit(c)
    return len(objs) / (time.perf_counter() - t0)


def bench_latency(spec, pre, ops, rate: float, cyc_per_ns: float):
    eng = fresh(spec, pre)
    eng.P[eng.live_orders:] = 0  # fault in the order pool up front (no page faults in the run)
    rows = 16 + 4 * (eng.live_orders + len(ops) + 1) + 4 * int(eng.S[core.S_SLICES])
    E = np.zeros((rows, core.E_NF), np.int64)
    C = np.ascontiguousarray(ops).view(np.int64).reshape(-1, 8)
    lat = np.zeros(len(C), np.int64)
    svc = np.zeros(len(C), np.int64)
    period = cyc_per_ns * 1e9 / rate
    t0, c0 = time.perf_counter(), time.process_time()
    late = _open_loop(C, E, eng.S, eng.P, eng.H, eng.L, eng.BM, eng.I, eng.IMAP,
                      eng.TQ, period, lat, svc)
    share = (time.process_time() - c0) / (time.perf_counter() - t0)
    if late < 0:
        raise RuntimeError("event buffer too small")
    ns = lat / cyc_per_ns
    p = np.percentile(ns, [50, 99, 99.9])
    sv = np.percentile(svc / cyc_per_ns, [50, 99, 99.9])
    return p[0], p[1], p[2], ns.max(), late / len(C), share, sv


def bench_object_latency(spec, pre, ops, rate: float):
    objs = to_objects(ops)
    eng = fresh(spec, pre)
    lat = np.zeros(len(objs), np.int64)
    period = 1e9 / rate
    clock = time.perf_counter_ns
    t0 = clock() + 1_000_000
    for i, c in enumerate(objs):
        t_i = t0 + int(i * period)
        while clock() < t_i:
            pass
        eng.submit(c)
        lat[i] = clock() - t_i
    p = np.percentile(lat, [50, 99, 99.9])
    return p[0], p[1], p[2]


def bench_journal(spec, pre, ops, workdir: Path):
    """Group-commit write rates per policy, journaled-engine rate, recovery time."""
    eng = MatchingEngine(workload_config(spec))
    batches = []
    allc = np.concatenate([pre, ops])
    for i in range(0, len(allc), CHUNK):
        c = allc[i:i + CHUNK]
        batches.append((c, eng.process(c)))
    n_ev = sum(len(e) for _, e in batches)
    n_cmd = len(allc)
    res = {}
    for pol in (DurabilityPolicy.FSYNC_EACH_BATCH, DurabilityPolicy.FSYNC_INTERVAL,
                DurabilityPolicy.NONE):
        p = workdir / f"j_{pol.value}.bin"
        if p.exists():
            p.unlink()
        w = JournalWriter(p, JournalConfig(pol))
        t0 = time.perf_counter()
        for c, e in batches:
            w.append_commands(c)
            w.append_events(e)
            w.commit()
        w.close()
        dt = time.perf_counter() - t0
        res[pol] = (n_ev / dt, (n_ev + n_cmd) / dt, os.path.getsize(p) / dt / 1e6, w.fsyncs)
    # end to end: journaled engine (fsync per batch)
    p = workdir / "j_e2e.bin"
    je, _ = JournaledEngine.open(p, config=workload_config(spec))
    t0 = time.perf_counter()
    for c, _e in batches:
        je.process(c)
    dt_e2e = time.perf_counter() - t0
    expect = je.engine.state_hash()
    je.close()
    # recovery of the fsync-per-batch journal (fresh engine + full replay + event check)
    jpath = workdir / f"j_{DurabilityPolicy.FSYNC_EACH_BATCH.value}.bin"
    c0 = time.process_time()
    eng2, rep = recover(jpath, config=workload_config(spec))
    cpu = time.process_time() - c0
    ok = eng2.state_hash() == expect
    return res, n_cmd / dt_e2e, rep, n_ev, ok, os.path.getsize(jpath), cpu


def bench_liquibook(spec, pre, ops):
    """Same commands on LiquiBook (C++, SWIG) with a Python fill listener, as its docs show."""
    try:
        import liquibook as lb
    except ImportError:
        return None

    class Listener(lb.OrderListener):
        def __init__(self):
            lb.OrderListener.__init__(self)
            self.fills = 0

        def on_accept(self, o):
            pass

        def on_reject(self, o, r):
            pass

        def on_fill(self, o, matched, qty, cost):
            o.fill(qty, cost, 0)
            matched.fill(qty, cost, 0)
            self.fills += 1

        def on_cancel(self, o):
            pass

        def on_cancel_reject(self, o, r):
            pass

        def on_replace(self, o, size_delta, new_price):
            pass

        def on_replace_reject(self, o, r):
            pass

    listener = Listener()
    books = {}
    for inst in range(1, spec.n_instruments + 1):
        b = lb.liquibook_book_OrderBook()
        b.set_order_listener(listener)
        books[inst] = b
    orders = {}
    ioc = lb.oc_immediate_or_cancel

    def run(rows):
        for r in rows.tolist():
            _ts, oid, px, qty, _d, _s, _a, inst, kind, side, otype, tif, *_ = r
            if kind == 1:
                o = lb.SimpleOrder(side == 1, px if otype == 1 else 0, qty)
                if tif == 3:
                    books[inst].add(o, ioc)
                else:
                    orders[oid] = (o, inst)
                    books[inst].add(o)
            elif kind == 2:
                got = orders.pop(oid, None)
                if got is not None:
                    books[got[1]].cancel(got[0])
            else:
                got = orders.get(oid)
                if got is not None:
                    o, inst = got
                    books[inst].replace(o, qty - o.order_qty(), px)

    run(pre)
    t0 = time.perf_counter()
    run(ops)
    return len(ops) / (time.perf_counter() - t0), listener.fills


# ------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (seconds)")
    args = ap.parse_args(argv)
    q = args.quick
    n_resting = 100_000
    n_ops = 300_000 if q else 2_000_000
    print("# bench_matching" + (" --quick" if q else ""))
    print(f"machine: {machine()}")
    la = os.getloadavg()
    print(f"load average at start: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} (the machine is shared: "
          "other processes can preempt the run)")
    t_all = time.perf_counter()
    spec, pre, ops = build(n_ops, n_resting)
    fresh(spec, pre)  # compile / load the kernels
    kinds = np.bincount(ops["kind"], minlength=4)
    mix = (f"{kinds[1]} submits ({(ops['tif'] == 3).sum()} IOC incl. "
           f"{(ops['order_type'] == 2).sum()} market), {kinds[2]} cancels, {kinds[3]} replaces")
    print(f"workload: {n_resting} resting limit orders on {spec.n_instruments} instruments, then "
          f"{len(ops)} ops: {mix}")
    print()

    rows: list[tuple[str, str, str]] = []
    best, med, evs, live, cpu = bench_batch(spec, pre, ops, 2 if q else 3)
    rows.append(("batch API (process, 16384 cmds/call)", f"{best / 1e6:.2f} M ops/s",
                 f"median {med / 1e6:.2f} M ops/s; {evs / 1e6:.2f} M events/s; "
                 f"{live} resting at end; {cpu / 1e6:.2f} M ops per CPU-second"))
    n_obj = 30_000 if q else 100_000
    rate_obj = bench_objects(spec, pre, ops[:n_obj])
    rows.append(("per-command API (submit(obj) -> events)", f"{rate_obj / 1e3:.0f} k ops/s",
                 f"{n_obj} ops, objects in and out"))
    lq = bench_liquibook(spec, pre, ops[: (50_000 if q else 300_000)])
    if lq is None:
        rows.append(("liquibook 2.0.1 (third party)", "not installed", ""))
    else:
        rows.append(("liquibook 2.0.1 (third party, C++ via SWIG)", f"{lq[0] / 1e3:.0f} k ops/s",
                     f"same ops, driven from Python, {lq[1]} fills; no STP/iceberg/DAY"))
    print(f"{'throughput':46s} {'rate':>16s}  notes")
    for a, b, c in rows:
        print(f"{a:46s} {b:>16s}  {c}")
    print()

    cpn = tsc_per_ns()
    n_lat = 200_000 if q else 1_000_000
    print(f"open-loop latency (compiled core, one command per call, from intended send time; "
          f"{n_lat} ops per rate; TSC {cpn:.3f} cycles/ns; cpu share = CPU time / wall time of "
          "the run, 100% = never preempted)")
    print(f"{'offered rate':>14s} {'run':>4s} {'p50 ns':>9s} {'p99 ns':>9s} {'p99.9 ns':>9s} "
          f"{'max ns':>10s} {'started late':>13s} {'cpu share':>10s}  service p50/p99/p99.9 ns")
    for rate in ((250_000, 1_000_000) if q else (250_000, 1_000_000, 2_000_000)):
        for run in range(1, 4):
            p50, p99, p999, mx, late, share, sv = bench_latency(spec, pre, ops[:n_lat], rate,
                                                                cpn)
            print(f"{rate / 1e6:11.2f} M/s {run:4d} {p50:9.0f} {p99:9.0f} {p999:9.0f} "
                  f"{mx:10.0f} {late * 100:12.2f}% {share * 100:9.0f}%  "
                  f"{sv[0]:.0f} / {sv[1]:.0f} / {sv[2]:.0f}")
    r_py = 20_000
    p50, p99, p999 = bench_object_latency(spec, pre, ops[: (20_000 if q else 60_000)], r_py)
    print(f"{'per-command API':>14s} at {r_py / 1e3:.0f} k/s offered: p50 {p50:.0f} ns, "
          f"p99 {p99:.0f} ns, p99.9 {p999:.0f} ns")
    print()

    workdir = Path(tempfile.mkdtemp(prefix="bench_journal_", dir=os.environ.get("BENCH_DIR")))
    try:
        j_ops = 300_000 if q else 800_000
        jspec, jpre, jops = build(j_ops, n_resting, seed=9)
        res, e2e, rep, n_ev, ok, size, rcpu = bench_journal(jspec, jpre, jops, workdir)
        print(f"journal ({n_ev} events + {len(jpre) + len(jops)} commands, one commit per "
              f"{CHUNK} commands, {size / 1e6:.0f} MB, on {workdir.parent})")
        print(f"{'policy':>12s} {'events/s':>12s} {'records/s':>12s} {'MB/s':>8s} {'fsyncs':>7s}")
        for pol, (er, rr, mbs, nf) in res.items():
            print(f"{pol.value:>12s} {er / 1e6:10.2f} M {rr / 1e6:10.2f} M {mbs:8.0f} {nf:7d}")
        print(f"journaled engine end to end (fsync per batch): {e2e / 1e6:.2f} M commands/s")
        print(f"recovery: {rep.command_seq} commands replayed, {rep.events_checked} events "
              f"checked in {rep.seconds:.2f} s wall, {rcpu:.2f} s CPU (read + CRC + replay + "
              f"compare); state hash {'equal' if ok else 'DIFFERENT'}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\ntotal bench time {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
