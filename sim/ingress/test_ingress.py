"""pytest entry: hw.ingress.Ingress (the whole chain) under cocotb."""

import os
from pathlib import Path

import pytest

from hw.ingress import Ingress
from sim.harness import run_component as run

HERE = Path(__file__).resolve().parent


def _run(data_width=64, **kw):
    return run(
        Ingress(data_width=data_width),
        toplevel="ingress",
        test_module="tb_ingress",
        test_dir=HERE,
        params={"data_width": data_width},
        **kw,
    )


def test_ingress():
    _run()


@pytest.mark.long
def test_ingress_long():
    """>= 1M messages of a generated day through the chain at full rate."""
    n = os.environ.get("N_MESSAGES_LONG", "1000000")
    _run(extra_env={"N_MESSAGES": n}, testcase="realistic_full_rate")
