"""``python -m host serve``: arguments, defaults, errors as one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from host.cli import _parser, main


def test_binds_loopback_by_default():
    a = _parser().parse_args(["serve", "--replay", "x.itch"])
    assert a.host == "127.0.0.1" and a.port == 8000 and a.token is None


def test_replay_or_session_exactly_one(capsys):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["serve", "--replay", "a", "--session", "b"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve"])
    capsys.readouterr()


@pytest.mark.parametrize("args, msg", [
    (["--replay", "/nonexistent.itch"], "/nonexistent.itch"),
    (["--speed", "-1"], "--speed"),
    (["--speed", "nan"], "--speed"),
    (["--port", "70000"], "--port"),
    (["--hz", "0"], "--hz"),
    (["--depth", "0"], "--depth"),
    (["--token", "short"], "16 characters"),
    (["--card", "nope"], "unknown card"),
])
def test_bad_arguments_are_one_line(market, capsys, args, msg):
    from .conftest import free_port

    argv = ["serve", "--replay", market, "--port", str(free_port()), *args]
    if args[0] == "--replay":
        argv = ["serve", *args]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and err.count("\n") == 1


def test_a_port_in_use_is_one_line(market, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--replay", market, "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot serve on 127.0.0.1:{port}") and err.count("\n") == 1


def test_serve_prints_the_url_and_token_and_serves(market, tmp_path):
    from .conftest import free_port

    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "host", "serve", "--replay", market,
                          "--port", str(port), "--speed", "0", "--out", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [p.stdout.readline() for _ in range(3)]
        assert lines[0].startswith(f"console: http://127.0.0.1:{port}/")
        token = lines[1].split(": ", 1)[1].strip()
        assert len(token) >= 16 and f"#token={token}" in lines[2]
        import time

        import httpx

        for _ in range(100):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/auth",
                              headers={"X-Console-Token": token})
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert r.json() == {"actions": True}
    finally:
        p.terminate()
        p.wait(timeout=20)


def _serve_to_store(market, out, store, *extra):
    """``serve --replay --speed 0 --store``, stopped (SIGTERM) once the replay finished;
    returns its stdout and stderr."""
    import time

    import httpx

    from .conftest import free_port

    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "host", "serve", "--replay", market,
                          "--port", str(port), "--speed", "0", "--out", str(out),
                          "--store", str(store), *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("console: ")
        for _ in range(600):  # until the replay (speed 0) has finished
            try:
                s = httpx.get(f"http://127.0.0.1:{port}/api/state").json()
                if s["finished"]:
                    assert s["store"]["run"] and s["store"]["error"] is None
                    break
            except httpx.ConnectError:
                pass
            time.sleep(0.1)
    finally:
        p.terminate()
        out_, err = p.communicate(timeout=60)
    # uvicorn shuts down cleanly, then re-raises the signal it caught
    assert p.returncode in (0, -15) and "Traceback" not in err, (out_, err)
    return out_, err


def _written(line: str) -> dict:
    # "store DIR: run ID: t +n, ... (k batches; producer blocked x s)"
    body = line.split(": ", 2)[2].split(" (")[0]
    return {t: int(n.replace(",", "")) for t, n in (x.split(" +") for x in body.split(", "))}


def test_serve_writes_the_session_to_a_store(market, tmp_path):
    """The console writes through the same StoreWriter as ``session --store``: its rows equal
    a load of its journals afterwards; with the same --run-id a second replay adds nothing."""
    from host.store import ParquetStore, load_session

    store = tmp_path / "store"
    out, err = _serve_to_store(market, tmp_path / "j", store, "--run-id", "console-a")
    line = [x for x in out.splitlines() if x.startswith("store ")]
    assert len(line) == 1 and ": run console-a: " in line[0], (out, err)
    w = _written(line[0])
    assert w["fills"] > 0 and w["md_bbo"] > 0 and w["sessions"] == 1
    assert (tmp_path / "j" / "run_id").read_text().strip() == "console-a"
    st = ParquetStore(store)
    n = {t: st.query(f"SELECT COUNT(*) FROM {t}")[1][0][0] for t in w}
    assert n == w  # every row the line reports is in the store, and nothing else
    ref = ParquetStore(tmp_path / "ref")
    full = load_session(ref, tmp_path / "j")  # the journals, read after the run
    for t in ("journal_events", "orders", "fills"):
        assert full[t] == w[t], t
    assert set(load_session(st, tmp_path / "j").values()) == {0}
    st.close()
    ref.close()
    out, err = _serve_to_store(market, tmp_path / "j2", store, "--run-id", "console-a")
    line = [x for x in out.splitlines() if x.startswith("store ")]
    assert set(_written(line[0]).values()) == {0}, line


def test_serve_store_run_ids_are_new_without_run_id(market, tmp_path):
    """Without --run-id each console run is its own session in the store (the operator's
    actions make runs differ): two replays give two sessions with the same fills each."""
    from host.store import ParquetStore

    store = tmp_path / "store"
    for k in range(2):
        _serve_to_store(market, tmp_path / f"j{k}", store)
    st = ParquetStore(store)
    ids = st.query("SELECT session_id, COUNT(*) FROM fills GROUP BY session_id")[1]
    assert len(ids) == 2 and ids[0][1] == ids[1][1] > 0
    assert sorted(r[0] for r in ids) == sorted(
        (tmp_path / f"j{k}" / "run_id").read_text().strip() for k in range(2))
    st.close()


def test_serve_unreachable_store_is_one_line(market, tmp_path, capsys):
    import socket

    from .conftest import free_port

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["serve", "--replay", market, "--port", str(free_port()), "--out",
                 str(tmp_path / "j"), "--store", f"postgresql://u@127.0.0.1:{port}/x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot open 127.0.0.1:{port}/x") and err.count("\n") == 1
    assert not (tmp_path / "j" / "venue.journal").exists()  # nothing ran
    assert main(["serve", "--replay", market, "--run-id", "x"]) == 1
    assert capsys.readouterr().err == "error: --run-id needs --store\n"
