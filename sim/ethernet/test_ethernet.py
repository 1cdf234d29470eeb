"""pytest entry: hw.ethernet.FrameParser under cocotb, at several data widths."""

from pathlib import Path

import pytest

from hw.ethernet import FrameParser
from sim.harness import run_component as run


@pytest.mark.parametrize("data_width", [64, 128])
def test_ethernet(data_width):
    run(
        FrameParser(data_width=data_width),
        toplevel="ethernet",
        test_module="tb_ethernet",
        test_dir=Path(__file__).resolve().parent,
        params={"data_width": data_width},
    )
