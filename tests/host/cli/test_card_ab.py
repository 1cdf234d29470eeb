"""``python -m host replay FILE --lines a,b``: counters printed as the model predicts them, BBO
against the clean run, bad option values as one line with exit status 1."""

from __future__ import annotations

import re

import numpy as np
import pytest

from host.card.ab_replay import LineDamage, ab_replay
from host.cli import main
from host.feed.book import BBO_COLUMNS
from host.feed.capture import load_feed
from host.feed.files import write_file
from host.feed.generator import generate


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("ab") / "s.itch"
    write_file(path, generate(3000, 4, 5))
    return path


def _table(out: str) -> dict:
    rows = {}
    for m in re.finditer(r"^\s+([ab])\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", out, re.M):
        rows[m.group(1)] = tuple(int(m.group(k)) for k in range(2, 6))
    return rows


def test_counters_printed_equal_the_model(capture, tmp_path, capsys):
    argv = ["replay", str(capture), "--lines", "a,b", "--drop", "a=0.2,b=0.1", "--dup", "0.05",
            "--reorder", "b=0.05", "--line-seed", "9", "--ab-timeout", "300",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    r = ab_replay(load_feed(capture), [LineDamage(0.2, 0.05, 0.0), LineDamage(0.1, 0.05, 0.05)],
                  seed=9, timeout=300)
    c = r.line_counters
    assert _table(out) == {
        x: (c[f"line_{x}_packets"], r.won[k], c[f"line_{x}_duplicates"], c[f"line_{x}_filled"])
        for k, x in enumerate("ab")
    }
    assert f"both lines missed: {len(r.gaps)} gap(s), {r.ingress['missing']} message(s)" in out
    assert "check failed" not in out


def test_covered_run_writes_the_clean_bbo(capture, tmp_path, capsys):
    """Line B dead early, A drops nothing: every message on a line, the CSV is the clean
    single-line run's byte for byte."""
    assert main(["replay", str(capture), "--out", str(tmp_path / "clean")]) == 0
    assert main(["replay", str(capture), "--lines", "b,a", "--dead-after", "b=3",
                 "--dup", "a=0.1", "--out", str(tmp_path / "ab")]) == 0
    out = capsys.readouterr().out
    assert "BBO: equal to the clean single-line run" in out
    a = np.loadtxt(tmp_path / "clean" / "bbo.csv", delimiter=",", skiprows=1, dtype=np.int64)
    b = np.loadtxt(tmp_path / "ab" / "bbo.csv", delimiter=",", skiprows=1, dtype=np.int64)
    assert a.shape[1] == len(BBO_COLUMNS) and np.array_equal(a, b)


@pytest.mark.parametrize("extra, msg", [
    (["--lines", "a,c"], "give --lines a,b"),
    (["--lines", "a,b", "--drop", "1.5"], "not in [0, 1]"),
    (["--lines", "a,b", "--drop", "lots"], "not a number"),
    (["--lines", "a,b", "--drop", "c=0.1"], "LINE=VALUE"),
    (["--lines", "a,b", "--drop", "a=0.1,a=0.2"], "given twice"),
    (["--lines", "a,b", "--drop", "0.6", "--reorder", "0.6"], "exceeds 1"),
    (["--lines", "a,b", "--dead-after", "a=-2"], "negative"),
    (["--lines", "a,b", "--dead-after", "2.5"], "not an integer"),
    (["--lines", "a,b", "--line-seed", "x"], "not an integer"),
    (["--lines", "a,b", "--ab-timeout", "-1"], "--ab-timeout"),
    (["--lines", "a,b", "--card", "sim", "--no-build"], "needs --card model"),
])
def test_bad_values_one_line_exit_1(capture, tmp_path, capsys, extra, msg):
    assert main(["replay", str(capture), "--out", str(tmp_path), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err, err
