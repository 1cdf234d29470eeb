"""The README's measured figures are quoted from one published run (issue 15, item 7).

``make bench-doc`` writes ``docs/figures.md`` (every bench's output from one run) and ``make
synth-doc`` writes ``docs/synthesis.md``. Every bold figure of a README row that cites
``bench/bench_X.py`` must appear in that bench's section of ``docs/figures.md``, and every
number of a row of the README's synthesis table must appear in the row of the same block in
``docs/synthesis.md``: a figure typed by hand, or left from an older run, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FIGURES = ROOT / "docs" / "figures.md"
SYNTH = ROOT / "docs" / "synthesis.md"

_NUM = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _section(text: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"no section '## {title}'"
    return m.group(1)


def _bench_sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## bench_(\w+)\n", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUM.findall(text)}


def _readme_bench_rows() -> list[tuple[str, str, list[str]]]:
    """(bench name, row, bold figures) of every README figure-table row citing a bench."""
    rows = []
    last = None
    for line in _section(README, "Measured figures").splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        m = re.search(r"bench/bench_(\w+)\.py", line)
        cells = [c.strip() for c in line.strip("|").split("|")]
        if m:
            last = m.group(1)
        elif cells[-1] != "same":
            last = None
            continue
        bold = re.findall(r"\*\*(.+?)\*\*", line)
        if last and bold:
            rows.append((last, line, bold))
    return rows


def test_readme_quotes_bench_figures_from_the_published_run() -> None:
    rows = _readme_bench_rows()
    assert rows, "the README's Measured figures section cites no bench"
    assert FIGURES.exists(), "docs/figures.md missing: run `make bench-doc`"
    sections = _bench_sections(FIGURES.read_text())
    for bench, line, bold in rows:
        assert bench in sections, f"docs/figures.md has no bench_{bench} section ({line})"
        have = _numbers(sections[bench])
        for fig in bold:
            missing = _numbers(fig) - have
            assert not missing, (f"README figure '{fig}' (bench_{bench}) is not in the "
                                 f"published run: {sorted(missing)} missing in docs/figures.md")


def test_readme_synthesis_table_matches_docs_synthesis() -> None:
    sec = _section(README, "Measured figures")
    m = re.search(r"\| block \|.*?\n\|[-| :]+\|\n((?:\|.*\|\n)+)", sec)
    if m is None:
        pytest.skip("the README quotes no synthesis table")
    synth = SYNTH.read_text()
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        block = cells[0].split(" ")[0]
        # the block's rows of every table (Xilinx, ECP5 proxy) of the published report
        srow = " ".join(x for x in synth.splitlines() if x.startswith(f"| {block} "))
        assert srow, f"docs/synthesis.md has no row for {block}"
        missing = _numbers(" ".join(cells[1:])) - _numbers(srow)
        assert not missing, f"README synthesis row '{block}': {sorted(missing)} not in " \
                            f"docs/synthesis.md ({srow})"


def test_published_run_is_complete() -> None:
    """The published document has a section for every bench script and none failed."""
    if not FIGURES.exists():
        pytest.fail("docs/figures.md missing: run `make bench-doc`")
    text = FIGURES.read_text()
    names = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py"))
    sections = _bench_sections(text)
    assert sorted(sections) == names, "docs/figures.md is not from a run of every bench"
    assert "FAILED" not in text
