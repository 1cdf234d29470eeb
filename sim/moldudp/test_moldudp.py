"""pytest entry: hw.moldudp.MoldUDP64 under cocotb."""

from pathlib import Path

from hw.moldudp import MoldUDP64
from sim.harness import run_component as run


def test_moldudp():
    run(
        MoldUDP64(),
        toplevel="moldudp",
        test_module="tb_moldudp",
        test_dir=Path(__file__).resolve().parent,
        params={"data_width": 64},
    )
