"""pytest entries for the ladder lanes (hw.lanes.LadderLanes) on the ladder benches.

The lanes have the ports and the records of one :class:`hw.ladder.Ladder`, so every ladder
stream runs through them unchanged and every record is compared with the same model: the
records of ops on different lanes must come back in op order, under idle input and output
backpressure.
"""

from __future__ import annotations

from sim.ladder.runner import run_ladder_bench

# 4 slots on 4 lanes (one slot each) and on 2 lanes (two each: local slots 0 and 1)
LANES4 = dict(lanes=4, slots=4, depth=64, k=4, n=3, size_width=34)
LANES2 = dict(lanes=2, slots=4, depth=64, k=4, n=3, size_width=34, lane_fifo=2)
# full-rate random stream on 4 slots: one ladder keeps 0.26 (docs/ladder.md); four lanes
# must do better than one (measured 0.706 with the 3-cycle ladder, 0.30 was the floor with
# the 5-cycle one; see docs/book.md, "Lanes")
RATE_FLOOR_4 = 0.62


def _run(params, testcase, **env):
    from hw.lanes import LadderLanes

    run_ladder_bench(LadderLanes(**params), params, testcase, **env)


def test_lanes4():
    """Every targeted stream and a random one with idle and backpressure, then the random
    stream at full rate with a throughput floor."""
    _run(LANES4, ["test_fill_drain", "test_sweep_slide_far", "test_clears"],
         idle=0.2, bp=0.2, seed=1)
    _run(LANES4, "test_random", n=4000, idle=0.1, bp=0.1, seed=2)
    _run(LANES4, "test_random", n=3000, seed=6, min_rate=RATE_FLOOR_4)


def test_lanes2_shallow():
    """Two slots per lane, 2-entry lane FIFOs (full FIFOs all the time): random stream."""
    _run(LANES2, "test_random", n=3000, idle=0.05, bp=0.3, seed=4)
