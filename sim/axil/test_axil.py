"""pytest entry: the AXI4-Lite register slave on the U250 register table."""

from pathlib import Path

from hw.axil import AXILiteRegisters
from sim.harness import run_component


def test_axil_regs():
    run_component(AXILiteRegisters(addr_width=12), toplevel="axil_regs",
                  test_module="axil_bench", test_dir=Path(__file__).parent,
                  params={"addr_width": 12})
