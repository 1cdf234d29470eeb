"""pytest entry: the two-line ingress (hw.ingress.Ingress(lines=2), A/B arbitration) under
cocotb."""

from pathlib import Path

from hw.ingress import Ingress
from sim.harness import run_component as run

HERE = Path(__file__).resolve().parent


def test_arbiter():
    run(
        Ingress(data_width=64, lines=2),
        toplevel="ingress_ab",
        test_module="tb_arbiter",
        test_dir=HERE,
        params={"data_width": 64, "lines": 2},
    )
