"""Sustained messages per second of the simulated card (the Verilated top level).

Generates a stream with the project generator, packetizes it into MoldUDP64/UDP frames and
replays it through ``host.card.sim`` with the full driver (``host.replay.replay_through_card``:
batches of frames in, records out, no latency bookkeeping), after one warm-up run. Prints the
machine, the sizes and the figures. ``--verify`` also checks the trace against the reference.

    .venv/bin/python bench/bench_card.py [--messages 1000000] [--symbols 32] [--verify]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--symbols", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--verify", action="store_true")
    a = ap.parse_args(argv)

    from host.generator import generate
    from host.replay import open_sim_card, packetize_itch, replay_through_card, resolve_locates

    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    card = open_sim_card()
    print(f"simulated card ready in {time.perf_counter() - t0:.1f} s ({card.t.lib_path})")
    itch = generate(a.messages, a.symbols, a.seed)
    feed = packetize_itch(itch)
    locs = resolve_locates(feed, None, card.slots)
    print(
        f"stream: {feed.n_messages:,} messages, {feed.n_frames:,} frames, "
        f"{int(feed.lens.sum()):,} bytes, {len(locs)} symbols"
    )
    warm = packetize_itch(generate(20_000, a.symbols, a.seed + 1))
    replay_through_card(card, warm, resolve_locates(warm, None, card.slots), latency=False)
    card.reset(hard=True)
    rp = replay_through_card(card, feed, locs, latency=False)
    card.close()
    run = rp.run
    n = feed.n_messages
    print(
        f"wall: {run.wall_s:.2f} s for {n:,} messages -> {n / run.wall_s / 1e6:.3f} M msgs/s "
        f"sustained (goal >= 1 M msgs/s)"
    )
    print(
        f"simulated: {run.cycles:,} cycles -> {run.cycles / run.wall_s / 1e6:.2f} M cycles/s, "
        f"{run.cycles / n:.2f} cycles/msg; BBO records: {len(rp.recs):,}"
    )
    day = 270e6
    print(f"a 270M-message NASDAQ day at this rate: {day / (n / run.wall_s) / 60:.1f} min")
    if a.verify:
        from host.replay import verify

        return verify(rp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
