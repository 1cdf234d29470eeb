"""``python -m host bbo --depth N`` (issue 14 item 4): levels 1..N against host.feed.depth."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from host.cli import main
from host.cli.feed import CARDS, register_card, run_book
from host.feed.book import BBO_COLUMNS, L3Book
from host.feed.depth import depth_columns, depth_table, depth_trace


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("depthcli")
    itch, pcap = d / "s.itch", d / "s.pcap"
    assert main(["generate", "--messages", "20000", "--symbols", "5", "--seed", "4",
                 "--out", str(itch), "--pcap", str(pcap)]) == 0  # fmt: skip
    gz = d / "s.itch.gz"
    gz.write_bytes(gzip.compress(itch.read_bytes()))
    real = d / "r.itch"
    assert main(["generate", "--messages", "20000", "--symbols", "4", "--seed", "2",
                 "--profile", "realistic", "--out", str(real)]) == 0  # fmt: skip
    return d, itch, pcap, gz, real


def read_csv(p, n):
    lines = p.read_text().splitlines()
    assert lines[0] == ",".join(depth_columns(n) if n > 1 else BBO_COLUMNS)
    return np.array([[int(x) for x in ln.split(",")] for ln in lines[1:]], dtype=np.int64)


@pytest.mark.parametrize("which", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [2, 5])
def test_depth_csv_equals_reference(files, which, n, capsys):
    d, *inputs = files
    src = inputs[which - 1]
    out = d / f"d{which}_{n}.csv"
    assert main(["bbo", str(src), "--depth", str(n), "--out", str(out), "--no-progress"]) == 0
    raw = (inputs[3] if which == 4 else inputs[0]).read_bytes()
    ref = depth_trace(raw, n=n)
    got = read_csv(out, n)
    assert np.array_equal(got, depth_table(ref))
    text = capsys.readouterr().out
    only = int(ref["depth_only"].sum())
    assert f"bbo rows: {len(ref) - only}" in text
    assert f"depth rows (top {n}): {len(ref)} ({only} depth only)" in text


def test_depth_1_is_todays_output(files):
    d, itch, *_ = files
    a, b = d / "plain.csv", d / "depth1.csv"
    assert main(["bbo", str(itch), "--out", str(a)]) == 0
    assert main(["bbo", str(itch), "--depth", "1", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_depth_filters_and_small_chunks(files):
    d, itch, *_ = files
    book = L3Book()
    ref = depth_trace(itch.read_bytes(), n=4, book=book)
    loc = sorted(book.symbols)[1]
    out = d / "sym.csv"
    assert main(["bbo", str(itch), "--depth", "4", "--symbols", book.symbols[loc],
                 "--out", str(out)]) == 0  # fmt: skip
    assert np.array_equal(read_csv(out, 4), depth_table(ref[ref["locate"] == loc]))
    parts = []
    s = run_book(str(itch), chunk_bytes=5003, depth=4, sink=lambda r: parts.append(r))
    assert np.array_equal(np.concatenate(parts), ref)
    assert s["depth_rows"] == len(ref) and s["depth"] == 4


@pytest.mark.parametrize("argv, msg", [
    (["--depth", "0"], "--depth must be an integer in 1..16, not 0"),
    (["--depth", "17"], "--depth must be an integer in 1..16, not 17"),
    (["--depth", "two"], "--depth must be an integer in 1..16, not 'two'"),
    (["--depth", "3", "--card", "twin"], "card 'twin' gives the BBO only"),
    (["--depth", "3", "--card", "nope"], "unknown card 'nope'"),
])  # fmt: skip
def test_depth_errors(files, tmp_path, capsys, argv, msg):
    from host.feed.fastbook import FastBook

    _, itch, *_ = files
    register_card("twin", lambda locates: FastBook(locates))
    try:
        out = tmp_path / "x.csv"
        assert main(["bbo", str(itch), "--out", str(out), *argv]) == 1
    finally:
        CARDS.pop("twin")
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and msg in err and "\n" not in err
    assert not out.exists()  # checked before the output is created


def test_depth_with_a_card_without_top_n(files, tmp_path, capsys, monkeypatch):
    """--card sim with a run_bbo_card that has no depth= keyword: one line, exit 1."""
    import host.cli.card as card

    _, itch, *_ = files

    def old_run_bbo_card(path, out_fh, *, symbols=None, verify_trace=False, allow_build=True,
                         progress=False, log=None, recover=True):
        raise AssertionError("must not be called")

    monkeypatch.setattr(card, "run_bbo_card", old_run_bbo_card)
    assert main(["bbo", str(itch), "--out", str(tmp_path / "x.csv"), "--depth", "3",
                 "--card", "sim"]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "gives the BBO only" in err and "\n" not in err


def test_depth_passed_to_a_card_with_top_n(files, tmp_path, monkeypatch):
    """A run_bbo_card with depth= gets it (and the call without --depth is unchanged)."""
    import host.cli.card as card

    _, itch, *_ = files
    calls = []

    def new_run_bbo_card(path, out_fh, *, symbols=None, verify_trace=False, allow_build=True,
                         progress=False, log=None, recover=True, depth=1):
        calls.append(depth)
        return 0

    monkeypatch.setattr(card, "run_bbo_card", new_run_bbo_card)
    for extra in (["--depth", "6"], []):
        assert main(["bbo", str(itch), "--out", str(tmp_path / "x.csv"), "--card", "sim",
                     *extra]) == 0  # fmt: skip
    assert calls == [6, 1]
