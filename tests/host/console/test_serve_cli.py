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


def test_serve_writes_the_session_to_a_store(market, tmp_path):
    import time

    import httpx

    from host.store import ParquetStore

    from .conftest import free_port

    port = free_port()
    store = tmp_path / "store"
    p = subprocess.Popen([sys.executable, "-m", "host", "serve", "--replay", market,
                          "--port", str(port), "--speed", "0", "--out", str(tmp_path / "j"),
                          "--store", str(store)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        assert first.startswith("store ") and "md_messages +6000" in first
        for _ in range(3):  # console URL, token, URL with the token
            p.stdout.readline()
        for _ in range(300):  # until the replay (speed 0) has finished
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/state").json()["finished"]:
                    break
            except httpx.ConnectError:
                pass
            time.sleep(0.1)
    finally:
        p.terminate()
        out, err = p.communicate(timeout=30)
    assert "store: session" in out and "fills +" in out, (out, err)
    st = ParquetStore(store)
    assert st.query("SELECT COUNT(*) FROM fills")[1][0][0] > 0
    st.close()
