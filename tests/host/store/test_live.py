"""``session --store`` / ``backtest --store``: batches written while the run goes.

Each test runs on both backends (a folder of Parquet files, and a real PostgreSQL that the
conftest fixture starts). The references are the run's own outputs read afterwards: the
journals of the session folder, ``fills.parquet``/``orders.parquet`` of the backtest, the card
records of the same input.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from host.cli import main
from host.store import ParquetStore, load_session
from host.store.live import StoreWriteError, StoreWriter

JOURNAL_TABLES = ("journal_events", "orders", "fills")


def _new_db(pg_url) -> str:
    import psycopg

    name = f"live{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return pg_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["parquet", "postgresql"])
def location(request, tmp_path):
    """Where ``--store`` points: a folder, or a URL of a fresh PostgreSQL database."""
    if request.param == "parquet":
        return str(tmp_path / "store")
    return _new_db(request.getfixturevalue("pg_url"))


def _open(location):
    from host.store import open_store

    return open_store(location)


def _rows(store, table, where=""):
    cols = ", ".join(c for c, _ in __import__("host.store.schema", fromlist=["TABLES"])
                     .TABLES[table])
    return sorted(store.query(f"SELECT {cols} FROM {table} {where}")[1],
                  key=lambda r: tuple((x is None, x) for x in r))


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    d = tmp_path_factory.mktemp("live")
    src = d / "m.itch"
    assert main(["generate", "--messages", "8000", "--symbols", "4", "--seed", "7",
                 "--out", str(src)]) == 0
    return str(src)


def test_session_store_equals_its_outputs_and_rerun_adds_nothing(location, market, tmp_path,
                                                                 capsys):
    out = tmp_path / "session"
    args = ["session", market, "--out", str(out), "--no-progress", "--store", location]
    assert main(args) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("store ") and "fills +" in line and "fills +0," not in line
    run = (out / "run_id").read_text().strip()
    st = _open(location)
    # journal events, orders and fills: what a load of the folder afterwards makes of the
    # journals (an independent path: files read after the run), row for row
    ref = ParquetStore(tmp_path / "ref")
    load_session(ref, out)
    for t in JOURNAL_TABLES:
        got, want = _rows(st, t), _rows(ref, t)
        assert len(got) > 0 and got == want, t
    ev = st.query("SELECT journal, COUNT(*) FROM journal_events GROUP BY journal")[1]
    from host.trading.journal import read_journal

    assert dict(ev) == {"venue": len(read_journal(out / "venue.journal").events),
                        "risk": len(read_journal(out / "risk.journal").events)}
    # market data: the card records of the run (model card), in order
    from host.feed.capture import load_feed
    from host.trading.session import model_records, select_locates

    feed = load_feed(market)
    recs = model_records(feed, select_locates(feed))
    bbo = st.query("SELECT msg_index, ts, locate, bid_px, bid_sz, ask_px, ask_sz FROM md_bbo "
                   "WHERE capture_id = :c ORDER BY msg_index", {"c": run})[1]
    assert len(bbo) == len(recs)
    a = np.array(bbo, np.int64)
    assert (a[:, 0] == np.arange(len(recs))).all()
    for i, c in enumerate(("ts_event", "locate", "bid_px", "bid_sz", "ask_px", "ask_sz"), 1):
        assert (a[:, i] == recs[c].astype(np.int64)).all(), c
    assert st.query("SELECT capture_id, events FROM sessions")[1] == [(run, len(_rows(
        ref, "journal_events")))]
    counts = {t: st.query(f"SELECT COUNT(*) FROM {t}")[1][0][0] for t in
              ("md_bbo", "md_symbols", "captures", *JOURNAL_TABLES)}
    st.close()
    ref.close()
    # the same run again: same run id, nothing new
    assert main(args) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert f"run {run}:" in line and "+1" not in line and set(
        x.split(" +")[1].rstrip(",") for x in line.split(": ", 2)[2].split(" (")[0]
        .split(", ")) == {"0"}
    st = _open(location)
    assert counts == {t: st.query(f"SELECT COUNT(*) FROM {t}")[1][0][0] for t in counts}
    # and a load of the folder afterwards neither (the folder's run_id file)
    assert set(load_session(st, out).values()) == {0}
    st.close()


class _Watched(StoreWriter):
    """Checks, half way through the card records, that batches already landed."""

    seen_during: dict | None = None
    half = 0

    def market(self, first, records):
        super().market(first, records)
        if self.seen_during is None and first >= self.half:
            t0 = time.monotonic()
            while not self.written.get("journal_events") and time.monotonic() - t0 < 20:
                time.sleep(0.01)
            self.seen_during = dict(self.written)


def test_session_batches_land_while_it_runs(location, market, tmp_path):
    from host.trading.session import run_session

    w = _Watched(_open(location), "live-run", str(tmp_path / "s"), batch_rows=300,
                 flush_s=0.05, queue_items=4)
    w.half = 2000
    run_session(market, out_dir=tmp_path / "s", export=False, store_sink=w)
    w.finish_session(tmp_path / "s")
    written = w.close()
    assert w.seen_during and w.seen_during["journal_events"] > 0  # before the run ended
    assert w.seen_during["journal_events"] < written["journal_events"]
    assert w.batches > 10
    ref = ParquetStore(tmp_path / "ref")
    full = load_session(ref, tmp_path / "s")  # the run_id file: the same session id
    assert {t: written[t] for t in JOURNAL_TABLES} == {t: full[t] for t in JOURNAL_TABLES}
    ref.close()


def test_backtest_store_equals_its_outputs(location, tmp_path, capsys):
    src = tmp_path / "m80.itch"
    assert main(["generate", "--messages", "70000", "--symbols", "3", "--seed", "3",
                 "--out", str(src)]) == 0
    out = tmp_path / "bt"
    args = ["backtest", str(src), "--strategy", "mm", "--out", str(out), "--no-progress",
            "--no-plots", "--store", location]
    assert main(args) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("store ") and "fills +0" not in line
    run = (out / "run_id").read_text().strip()
    st = _open(location)
    fills = pq.read_table(out / "fills.parquet").to_pydict()
    got = st.query("SELECT seq, ts, order_id, instrument, side, px, qty, liquidity FROM fills "
                   "WHERE session_id = :s ORDER BY seq", {"s": run})[1]
    assert len(got) == len(fills["ts"]) > 0
    side = {1: "B", 2: "S"}
    want = [(i + 1, fills["ts"][i], fills["order_id"][i], fills["instrument"][i],
             side[fills["side"][i]], fills["price"][i], fills["qty"][i],
             "maker" if fills["maker"][i] else "taker") for i in range(len(got))]
    assert [tuple(r) for r in got] == want
    orders = pq.read_table(out / "orders.parquet").to_pydict()
    got = st.query("SELECT ts, order_id, instrument, price, qty FROM orders "
                   "WHERE session_id = :s ORDER BY seq", {"s": run})[1]
    assert [tuple(r) for r in got] == list(zip(orders["ts"], orders["order_id"],
                                               orders["instrument"], orders["price"],
                                               orders["qty"], strict=True))
    n_bbo = st.query("SELECT COUNT(*) FROM md_bbo WHERE capture_id = :s", {"s": run})[1][0][0]
    assert n_bbo > 0
    st.close()
    assert main(args) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert "fills +0" in line and "orders +0" in line and "md_bbo +0" in line


@pytest.mark.parametrize("loop", ["fast", "python"])
def test_backtest_batches_during_the_run(tmp_path, monkeypatch, loop):
    from host.trading.backtest.run import run_backtest

    monkeypatch.setenv("ITCHFPGA_BACKTEST", loop)

    src = tmp_path / "m.itch"
    assert main(["generate", "--messages", "70000", "--symbols", "3", "--seed", "3",
                 "--out", str(src)]) == 0
    calls = []

    class W(StoreWriter):
        def backtest_progress(self, bt):
            super().backtest_progress(bt)
            calls.append(self.items)

    w = W(ParquetStore(tmp_path / "st"), "bt", str(tmp_path / "o"), flush_s=0.01)
    res, _, _ = run_backtest(str(src), "mm", store_sink=w)
    assert res.path == loop
    written = w.close()
    assert len(calls) >= 2 and calls[0] > 1  # items queued before the end of the run
    assert written["fills"] == len(res.fills) and written["orders"] == len(res.orders)


# ---------------------------------------------------------------- errors


def test_unreachable_database_is_one_line(market, tmp_path, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    url = f"postgresql://postgres@127.0.0.1:{port}/x"
    for cmd in (["session", market, "--out", str(tmp_path / "s")],
                ["backtest", market, "--strategy", "mm", "--out", str(tmp_path / "b")]):
        assert main([*cmd, "--no-progress", "--store", url]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: cannot open 127.0.0.1:{port}/x") and \
            err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "s" / "venue.journal").exists()  # nothing ran


def test_store_failing_during_the_run_ends_it_cleanly(market, tmp_path, capsys, monkeypatch):
    calls = {"n": 0}
    real = StoreWriter._write

    def failing(self, table, rows):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(28, "No space left on device")
        return real(self, table, rows)

    monkeypatch.setattr(StoreWriter, "_write", failing)
    rc = main(["session", market, "--out", str(tmp_path / "s"), "--no-progress",
               "--store", str(tmp_path / "st")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "No space left on device" in err and "written before the error:" in err
    assert "captures 1" in err  # what was written is said


def test_killed_writer_connection_gives_a_clean_error(pg_url, market, tmp_path):
    """The server ends the writer's connection mid-run: the run stops with the error, and
    the session still closes both journals cleanly."""
    import psycopg

    from host.trading.session import run_session

    url = _new_db(pg_url)
    st = _open(url)
    pid = st.conn.info.backend_pid

    class Killed(StoreWriter):
        killed = False

        def market(self, first, records):
            if not self.killed and first >= 1000:
                self.killed = True
                with psycopg.connect(pg_url, autocommit=True) as c:
                    c.execute("SELECT pg_terminate_backend(%s)", (pid,))
            super().market(first, records)

    w = Killed(st, "killed", str(tmp_path / "s"), flush_s=0.01)
    with pytest.raises(StoreWriteError) as ei:
        run_session(market, out_dir=tmp_path / "s", export=False, store_sink=w)
        w.finish_session(tmp_path / "s")
        w.close()
    msg = str(ei.value)
    assert "\n" not in msg and "written before the error" in msg and "run killed" in msg
    w.abort()  # idempotent, silent
    # the journals are intact: a reopen reads them
    from host.trading.journal import read_journal

    for j in ("venue", "risk"):
        c = read_journal(tmp_path / "s" / f"{j}.journal")
        assert len(c.events) > 0 and c.clean_shutdown, j  # closed cleanly, nothing cut


def test_full_queue_blocks_the_producer_and_drops_nothing(tmp_path):
    """A slow store: the producer waits (blocked_s > 0), every item is written."""
    real = ParquetStore.write

    def slow(self, table, rows):
        time.sleep(0.02)
        return real(self, table, rows)

    st = ParquetStore(tmp_path / "st")
    st.write = slow.__get__(st)
    w = StoreWriter(st, "slow", "x", batch_rows=1, flush_s=0, queue_items=2)
    recs = np.zeros(3, __import__("hw.bbo_record", fromlist=["DTYPE"]).DTYPE)
    for i in range(40):
        recs["ts_event"] = i
        w.market(3 * i, recs)
    written = w.close()
    assert w.blocked > 0 and w.blocked_s > 0 and written["md_bbo"] == 120
    got = w.store.query("SELECT msg_index, ts FROM md_bbo ORDER BY msg_index")[1]
    assert got == [(k, k // 3) for k in range(120)]


def test_run_id_option_errors_are_one_line(market, tmp_path, capsys):
    assert main(["session", market, "--out", str(tmp_path / "s"), "--no-progress",
                 "--run-id", "abc"]) == 1
    assert capsys.readouterr().err == "error: --run-id needs --store\n"
    assert main(["session", market, "--out", str(tmp_path / "s"), "--no-progress",
                 "--store", str(tmp_path / "st"), "--run-id", "a b;"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --run-id 'a b;'") and err.count("\n") == 1


def test_explicit_run_id_keys_the_rows(market, tmp_path, capsys):
    st = str(tmp_path / "st")
    for rid in ("first", "second"):
        assert main(["session", market, "--out", str(tmp_path / rid), "--no-progress",
                     "--store", st, "--run-id", rid]) == 0
        assert f"run {rid}:" in capsys.readouterr().out
    s = _open(st)
    ids = s.query("SELECT session_id, COUNT(*) FROM fills GROUP BY session_id "
                  "ORDER BY session_id")[1]
    assert [i for i, _ in ids] == ["first", "second"] and ids[0][1] == ids[1][1] > 0
    s.close()


# ---------------------------------------------------------------- the console (serve --store)


def _console_run(location, market, out, run, *, kill_at: int):
    """A console session (``LiveSession``, model card, as fast as it goes) writing to the
    store through a :class:`StoreWriter`, with an operator kill switch at ``kill_at``
    records; returns (session, writer, what landed before the end, rows written)."""
    from host.console.live import LiveConfig, LiveSession

    w = StoreWriter(_open(location), run, str(out), source=market, batch_rows=5000,
                    flush_s=0.2)
    live = LiveSession(LiveConfig(input=market, out_dir=str(out), speed=0), store_sink=w)
    during = None
    try:
        while live.step():
            if during is None and live.pos >= kill_at:
                live.kill("strategy", 2, True)
                t0 = time.monotonic()  # batches land while the session runs
                while not w.written.get("journal_events") and time.monotonic() - t0 < 20:
                    time.sleep(0.01)
                during = dict(w.written)
    finally:
        live.stop()  # closes the journals, queues the sessions row
    return live, w, during, w.close()


def test_console_store_equals_its_journals_and_rerun_adds_nothing(location, market, tmp_path):
    out = tmp_path / "console"
    live, w, during, written = _console_run(location, market, out, "console-1", kill_at=1500)
    assert live.store_error is None and w.batches > 3
    assert 0 < during["journal_events"] < written["journal_events"]
    st = _open(location)
    ref = ParquetStore(tmp_path / "ref")
    load_session(ref, out)  # the journals read afterwards, with the run_id file's id
    for t in JOURNAL_TABLES:
        got, want = _rows(st, t), _rows(ref, t)
        assert len(got) > 0 and got == want, t
    # the operator's kill switch is in the store like every other risk event
    kinds = dict(st.query("SELECT kind_name, COUNT(*) FROM journal_events "
                          "WHERE journal = 'risk' GROUP BY kind_name")[1])
    assert kinds.get("KILL_SWITCH_ENGAGED", 0) >= 1, kinds
    bbo = np.array(st.query("SELECT msg_index, ts, locate, bid_px, ask_px FROM md_bbo "
                            "WHERE capture_id = 'console-1' ORDER BY msg_index")[1], np.int64)
    recs = live.records
    assert len(bbo) == len(recs) == written["md_bbo"]
    assert (bbo[:, 0] == np.arange(len(recs))).all()
    for i, c in enumerate(("ts_event", "locate", "bid_px", "ask_px"), 1):
        assert (bbo[:, i] == recs[c].astype(np.int64)).all(), c
    assert st.query("SELECT session_id, capture_id, events FROM sessions")[1] == [
        ("console-1", "console-1", len(_rows(ref, "journal_events")))]
    counts = {t: st.query(f"SELECT COUNT(*) FROM {t}")[1][0][0] for t in
              ("md_bbo", "md_symbols", "captures", "sessions", *JOURNAL_TABLES)}
    assert set(load_session(st, out).values()) == {0}  # a load of the folder adds nothing
    st.close()
    ref.close()
    # the same run id, the same replay and the same operator action: nothing new
    _, w2, _, again = _console_run(location, market, tmp_path / "again", "console-1",
                                   kill_at=1500)
    assert set(again.values()) == {0}, again
    st = _open(location)
    assert counts == {t: st.query(f"SELECT COUNT(*) FROM {t}")[1][0][0] for t in counts}
    st.close()


def test_console_store_failure_stops_the_replay(market, tmp_path, monkeypatch):
    """A store failing mid-run: the replay thread stops with the error (shown on the page),
    the journals close cleanly, and closing the writer raises the one-line error."""
    from host.console.live import LiveConfig, LiveSession
    from host.trading.journal import read_journal

    calls = {"n": 0}
    real = StoreWriter._write

    def failing(self, table, rows):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(28, "No space left on device")
        return real(self, table, rows)

    monkeypatch.setattr(StoreWriter, "_write", failing)
    w = StoreWriter(ParquetStore(tmp_path / "st"), "full", str(tmp_path / "c"), flush_s=0.01,
                    batch_rows=100)
    live = LiveSession(LiveConfig(input=market, out_dir=str(tmp_path / "c"), speed=0),
                       store_sink=w)
    live.start().join(timeout=120)
    assert live.store_error and "No space left on device" in live.store_error
    assert 0 < live.pos < live.n_records  # stopped early
    assert live.snapshot()["store"]["error"] == live.store_error
    live.stop()
    with pytest.raises(StoreWriteError) as ei:
        w.close()
    assert "\n" not in str(ei.value) and "written before the error" in str(ei.value)
    for j in ("venue", "risk"):
        assert read_journal(tmp_path / "c" / f"{j}.journal").clean_shutdown, j


# ---------------------------------------------------------------- sweep --store


def test_sweep_store_one_run_per_config(location, market, tmp_path, capsys):
    """``sweep --store``: each config's backtest is in the store under the run id that
    ``backtest --config C --store`` derives (its fills equal that config's fills.parquet);
    a second sweep, and that backtest, add nothing."""
    import json

    from host.store.live import run_id

    cfgs = [tmp_path / "tight.toml", tmp_path / "wide.toml"]
    cfgs[0].write_text("[strategy]\ngamma = 0.05\n")
    cfgs[1].write_text("[strategy]\ngamma = 0.5\nmin_half_spread_ticks = 2.0\n")
    out = tmp_path / "sw"
    args = ["sweep", market, "--strategy", "mm", "--config", *map(str, cfgs), "--out", str(out),
            "--store", location]
    assert main(args) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("store ")]
    assert len(lines) == 2
    table = json.loads((out / "sweep.json").read_text())
    st = _open(location)
    fills_by_run = {}
    for c in cfgs:
        rid = run_id("backtest", market, strategy="mm", config=str(c), symbols=None)
        assert table[c.stem]["store"]["run"] == rid and f"run {rid} ({c.stem})" in "\n".join(
            lines)
        assert (out / c.stem / "run_id").read_text().strip() == rid
        f = pq.read_table(out / c.stem / "fills.parquet").to_pydict()
        got = st.query("SELECT ts, order_id, px, qty FROM fills WHERE session_id = :s "
                       "ORDER BY seq", {"s": rid})[1]
        assert [tuple(r) for r in got] == list(zip(f["ts"], f["order_id"], f["price"], f["qty"],
                                                   strict=True))
        assert table[c.stem]["store"]["written"]["fills"] == len(got) == \
            table[c.stem]["n_fills"]
        fills_by_run[rid] = len(got)
    assert st.query("SELECT COUNT(*) FROM sessions")[1][0][0] == 2
    assert sum(fills_by_run.values()) > 0
    st.close()
    assert main(args) == 0  # again: nothing new
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("store ")]
    assert len(lines) == 2 and all("+1" not in x and "fills +0" in x for x in lines), lines
    assert main(["backtest", market, "--strategy", "mm", "--config", str(cfgs[0]), "--out",
                 str(tmp_path / "bt"), "--no-progress", "--no-plots", "--store", location]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert "fills +0" in line and "orders +0" in line and "sessions +0" in line, line


def test_sweep_store_errors_are_one_line(market, tmp_path, capsys):
    import socket

    c = tmp_path / "a.toml"
    c.write_text("[strategy]\ngamma = 0.05\n")
    base = ["sweep", market, "--strategy", "mm", "--config", str(c), "--out", str(tmp_path / "o")]
    assert main([*base, "--run-id", "x"]) == 1
    assert capsys.readouterr().err == "error: --run-id needs --store\n"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main([*base, "--store", f"postgresql://u@127.0.0.1:{port}/x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot open 127.0.0.1:{port}/x") and err.count("\n") == 1
    assert not (tmp_path / "o" / "sweep.json").exists()  # nothing ran
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.toml").write_text("[strategy]\ngamma = 0.5\n")
    assert main([*base[:5], str(c), str(d / "a.toml"), "--out", str(tmp_path / "o"),
                 "--store", str(tmp_path / "st")]) == 1
    assert "same name" in capsys.readouterr().err
    assert main([*base, "--store", str(tmp_path / "st"), "--run-id", "ok", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "run ok-a (a)" in out
