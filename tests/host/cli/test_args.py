"""host.cli.args: one ``--symbols`` grammar for bbo, replay and session; bad input never a
traceback."""

from __future__ import annotations

import argparse
import gzip

import pytest

from host.cli import main
from host.cli.args import LOCATE_MAX, parse_symbols
from host.feed.files import write_file
from host.feed.generator import generate


@pytest.mark.parametrize(
    "text, want",
    [
        ("AAPL", ["AAPL"]),
        ("aapl,msft", ["AAPL", "MSFT"]),
        ("AAPL, 13 ,MSFT", ["AAPL", 13, "MSFT"]),
        ("0", [0]),
        (str(LOCATE_MAX), [LOCATE_MAX]),
        ("BRK.A", ["BRK.A"]),
    ],
)
def test_parse_symbols(text, want):
    assert parse_symbols(text) == want


@pytest.mark.parametrize(
    "text, msg",
    [
        (str(LOCATE_MAX + 1), "out of range"),
        ("99999999999999999999", "out of range"),
        ("TOOLONGSYM", "at most 8"),
        ("ÄPFEL", "ASCII"),
        (" , ", "no symbol"),
    ],
)
def test_parse_symbols_refuses(text, msg):
    with pytest.raises(argparse.ArgumentTypeError, match=msg):
        parse_symbols(text)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("args")
    write_file(d / "s.itch", generate(4000, 3, 5))
    return d


@pytest.mark.parametrize("cmd", ["bbo", "replay", "session"])
@pytest.mark.parametrize("bad", ["70000", "99999999999999999999"])
def test_out_of_range_locate_is_a_usage_error_in_every_command(sample, tmp_path, capsys, cmd, bad):
    argv = [cmd, str(sample / "s.itch"), "--symbols", bad, "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "out of range" in err and "Traceback" not in err


@pytest.mark.parametrize("cmd", ["bbo", "replay", "session"])
def test_unknown_symbol_fails_in_every_command(sample, tmp_path, capsys, cmd):
    argv = [cmd, str(sample / "s.itch"), "--symbols", "NOSUCH", "--out", str(tmp_path / "o")]
    if cmd == "session":
        argv.append("--no-progress")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "NOSUCH" in err[0]


@pytest.mark.parametrize("cmd", ["bbo", "stats", "replay", "session"])
def test_truncated_gzip_is_one_line(sample, tmp_path, capsys, cmd):
    gz = tmp_path / "t.itch.gz"
    gz.write_bytes(gzip.compress((sample / "s.itch").read_bytes())[:3000])
    argv = [cmd, str(gz)] + ([] if cmd == "stats" else ["--out", str(tmp_path / "o")])
    if cmd == "session":
        argv.append("--no-progress")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "t.itch.gz" in err[0]


def test_card_help_names_what_each_card_is(capsys):
    for cmd in ("bbo", "replay", "session"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "reference book" in text and "simulated card" in text, cmd
        assert "in Python" not in text
