"""Run the ladder bench (``ladder_bench.py``) on any component with the ladder's ports.

:class:`hw.ladder.Ladder` and :class:`hw.lanes.LadderLanes` share the ports and the records,
so both pytest entries (``test_ladder.py``, ``test_lanes.py``) drive the same cocotb module.
"""

from __future__ import annotations

from pathlib import Path

from sim.harness import run_component

HERE = Path(__file__).resolve().parent


def run_ladder_bench(component, params: dict, testcase, **env) -> None:
    """Run ``testcase`` (a name or a list) of ``ladder_bench`` on ``component``.

    ``params`` are the component's constructor parameters (the bench rebuilds its model from
    them); every ``env`` item is passed as ``LADDER_<KEY>`` (seed, idle, bp, n, min_rate...).
    """
    run_component(
        component,
        toplevel="ladder",
        test_module="ladder_bench",
        test_dir=HERE,
        params=params,
        testcase=testcase,
        extra_env={f"LADDER_{k.upper()}": str(v) for k, v in env.items()},
    )
