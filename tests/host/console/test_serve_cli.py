"""``python -m host serve``: arguments, defaults, errors as one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from host.cli import _parser, main


def test_binds_loopback_by_default():
    a = _parser().parse_args(["serve", "--replay", "x.itch"])
    assert a.host == "127.0.0.1" and a.port == 8000 and a.token is None


@pytest.mark.parametrize("args, msg", [
    (["--replay", "/nonexistent.itch"], "/nonexistent.itch"),
    (["--speed", "-1"], "--speed"),
    (["--speed", "nan"], "--speed"),
    (["--port", "70000"], "--port"),
    (["--hz", "0"], "--hz"),
    (["--token", "short"], "16 characters"),
    (["--card", "nope"], "unknown card"),
])
def test_bad_arguments_are_one_line(market, capsys, args, msg):
    argv = ["serve", "--replay", market, *args]
    if args[0] == "--replay":
        argv = ["serve", *args]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and err.count("\n") == 1


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
