"""Sustained messages per second of the simulated card (the Verilated hw/top.py, U250 build).

Generates a stream with the project generator, packetizes it into MoldUDP64/UDP frames and
replays it through ``host.card.sim`` with the full driver (``host.card.replay.replay_through_card``:
batches of frames in, records out), after one warm-up run. Prints the machine, the sizes and:

* sustained msgs/s and simulated cycles/s, without and with latency bookkeeping;
* where the time goes: the same number of clock cycles run with no input (the Verilated model
  alone, the ceiling of this approach) and the share of the wall time spent inside the C++
  clock loop;
* a sweep of the batch size (frames per ``send`` + ``run``), to show the per-call overhead;
* the per-message latency table (``host.card.report.latency_by_type``).

``--verify`` also checks the trace against the reference model.

    .venv/bin/python bench/bench_card.py [--messages 1000000] [--symbols 16] [--verify]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def machine() -> str:
    """CPU model, logical CPUs, Python version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def _replay(card, feed, locs, **kw):
    from host.card.replay import replay_through_card

    card.reset(hard=True)
    return replay_through_card(card, feed, locs, **kw)


def main(argv=None) -> int:
    """Run the benchmark; returns the exit status (1 when ``--verify`` fails)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--symbols", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default="classic", choices=("classic", "realistic"),
                    help="generator profile (realistic: deep books)")
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--no-sweep", action="store_true", help="skip the batch-size sweep")
    a = ap.parse_args(argv)

    from host.card.replay import open_sim_card, resolve_locates
    from host.card.report import latency_by_type
    from host.feed.capture import packetize_itch
    from host.feed.generator import generate

    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    card = open_sim_card()
    p = card.info.params
    print(
        f"simulated card ready in {time.perf_counter() - t0:.1f} s ({card.t.lib_path}); "
        f"slots={p.slots} table={p.table_capacity} ways={p.ways} levels={p.levels} "
        f"clk={p.clk_hz / 1e6:.2f} MHz"
    )
    itch = generate(a.messages, a.symbols, a.seed, profile=a.profile)
    feed = packetize_itch(itch)
    locs = resolve_locates(feed, None, card.slots)
    print(
        f"stream: {feed.n_messages:,} messages, {feed.n_frames:,} frames, "
        f"{int(feed.lens.sum()):,} bytes, {len(locs)} symbols"
    )
    warm = packetize_itch(generate(20_000, a.symbols, a.seed + 1))
    _replay(card, warm, resolve_locates(warm, None, card.slots), latency=False)

    n = feed.n_messages
    rp = None
    for latency in (False, True):
        rp = _replay(card, feed, locs, latency=latency)
        run = rp.run
        print(
            f"{'with' if latency else 'no'} latency bookkeeping: {run.wall_s:.2f} s -> "
            f"{n / run.wall_s / 1e6:.3f} M msgs/s sustained (goal >= 1 M msgs/s); "
            f"{run.cycles:,} cycles = {run.cycles / run.wall_s / 1e6:.2f} M cycles/s, "
            f"{run.cycles / n:.2f} cycles/msg; {len(rp.recs):,} BBO records"
        )
    run = rp.run

    # where the time goes: the model alone, clocked for as many cycles with nothing to do
    t = card.t
    t0 = time.perf_counter()
    t.run(max_cycles=run.cycles, idle_cycles=1 << 30)
    idle = time.perf_counter() - t0
    print(
        f"model alone (same {run.cycles:,} cycles, no input): {idle:.2f} s = "
        f"{run.cycles / idle / 1e6:.2f} M cycles/s -> ceiling {n / idle / 1e6:.3f} M msgs/s at "
        f"{run.cycles / n:.2f} cycles/msg; the model is {idle / run.wall_s:.0%} of the replay"
    )
    need = 1e6 * run.cycles / n
    print(f"1 M msgs/s would need {need / 1e6:.1f} M cycles/s from the model")

    if not a.no_sweep:
        sub = packetize_itch(generate(min(a.messages, 200_000), a.symbols, a.seed))
        sl = resolve_locates(sub, None, card.slots)
        row = []
        for bf in (16, 64, 256, 1024, 4096):
            r = _replay(card, sub, sl, latency=False, batch_frames=bf)
            row.append(f"{bf}: {sub.n_messages / r.run.wall_s / 1e6:.3f}")
        print(f"batch frames -> M msgs/s ({sub.n_messages:,} messages): " + ", ".join(row))

    lat = latency_by_type(rp)
    print("latency, card cycles from the MAC beat with a message's last byte to its record stamp:")
    print(f"  {'type':>4} {'messages':>9} {'min':>4} {'median':>6} {'max':>4}")
    for k, v in lat.items():
        print(f"  {k!r:>4} {v.size:>9,} {v.min():>4} {int(np.median(v)):>6} {v.max():>4}")
    day = 270e6
    print(f"a 270M-message NASDAQ day at this rate: {day / (n / run.wall_s) / 60:.1f} min")
    status = 0
    if a.verify:
        from host.card.report import verify

        status = verify(rp)
    card.close()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
