"""pytest entry: hw.framer.Framer under cocotb."""

from pathlib import Path

from hw.framer import Framer
from sim.harness import run_component as run


def test_framer():
    run(
        Framer(),
        toplevel="framer",
        test_module="tb_framer",
        test_dir=Path(__file__).resolve().parent,
        params={"data_width": 64},
    )
