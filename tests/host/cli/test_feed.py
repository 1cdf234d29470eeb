"""host.cli.feed: ``python -m host generate|bbo|stats``."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from host.cli import main
from host.cli.feed import CARDS, register_card
from host.feed.book import BBO_COLUMNS, L3Book, bbo_trace


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    itch, pcap = d / "s.itch", d / "s.pcap"
    assert main(["generate", "--messages", "30000", "--symbols", "6", "--seed", "3",
                 "--out", str(itch), "--pcap", str(pcap)]) == 0  # fmt: skip
    gz = d / "s.itch.gz"
    gz.write_bytes(gzip.compress(itch.read_bytes()))
    book = L3Book()
    ref = bbo_trace(itch.read_bytes(), book=book)
    return d, itch, pcap, gz, ref, book


def read_csv(p):
    lines = p.read_text().splitlines()
    assert lines[0] == ",".join(BBO_COLUMNS)
    return np.array([[int(x) for x in ln.split(",")] for ln in lines[1:]], dtype=np.int64)


def as_table(tr):
    return np.column_stack([tr[c].astype(np.int64) for c in BBO_COLUMNS])


@pytest.mark.parametrize("which", [1, 2, 3])
def test_bbo_same_csv_from_itch_gz_and_pcap(files, which, capsys):
    d, *inputs, ref, _ = files
    out = d / f"bbo{which}.csv"
    assert main(["bbo", str(inputs[which - 1]), "--out", str(out), "--no-progress"]) == 0
    assert np.array_equal(read_csv(out), as_table(ref))
    text = capsys.readouterr().out
    assert "anomalies: none" in text and f"bbo rows: {len(ref)}" in text and "by type:" in text


def test_bbo_symbol_and_locate_filters(files, capsys):
    d, itch, _, _, ref, book = files
    loc = sorted(book.symbols)[2]
    sym = book.symbols[loc]
    a, b = d / "a.csv", d / "b.csv"
    c, e = d / "c.csv", d / "e.csv"
    assert main(["bbo", str(itch), "--out", str(a), "--symbols", sym.lower()]) == 0
    assert main(["bbo", str(itch), "--out", str(b), "--locates", str(loc)]) == 0
    assert main(["bbo", str(itch), "--out", str(c), "--symbols", str(loc)]) == 0
    want = as_table(ref[ref["locate"] == loc])
    for f in (a, b, c):
        assert np.array_equal(read_csv(f), want)
    other = sorted(book.symbols)[4]
    assert main(["bbo", str(itch), "--out", str(e), "--symbols", f"{sym},", str(other)]) == 0
    both = ref[np.isin(ref["locate"], [loc, other])]
    assert np.array_equal(read_csv(e), as_table(both))
    capsys.readouterr()
    # an unknown symbol is an error, as in replay, session and --card sim (rows still written)
    assert main(["bbo", str(itch), "--out", str(a), "--symbols", f"{sym},NOSUCH"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "NOSUCH" in err and "\n" not in err
    assert np.array_equal(read_csv(a), want)


def test_stats_json(files, capsys):
    _, itch, pcap, _, ref, _ = files
    for f in (itch, pcap):
        assert main(["stats", str(f), "--json"]) == 0
        s = json.loads(capsys.readouterr().out)
        assert s["messages"] == 30000 and sum(s["by_type"].values()) == 30000
        assert set(s["anomalies"]) >= {"unknown_ref", "oversize_exec"}
        assert s["bbo_rows"] == len(ref) and s["symbols"] == 6


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["bbo", "/nonexistent.itch", "--out", "x.csv"], "no such file"),
        (["stats", "BAD"], "not a NASDAQ binary ITCH"),
        (["bbo", "ITCH", "--out", "x.csv", "--card", "nope"], "unknown card 'nope'"),
        (["stats", "ITCH", "--card", "sim"], "simulated card runs `bbo` and `replay`"),
        (["bbo", "ITCH", "--out", "x.csv", "--locates", "1,x"], "--locates"),
        (["bbo", "ITCH", "--out", "x.csv", "--locates", "1", "--symbols", "A"], "not both"),
        (["generate", "--messages", "5", "--symbols", "9", "--out", "g.itch"], "too few"),
    ],
)
def test_clear_errors(files, tmp_path, monkeypatch, capsys, argv, msg):
    _, itch, *_ = files
    monkeypatch.chdir(tmp_path)
    (tmp_path / "BAD").write_text("hello, world\n")
    argv = [str(itch) if a == "ITCH" else a for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and msg in err and "\n" not in err


def test_card_extension_point(files, tmp_path):
    from host.feed.fastbook import FastBook

    _, itch, *_ = files
    register_card("twin", lambda locates: FastBook(locates))
    try:
        assert main(["bbo", str(itch), "--out", str(tmp_path / "t.csv"), "--card", "twin"]) == 0
    finally:
        CARDS.pop("twin")


def test_python_dash_m(files):
    _, itch, *_ = files
    r = subprocess.run([sys.executable, "-m", "host", "stats", str(itch)], capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0 and "bbo rows:" in r.stdout


@pytest.mark.parametrize("which", [1, 2, 3])
def test_small_chunks_give_the_same_rows(files, which):
    from host.cli.feed import run_book

    _, *inputs, ref, _ = files
    parts = []
    s = run_book(str(inputs[which - 1]), chunk_bytes=7001, sink=lambda r: parts.append(r.copy()))
    got = np.concatenate(parts)
    assert (got == ref).all() and s["bbo_rows"] == len(ref)


def test_text_output_shows_every_anomaly_json_has(files, tmp_path, capsys):
    """A truncated tail and MoldUDP64 gaps / bad packets show in the text, not only --json."""
    from host.feed.net import read_pcap, udp_frame, write_pcap

    d, itch, pcap, *_ = files
    cut = tmp_path / "cut.itch"
    cut.write_bytes(itch.read_bytes()[:-7])
    assert main(["stats", str(cut)]) == 0
    text = capsys.readouterr().out
    assert "anomalies: file.truncated=1" in text and "truncated_bytes=" in text
    frames = [f for _, f in read_pcap(pcap)]
    payload = bytearray(frames[20][14 + 20 + 8 :])
    payload[19] ^= 0x80  # MoldUDP64 message count: a malformed packet with a good checksum
    flipped = bytearray(frames[30])
    flipped[-1] ^= 1  # a damaged frame: the UDP checksum catches it
    frames[20], frames[30] = udp_frame(bytes(payload)), bytes(flipped)
    frames = frames[:10] + frames[11:]  # and packet 10 lost: a gap
    write_pcap(tmp_path / "g.pcap", frames)
    assert main(["stats", str(tmp_path / "g.pcap")]) == 0
    text = capsys.readouterr().out
    assert main(["stats", str(tmp_path / "g.pcap"), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    line = next(ln for ln in text.splitlines() if ln.startswith("anomalies:"))
    mold = js["pcap"]["mold"]
    assert mold["gaps"] >= 1 and mold["bad_packets"] == 1 and js["pcap"]["frame_errors"] == 1
    assert f"pcap.mold.gaps={mold['gaps']}" in line
    assert "pcap.mold.bad_packets=1" in line and "pcap.mold.bad.count_mismatch=1" in line
    assert "pcap.frame_errors=1" in line and "pcap.frame_error_bad_udp_checksum=1" in line


def test_generate_profiles(tmp_path, capsys):
    from host.feed.generator import generate

    a, b = tmp_path / "r.itch", tmp_path / "d.itch"
    assert main(["generate", "--messages", "3000", "--symbols", "2", "--seed", "4",
                 "--profile", "realistic", "--out", str(a)]) == 0  # fmt: skip
    assert a.read_bytes() == generate(3000, 2, 4, profile="realistic")
    assert a.read_bytes() != generate(3000, 2, 4)
    assert main(["generate", "--messages", "3000", "--symbols", "2", "--seed", "4",
                 "--profile", "realistic", "--depth", "300", "--out", str(b)]) == 0  # fmt: skip
    assert b.read_bytes() != a.read_bytes()
    capsys.readouterr()
    assert main(["generate", "--messages", "30", "--depth", "5", "--out", str(b)]) == 1
    assert "--depth applies to --profile realistic" in capsys.readouterr().err
