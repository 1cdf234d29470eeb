"""Verilog for simulators: Amaranth's output with zero memory initialisers written as loops.

Why
---
Amaranth 0.5 gives every ``Memory`` an initial value (zero when ``init=[]``), and Yosys'
``write_verilog`` spells it out one word per line::

    initial begin
      mem[0] = 16'h0000;
      mem[1] = 16'h0000;
      ...

The deep book's ladder, bitmaps and order table hold over a million words, so the Verilog of
the U250 top carries over a million such lines. Verilator turns each into a C++ statement
and g++ then spends tens of minutes on one initialisation function. :func:`compact_zero_inits`
rewrites every all-zero block as one ``for`` loop, which means the same thing to every
simulator (Icarus included) and compiles in no time. Blocks with any non-zero word (lookup
tables) are left as they are.

Before Yosys sees the design, Amaranth's RTLIL back end builds the same initialiser bit by
bit as Python objects (``ModuleEmitter.emit_memory``: about 1 µs per bit, minutes for the
U250 top). :func:`fast_memory_init` swaps in an emitter that writes the identical RTLIL
constant from the rows' integers; :func:`to_rtlil` and :func:`to_verilog` use it. It is
checked against Amaranth's own emitter (``tests/hw/test_emit.py``) and falls back to it on
an Amaranth version it was not written for.
"""

from __future__ import annotations

import contextlib
import re

__all__ = ["add_zero_inits", "compact_zero_inits", "fast_memory_init", "to_rtlil", "to_verilog"]

_PATCHED_FOR = ("0.5.",)
"""Amaranth versions whose ``ModuleEmitter.emit_memory`` the fast emitter reproduces."""


def _fast_emit_memory(self, cell_idx, cell, skipped=None):
    # Same cell as amaranth.back.rtlil.ModuleEmitter.emit_memory (0.5): the DATA constant
    # is the rows' bits, row 0's bit 0 last in the MSB-first string.
    from amaranth.hdl import _nir

    memory_info = self.memories[cell_idx]
    width = cell.width
    if not any(cell.init):
        if skipped is not None:  # the Verilog path writes the zeros as a loop afterwards
            skipped.append((memory_info.memid, width, cell.depth))
            return
        bits = "0" * (width * cell.depth)
    else:
        bits = "".join(format(row, f"0{width}b") for row in reversed(cell.init))
    self.builder.cell("$meminit_v2", ports={
        "ADDR": self.sigspec(),
        "DATA": f"{width * cell.depth}'{bits}",
        "EN": self.sigspec(_nir.Value.ones(width)),
    }, parameters={
        "MEMID": memory_info.memid,
        "ABITS": 0,
        "WIDTH": width,
        "WORDS": cell.depth,
        "PRIORITY": 0,
    }, src_loc=cell.src_loc)  # fmt: skip


@contextlib.contextmanager
def fast_memory_init(skipped: list | None = None):
    """Within the block, Amaranth's RTLIL emitter writes memory initialisers from integers.

    Parameters
    ----------
    skipped : list, optional
        When given, an all-zero initialiser is not emitted at all; ``(memid, width, depth)``
        of the memory is appended instead, for :func:`add_zero_inits` to write into the
        Verilog. Yosys then never holds the constant (minutes for the U250 top).
    """
    from importlib.metadata import version

    from amaranth.back import rtlil

    emitter = getattr(rtlil, "ModuleEmitter", None)
    if emitter is None or not version("amaranth").startswith(_PATCHED_FOR):
        yield
        return
    original = emitter.emit_memory

    def emit_memory(self, cell_idx, cell):
        _fast_emit_memory(self, cell_idx, cell, skipped)

    emitter.emit_memory = emit_memory
    try:
        yield
    finally:
        emitter.emit_memory = original

_WORD = re.compile(r"^    (\\\S+ |[A-Za-z_][A-Za-z0-9_$]*)\[(\d+)\] = (\d+)'h([0-9a-fA-F]+);$")


def compact_zero_inits(text: str) -> str:
    """Return ``text`` with each all-zero, in-order memory ``initial`` block as a loop.

    Parameters
    ----------
    text : str
        Verilog from ``amaranth.back.verilog.convert`` (Yosys ``write_verilog``).

    Returns
    -------
    str
        The same design; only ``initial`` blocks that set words ``0 .. n-1`` of one memory
        to zero, in order, are replaced (by ``integer`` + ``for``).
    """
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    k = 0
    n_lines = len(lines)
    while i < n_lines:
        line = lines[i]
        if line != "  initial begin":
            out.append(line)
            i += 1
            continue
        j = i + 1
        name = None
        width = None
        ok = True
        while j < n_lines and lines[j] != "  end":
            m = _WORD.match(lines[j])
            if (
                m is None
                or int(m.group(2)) != j - i - 1
                or int(m.group(4), 16) != 0
                or (name is not None and (m.group(1) != name or m.group(3) != width))
            ):
                ok = False
                break
            name, width = m.group(1), m.group(3)
            j += 1
        words = j - i - 1
        if not ok or j >= n_lines or words < 2:
            out.append(line)
            i += 1
            continue
        out += _zero_loop(f"_zero_init_{k}_", name, words, width)
        k += 1
        i = j + 1
    return "\n".join(out)


def _zero_loop(var: str, name: str, words: int, width: int) -> list[str]:
    """Verilog lines that set the ``words`` words of memory ``name`` to zero at time 0."""
    return [
        f"  integer {var};",
        "  initial begin",
        f"    for ({var} = 0; {var} < {words}; {var} = {var} + 1)",
        f"      {name}[{var}] = {width}'h0;",
        "  end",
    ]


def to_verilog(component, *, name: str = "top", **kwargs) -> str:
    """``amaranth.back.verilog.convert`` followed by :func:`compact_zero_inits`.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The design.
    name : str
        Top module name.
    **kwargs
        Passed to ``verilog.convert`` (``emit_src`` defaults to False).
    """
    from amaranth.back import verilog

    kwargs.setdefault("emit_src", False)
    skipped: list = []
    with fast_memory_init(skipped):
        text = verilog.convert(component, name=name, **kwargs)
    return add_zero_inits(compact_zero_inits(text), skipped)


_DECL = re.compile(r"^  reg \[(\d+):0\] (\\\S+ |[A-Za-z_][A-Za-z0-9_$]*) ?\[(\d+):0\];$")


def add_zero_inits(text: str, skipped: list) -> str:
    """Give each memory whose zero initialiser was skipped an ``initial`` loop of zeros.

    Parameters
    ----------
    text : str
        Verilog written by Yosys from RTLIL emitted under ``fast_memory_init(skipped)``.
    skipped : list of (memid, width, depth)
        The memories without an initialiser.

    Raises
    ------
    RuntimeError
        When a skipped memory's declaration is not found: a memory must never be left
        uninitialised by accident.
    """
    if not skipped:
        return text
    want: dict = {}
    for memid, width, depth in skipped:
        key = (memid[1:] if memid.startswith("\\") else memid, width, depth)
        want[key] = want.get(key, 0) + 1
    lines = text.split("\n")
    out: list[str] = []
    k = 0
    for i, line in enumerate(lines):
        out.append(line)
        m = _DECL.match(line)
        if m is None:
            continue
        name = m.group(2)
        plain = name[1:].rstrip() if name.startswith("\\") else name
        key = (plain, int(m.group(1)) + 1, int(m.group(3)) + 1)
        has_init = i + 1 < len(lines) and lines[i + 1] == "  initial begin"
        if want.get(key, 0) == 0 or has_init:
            continue
        want[key] -= 1
        out += _zero_loop(f"_zero_mem_{k}_", name, key[2], key[1])
        k += 1
    missing = {key: n for key, n in want.items() if n}
    if missing:
        raise RuntimeError(f"memories without an initialiser not found in the Verilog: {missing}")
    return "\n".join(out)


def to_rtlil(component, *, name: str = "top", **kwargs) -> str:
    """``amaranth.back.rtlil.convert`` with :func:`fast_memory_init`.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The design.
    name : str
        Top module name.
    **kwargs
        Passed to ``rtlil.convert`` (``emit_src`` defaults to False).
    """
    from amaranth.back import rtlil

    kwargs.setdefault("emit_src", False)
    with fast_memory_init():
        return rtlil.convert(component, name=name, **kwargs)
