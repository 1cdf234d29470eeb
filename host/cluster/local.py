"""Replica processes on this machine: start them, wait for them, read their heartbeats."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from host.cluster.client import connect

__all__ = ["spawn_replica", "heartbeats", "wait_ready", "reset_logs"]


async def reset_logs(url: str, shards) -> int:
    """Delete the replicated input journals of ``shards`` (a new session starts from an
    empty log; a replica started on an old log replays it). Returns how many existed."""
    from nats.js.errors import NotFoundError

    from host.cluster.shard import log_stream

    nc = await connect(url)
    n = 0
    try:
        js = nc.jetstream()
        for k in shards:
            try:
                await js.delete_stream(log_stream(k)[0])
                n += 1
            except NotFoundError:
                pass
    finally:
        await nc.close()
    return n


def spawn_replica(url: str, shard: int, out_dir, role: str = "primary", *,
                  takeover_ms: float = 500, heartbeat_ms: float = 50,
                  log_path=None, extra=()) -> subprocess.Popen:
    """Start ``python -m host.cluster.shard`` (its own session: a signal to the caller's
    process group does not reach it); stdout/stderr to ``log_path`` (default
    ``out_dir/replica.log``); ``extra``: further arguments (``--alone-takeover``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = open(log_path or out / "replica.log", "ab")  # noqa: SIM115 (the child owns it)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "host.cluster.shard", "--nats", url, "--shard", str(shard),
             "--dir", str(out), "--role", role, "--takeover-ms", str(takeover_ms),
             "--heartbeat-ms", str(heartbeat_ms), *extra],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    finally:
        log.close()


async def heartbeats(url: str, seconds: float = 0.5) -> dict:
    """``{pid: last heartbeat}`` of every replica heard on ``cluster.hb.>`` for ``seconds``."""

    nc = await connect(url, timeout=2)
    seen: dict = {}

    async def cb(msg):
        try:
            hb = json.loads(msg.data)
            seen[hb["pid"]] = hb
        except (ValueError, KeyError):
            pass

    await nc.subscribe("cluster.hb.>", cb=cb)
    await asyncio.sleep(seconds)
    await nc.close()
    return seen


async def wait_ready(url: str, want: dict, timeout: float = 120.0) -> dict:
    """Wait until, for every shard ``k``, the roles ``want[k]`` (e.g. ``["primary",
    "standby"]``) are heard; returns the heartbeats ``{pid: hb}``."""
    end = time.monotonic() + timeout
    while True:
        seen = await heartbeats(url, 0.3)
        have: dict = {}
        for hb in seen.values():
            have.setdefault(hb["shard"], []).append(hb["role"])
        if all(sorted(have.get(k, [])) == sorted(r) for k, r in want.items()):
            return seen
        if time.monotonic() > end:
            raise TimeoutError(f"replicas not ready after {timeout} s: heard {have}")
