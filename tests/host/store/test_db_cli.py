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


@pytest.mark.parametrize("argv, msg", [
    (["load", "capture", "/nonexistent.itch"], "/nonexistent.itch"),
    (["load", "session", "/"], "no venue.journal"),
    (["query", "bbo-at", "--capture", "x"], "needs --capture and --time"),
    (["query", "bbo-at", "--capture", "x", "--time", "24:00:00"], "--time"),
])
def test_errors_are_one_line(tmp_path, capsys, argv, msg):
    assert main(["db", "--store", str(tmp_path / "st"), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and err.count("\n") == 1


def test_unreachable_postgres_is_one_line(capsys):
    assert main(["db", "--store", "postgresql://u@127.0.0.1:1/x", "query", "tca"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open 127.0.0.1:1/x") and err.count("\n") == 1


def test_parse_time():
    assert parse_time("09:30:00") == 34_200 * 10**9
    assert parse_time("09:30:00.5") == 34_200 * 10**9 + 500_000_000
    assert parse_time("123") == 123
