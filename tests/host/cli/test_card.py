"""host.cli.card: the replay subcommand through its own argparse registration."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from host.cli import main
from host.cli.card import register
from host.errors import UserError
from host.feed.book import BBO_COLUMNS, bbo_trace
from host.feed.files import write_file
from host.feed.generator import generate


def _parser():
    ap = argparse.ArgumentParser()
    register(ap.add_subparsers(dest="cmd"))
    return ap


def test_replay_model_writes_reference_csv_and_plots(tmp_path, capsys):
    itch = generate(5000, 4, 2)
    path = tmp_path / "s.itch"
    write_file(path, itch)
    out = tmp_path / "o"
    args = _parser().parse_args(["replay", str(path), "--card", "model", "--out", str(out)])
    assert args.func(args) == 0
    got = np.loadtxt(out / "bbo.csv", delimiter=",", skiprows=1, dtype=np.int64)
    ref = bbo_trace(itch)
    assert got.shape == (len(ref), len(BBO_COLUMNS))
    assert np.array_equal(got[:, 0], ref["msg_index"])
    assert np.array_equal(got[:, 3], ref["bid_px"])
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 1 and pngs[0].startswith("bbo_")
    assert "M msgs/s" in capsys.readouterr().out


def test_replay_unknown_symbol_is_an_error(tmp_path):
    path = tmp_path / "s.itch"
    write_file(path, generate(2000, 3, 2))
    args = _parser().parse_args(["replay", str(path), "--symbols", "NOPE", "--out", str(tmp_path)])
    with pytest.raises(UserError, match="NOPE"):
        args.func(args)


def test_replay_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.bin"
    bad.write_text("hello, world\n")
    for argv, msg in (
        (["replay", str(tmp_path / "missing.itch")], "no such file"),
        (["replay", str(bad)], "not a NASDAQ binary ITCH"),
        (["replay", str(bad), "--card", "nope"], "invalid choice"),
    ):
        try:
            status = main(argv)
        except SystemExit as e:  # argparse usage errors
            status = e.code
        assert status in (1, 2)
        err = capsys.readouterr().err.strip()
        assert msg in err and (status == 2 or "\n" not in err), err


def test_model_verify_is_a_note(tmp_path, capsys):
    path = tmp_path / "s.itch"
    write_file(path, generate(2000, 3, 2))
    assert main(["bbo", str(path), "--out", str(tmp_path / "b.csv"), "--verify"]) == 0
    assert "nothing to compare" in capsys.readouterr().out
