"""pytest entry: hw.decoder.Decoder under cocotb (Verilator by default, SIM=icarus)."""

from pathlib import Path

from hw.decoder import Decoder
from sim.harness import run_component as run


def test_decoder():
    run(
        Decoder(),
        toplevel="decoder",
        test_module="tb_decoder",
        test_dir=Path(__file__).resolve().parent,
    )
