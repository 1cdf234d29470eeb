"""The supervisor `cluster up` starts: dead replicas come back as standbys, caught up.

Real processes on a real nats-server: `cluster up --shards 2 --standby`; during a sharded
session a SIGKILL hits shard 0's standby and, later, shard 1's primary. The session finishes
through shard 1's standby; the supervisor restarts both dead replicas as standbys; they replay
their shard's log, and their journals hash like those of the replica that served the shard
(and like the uninterrupted in-process run). No acknowledged order lost, no fill twice, the
single-process session's fills and denials. A replica that cannot start is restarted a
bounded number of times, then reported as a crash loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from host.cluster import control
from host.cluster.local import heartbeats
from host.cluster.session import fills, run_sharded_session
from host.cluster.shard import journal_digest


def _slot(d, shard, dirname):
    st = json.loads((d / "cluster.json").read_text())
    return next(r for r in st["replicas"] if r["shard"] == shard and r["dir"].endswith(dirname))


def _wait_caught_up(url, pid, log_seq, timeout=120.0):
    """Seconds until ``pid`` heartbeats as a standby at ``log_seq`` (or None)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        hb = asyncio.run(heartbeats(url, 0.2)).get(pid)
        if hb and hb["role"] == "standby" and hb["log_seq"] >= log_seq:
            return hb
    return None


def test_supervisor_restarts_standby_and_old_primary(tmp_path, itch_day, reference, single,
                                                     warm_kernels, capsys):
    prep, ref = reference
    d = tmp_path / "c"
    control.up(d, shards=2, standby=True, backoff_s=0.2)
    try:
        st = json.loads((d / "cluster.json").read_text())
        url = st["url"]
        assert st["supervisor_pid"]
        pids = {(r["shard"], r["role"]): r["pid"] for r in st["replicas"]}
        n_chunks = -(-len(prep[1]) // 64)
        killed = {}

        def kill(name, pid):
            killed[name] = time.monotonic()
            os.kill(pid, signal.SIGKILL)

        def on_chunk(c):
            if c == n_chunks // 4:
                kill("s0 standby", pids[(0, "standby")])
            if c == n_chunks // 2:  # requests in flight a few ms later
                threading.Timer(0.005, kill, ("s1 primary", pids[(1, "primary")])).start()

        r = asyncio.run(run_sharded_session(itch_day, shards=2, transport="nats", nats_url=url,
                                            prepared=prep, on_chunk=on_chunk, timeout_s=0.2,
                                            key=control.cluster_key(d)))
        # the session: the uninterrupted run's journals, the single-process fills, none twice
        for a, b in zip(ref.summaries, r.summaries, strict=True):
            assert (a["venue_digest"], a["risk_digest"]) == (b["venue_digest"], b["risk_digest"])
        assert r.summaries[1]["venue_journal"].startswith(str(d / "shard1-standby"))
        f = fills([s["venue_journal"] for s in r.summaries])
        assert np.array_equal(f, single[1]) and len(f) > 0
        assert len(np.unique(f, axis=0)) == len(f)
        assert r.denied == single[0].denied and r.trades == single[0].trades
        # both dead replicas were restarted as standbys, caught up with the whole log
        # (including FINISH), and wrote the same journals as the replica that served
        times = {}
        for name, (k, dirname) in {"s0 standby": (0, "shard0-standby"),
                                   "s1 primary": (1, "shard1-primary")}.items():
            slot = _slot(d, k, dirname)
            assert slot["restarted"] == 1 and slot["role"] == "standby"
            assert slot["pid"] not in pids.values()
            hb = _wait_caught_up(url, slot["pid"], 1)
            assert hb is not None, f"{name} not back"
            # caught up: the same log position as the shard's primary
            end = time.monotonic() + 120
            while time.monotonic() < end:
                beats = asyncio.run(heartbeats(url, 0.2))
                prim = [h for h in beats.values() if h["shard"] == k and h["role"] == "primary"]
                mine = beats.get(slot["pid"])
                if prim and mine and mine["log_seq"] == prim[0]["log_seq"]:
                    break
            assert len(prim) == 1 and mine["role"] == "standby", beats  # one primary only
            assert mine["log_seq"] == prim[0]["log_seq"] and mine["applied"] == prim[0]["applied"]
            times[name] = slot["supervisor"]["restarted_at"] - slot["supervisor"]["died_at"]
            s = r.summaries[k]
            for j in ("venue", "risk"):
                assert journal_digest(d / dirname / f"{j}.journal") == s[f"{j}_digest"], name
        # shard 1: the old standby is primary, the restarted old primary a standby
        beats = asyncio.run(heartbeats(url, 0.3))
        roles = sorted((h["shard"], h["role"], h["dir"].rsplit("/", 1)[-1])
                       for h in beats.values())
        assert roles == [(0, "primary", "shard0-primary"), (0, "standby", "shard0-standby"),
                         (1, "primary", "shard1-standby"), (1, "standby", "shard1-primary")]
        lines = control.status(d)
        assert sum("by the supervisor" in x for x in lines) == 2, lines
        assert not any("DOWN" in x or "CRASH" in x for x in lines), lines
        # restart time: SIGKILL -> a heartbeat of the new process (warm-up, connect, replay)
        with capsys.disabled():
            print(f"\nsupervisor: death noticed -> new process started {times} s")
    finally:
        out = control.down(d)
    assert sum("stopped" in x for x in out) == 6, out  # supervisor, 4 replicas, nats


def test_restart_time(tmp_path, warm_kernels, capsys):
    """SIGKILL -> the restarted standby heartbeats, caught up (an idle shard)."""
    d = tmp_path / "c"
    control.up(d, shards=1, standby=True, backoff_s=0.2)
    try:
        st = json.loads((d / "cluster.json").read_text())
        victim = next(r for r in st["replicas"] if r["role"] == "standby")["pid"]
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        new = None
        while new is None and time.monotonic() - t0 < 120:
            p = _slot(d, 0, "shard0-standby")["pid"]
            new = p if p != victim else None
            time.sleep(0.02)
        assert new is not None
        t_spawn = time.monotonic() - t0
        hb = _wait_caught_up(st["url"], new, 1)
        t_back = time.monotonic() - t0
        assert hb is not None
        with capsys.disabled():
            print(f"\nrestart: SIGKILL -> new process {t_spawn:.3f} s; -> heartbeating "
                  f"standby, caught up {t_back:.3f} s")
    finally:
        control.down(d)


def test_crash_loop_is_bounded_and_reported(tmp_path, warm_kernels):
    """A replica that cannot start (its NATS server is gone) is restarted max_restarts times
    with growing delays, then left down and reported."""
    from host.cluster.server import free_port
    from host.cluster.supervise import write_state

    d = tmp_path / "c"
    d.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_state(d, {"url": f"nats://127.0.0.1:{free_port()}", "nats_pid": None,
                    "supervisor_pid": None, "takeover_ms": 500,
                    "replicas": [{"shard": 0, "role": "primary", "pid": dead.pid,
                                  "dir": str(d / "shard0-primary")}]})
    sup = subprocess.Popen([sys.executable, "-m", "host.cluster.supervise", "--dir", str(d),
                            "--max-restarts", "3", "--backoff-s", "0.2"],
                           stdout=open(d / "supervisor.log", "wb"), stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 180
        while time.monotonic() < end:
            r = json.loads((d / "cluster.json").read_text())["replicas"][0]
            if r.get("supervisor", {}).get("state") == "crash-loop":
                break
            time.sleep(0.1)
        slot = r["supervisor"]
        assert slot["state"] == "crash-loop" and r["restarted"] == 3
        assert slot["last_exit"] not in (0, None)
        gaps = np.diff(slot["restarts"])
        assert gaps[1] > gaps[0] - 0.05 and gaps[1] >= 0.4  # backoff: 0, 0.2, 0.4 s
        lines = control.status(d)
        assert any("CRASH LOOP" in x and "DOWN" in x for x in lines), lines
        assert "crash loop, not restarted" in (d / "supervisor.log").read_text()
    finally:
        sup.terminate()
        sup.wait(10)
