"""Fixtures of the console tests: a small generated market, a session, a served app."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="session")
def market(tmp_path_factory) -> str:
    """A small generated ITCH file (``python -m host generate``)."""
    from host.cli import main

    out = tmp_path_factory.mktemp("console") / "small.itch"
    assert main(["generate", "--messages", "6000", "--symbols", "4", "--seed", "3",
                 "--out", str(out)]) == 0
    return str(out)


@pytest.fixture
def live(market, tmp_path):
    """A :class:`LiveSession` (not started) with metrics."""
    from host.console.live import LiveConfig, LiveSession
    from host.console.metrics import ConsoleMetrics

    m = ConsoleMetrics()
    s = LiveSession(LiveConfig(input=market, out_dir=str(tmp_path / "j"), speed=0, chunk=16),
                    metrics=m)
    yield s
    s.stop()


@pytest.fixture
def client(live):
    """A Starlette TestClient on the app (the replay is stepped by the test)."""
    from starlette.testclient import TestClient

    from host.console.app import create_app

    app = create_app(live, token=TOKEN, metrics=live.metrics, hz=50, start=False,
                     allowed_hosts=("127.0.0.1", "localhost", "testserver"))  # TestClient ws
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(app, port: int):
    """Run ``app`` on uvicorn in a thread on 127.0.0.1:``port``; stop it on exit."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", ws="websockets-sansio"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not t.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(timeout=20)
