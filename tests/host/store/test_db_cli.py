"""``python -m host db``: load, re-load, queries, errors as one line."""

from __future__ import annotations

import pytest

from host.cli import main
from host.cli.db import parse_time


def test_load_twice_and_query(tmp_path, market_and_session, capsys):
    src, sess = market_and_session
    store = str(tmp_path / "st")
    assert main(["db", "--store", store, "load", "session", sess, "--input", src]) == 0
    out = capsys.readouterr().out
    assert "md_messages +8000" in out and "fills +" in out and "fills +0" not in out
    assert main(["db", "--store", store, "load", "session", sess, "--input", src]) == 0
    out = capsys.readouterr().out
    assert "md_messages +0" in out and "fills +0" in out and "orders +0" in out
    assert main(["db", "--store", store, "query", "fills-by-strategy"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["strategy", "instrument", "fills", "qty",
                                           "net_qty", "notional"]
    assert main(["db", "--store", store, "query", "tca", "--csv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("strategy,fills,qty,notional,with_mid,cost_x2,cost,cost_bps\n")
    assert main(["db", "--store", store, "query", "bbo-at", "--capture", src,
                 "--time", "12:00:00"]) == 0
    assert "rows)" in capsys.readouterr().out


def test_postgres_url(pg_url, market_and_session, capsys):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("CREATE DATABASE cli_db")
    url = pg_url.rsplit("/", 1)[0] + "/cli_db"
    src, _ = market_and_session
    assert main(["db", "--store", url, "load", "capture", src]) == 0
    assert "postgresql store" in capsys.readouterr().out
    assert main(["db", "--store", url, "load", "capture", src]) == 0
    assert "md_bbo +0" in capsys.readouterr().out


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, market_and_session):
    """Files a user may give by mistake: text, random bytes, a cut gzip, a garbled ITCH
    stream, session folders with a foreign or empty venue.journal."""
    import gzip
    import shutil

    src, _ = market_and_session
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.txt").write_text("not an ITCH file\n")
    (d / "random.bin").write_bytes(bytes(range(256)) * 20)
    raw = open(src, "rb").read()
    z = gzip.compress(raw)
    (d / "cut.itch.gz").write_bytes(z[: len(z) // 2])
    garbled = bytearray(raw)
    garbled[5000:5100] = b"\xff" * 100  # lengths of 65535: no valid message boundary
    (d / "garbled.itch").write_bytes(bytes(garbled))
    (d / "foreign").mkdir()
    shutil.copy(d / "random.bin", d / "foreign" / "venue.journal")
    (d / "empty").mkdir()
    (d / "empty" / "venue.journal").write_bytes(b"")
    return d


@pytest.mark.parametrize("argv, msg", [
    (["load", "capture", "/nonexistent.itch"], "/nonexistent.itch: no such file"),
    (["load", "capture", "{bad}"], "{bad}: is a directory"),
    (["load", "capture", "{bad}/notes.txt"], "not a NASDAQ binary ITCH 5.0 file"),
    (["load", "capture", "{bad}/random.bin"], "not a NASDAQ binary ITCH 5.0 file"),
    (["load", "capture", "{bad}/cut.itch.gz"], "cut.itch.gz: cannot read: Compressed file"),
    (["load", "capture", "{bad}/garbled.itch"], "garbled.itch: cannot read:"),
    (["load", "session", "/"], "no venue.journal"),
    (["load", "session", "{bad}/foreign"], "foreign: cannot read its journals: not a matching"),
    (["load", "session", "{bad}/empty"], "empty: cannot read its journals"),
    (["load", "session", "{sess}", "--input", "{bad}/notes.txt"], "not a NASDAQ binary"),
    (["load", "journal", "x"], "load 'journal': choose from: capture, session"),
    (["query", "nope"], "unknown query 'nope'; choose from: fills-by-strategy, tca, bbo-at"),
    (["query", "tca", "--session", "nope"], "no session 'nope' in the store"),
    (["query", "fills-by-strategy", "--session", "x"], "no session 'x' in the store"),
    (["query", "bbo-at", "--capture", "x"], "needs --capture and --time"),
    (["query", "bbo-at", "--capture", "x", "--time", "24:00:00"], "--time"),
    (["query", "bbo-at", "--capture", "nope", "--time", "1"], "no capture 'nope' in the store"),
    (["query", "bbo-at", "--capture", "a/b.itch", "--time", "1"], "a/b.itch: no such file"),
    (["query", "bbo-at", "--capture", "{bad}/notes.txt", "--time", "1"], "not a NASDAQ"),
    (["query", "bbo-at", "--capture", "{bad}/garbled.itch", "--time", "1"],
     "is not in the store: load it with `db load capture"),
])
def test_errors_are_one_line(tmp_path, capsys, bad_inputs, market_and_session, argv, msg):
    """Bad input to ``db``: one line on stderr, exit 1, no traceback (the store exists:
    a capture is loaded first)."""
    src, sess = market_and_session
    st = str(tmp_path / "st")
    assert main(["db", "--store", st, "load", "capture", src]) == 0
    capsys.readouterr()
    fill = {"bad": str(bad_inputs), "sess": sess}
    argv = [x.format(**fill) for x in argv]
    msg = msg.format(**fill)
    assert main(["db", "--store", st, *argv]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and msg in err and err.count("\n") == 1, err
    assert out == ""


@pytest.mark.parametrize("store, msg", [
    ("mysql://user:secret@db.example/x", "mysql://db.example/x: unsupported store URL scheme"),
    ("{tmp}/afile", "afile: not a folder"),
    ("{tmp}/foreign", "foreign: not a store (no schema.json) and not empty"),
    ("{tmp}/badmeta", "schema.json: unreadable"),
    ("/proc/no/such/dir", "/proc/no/such/dir: cannot create the store"),
    ("postgresql://u@127.0.0.1:notaport/x", "cannot open 127.0.0.1:notaport/x"),
    ("postgresql://u@no-such-host.invalid/x", "cannot open"),
])
def test_bad_store_locations_are_one_line(tmp_path, capsys, market_and_session, store, msg):
    src, _ = market_and_session
    (tmp_path / "afile").write_text("x")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "mine.txt").write_text("keep me")
    (tmp_path / "badmeta").mkdir()
    (tmp_path / "badmeta" / "schema.json").write_text("{not json")
    store = store.format(tmp=tmp_path)
    assert main(["db", "--store", store, "load", "capture", src]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and err.count("\n") == 1, err
    assert "secret" not in err
    assert sorted(p.name for p in (tmp_path / "foreign").iterdir()) == ["mine.txt"]


def test_query_without_a_store_creates_nothing(tmp_path, capsys):
    assert main(["db", "--store", str(tmp_path / "none"), "query", "tca"]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'none'}: no store here (nothing loaded yet)\n"
    assert not (tmp_path / "none").exists()


def test_a_damaged_store_file_is_one_line(tmp_path, capsys, market_and_session):
    src, _ = market_and_session
    st = tmp_path / "st"
    assert main(["db", "--store", str(st), "load", "capture", src]) == 0
    capsys.readouterr()
    (st / "md_bbo" / "zz-00000.parquet").write_bytes(b"\0" * 64)  # not Parquet
    assert main(["db", "--store", str(st), "query", "bbo-at", "--capture", src,
                 "--time", "12:00:00"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: parquet store: ") and "zz-00000.parquet" in err
    assert err.count("\n") == 1


def test_unreachable_postgres_is_one_line(capsys):
    assert main(["db", "--store", "postgresql://u@127.0.0.1:1/x", "query", "tca"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open 127.0.0.1:1/x") and err.count("\n") == 1


def test_parse_time():
    assert parse_time("09:30:00") == 34_200 * 10**9
    assert parse_time("09:30:00.5") == 34_200 * 10**9 + 500_000_000
    assert parse_time("123") == 123


def test_load_of_a_cut_file_says_what_was_not_loaded(tmp_path, market_and_session, capsys):
    """A plain ITCH file cut mid-message loads the whole messages before the cut and says that
    the tail was not loaded (count of messages, bytes left), in the normal output."""
    from host.feed.bulk import parse_records

    src, _ = market_and_session
    raw = open(src, "rb").read()
    cut = tmp_path / "cut.itch"
    cut.write_bytes(raw[:20_001])
    whole, st = parse_records(raw[:20_001])
    assert st["truncated"] == 1  # the cut falls inside a message
    assert main(["db", "--store", str(tmp_path / "st"), "load", "capture", str(cut)]) == 0
    out = capsys.readouterr().out
    left = 20_001 - st["consumed"]
    assert (f"ends in a partial message after {len(whole):,} messages: the last {left:,} "
            "bytes were not loaded") in out
    assert f"md_messages +{len(whole)}" in out
    # the whole file: no warning
    assert main(["db", "--store", str(tmp_path / "st2"), "load", "capture", src]) == 0
    assert "warning" not in capsys.readouterr().out
