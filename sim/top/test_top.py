"""pytest entries for the top-level bench (hw.top.Top on Verilator via cocotb)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sim.harness import run_component

HERE = Path(__file__).resolve().parent
PARAMS = dict(data_width=64, slots=16, capacity=4096, ways=4, levels=4096, depth_n=1)
# the long stream keeps more orders live and more levels per side than the small table holds
LONG_PARAMS = dict(PARAMS, capacity=32768, ways=8)


def _run(params, **env):
    from hw.top import Top

    run_component(
        Top(**params),
        toplevel="top",
        test_module="top_bench",
        test_dir=HERE,
        params=params,
        extra_env={f"TOP_{k.upper()}": str(v) for k, v in env.items()},
    )


def test_top():
    _run(PARAMS, n=1200, symbols=6, seed=1, idle=0.2, bp=0.4,
         latency_out=os.environ.get("TOP_LATENCY_OUT", ""))


def test_top_depth5():
    """depth_n = 5: 192-byte records, a record for every change in the top 5 (depth_only
    ones too), every record's levels 1..5 and slot compared with the reference."""
    _run(dict(PARAMS, depth_n=5), n=1200, symbols=6, seed=1, idle=0.2, bp=0.4)


@pytest.mark.long
def test_top_long():
    _run(LONG_PARAMS, n=30000, symbols=12, seed=2, idle=0.1, bp=0.3)
