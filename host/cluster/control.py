"""``python -m host cluster up|status|down``: a local NATS server and N shards on this machine.

``up`` starts ``nats-server -js`` (unless ``--nats URL`` names a running one) and, per shard,
a primary and optionally a hot standby (:mod:`host.cluster.shard`), each in its own session
(they outlive the command), waits until every replica heartbeats, and records the processes
in ``DIR/cluster.json``. ``status`` reads that file and listens to the heartbeats; ``down``
stops what ``up`` started (SIGTERM, after checking each pid still runs the program it
recorded).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

from host.cluster.supervise import write_state
from host.errors import UserError

__all__ = ["up", "status", "down", "cluster_url", "cluster_key"]

STATE = "cluster.json"


def _state(d) -> dict:
    p = Path(d) / STATE
    if not p.exists():
        raise UserError(f"no cluster in {d} (no {STATE}): start one with `cluster up`")
    try:
        return json.loads(p.read_text())
    except ValueError as e:
        raise UserError(f"{p}: not a cluster state file ({e})") from None


def cluster_url(d) -> str:
    """The NATS URL of the cluster recorded in ``d``."""
    return _state(d)["url"]


def cluster_key(d) -> bytes | None:
    """The request key of the cluster recorded in ``d`` (None: it has none)."""
    k = _state(d).get("key_file")
    return Path(k).read_bytes() if k else None


def _runs(pid: int, what: str) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return what in cmd


def up(d, *, shards: int, standby: bool = False, nats_url: str | None = None,
       host: str = "127.0.0.1", port: int = 0, takeover_ms: float = 500,
       timeout: float = 180.0, supervise: bool = True, max_restarts: int = 5,
       window_s: float = 60.0, backoff_s: float = 1.0) -> list[str]:
    """Start the cluster (and, with ``supervise``, :mod:`host.cluster.supervise`, which
    restarts dead replicas as standbys); lines to print."""
    from host.cluster.local import reset_logs, spawn_replica, wait_ready
    from host.cluster.server import NatsServer

    if shards < 1:
        raise UserError("--shards must be at least 1")
    d = Path(d)
    if (d / STATE).exists():
        st = json.loads((d / STATE).read_text())
        if any(_runs(r["pid"], "host.cluster.shard") for r in st["replicas"]) or (
                st.get("nats_pid") and _runs(st["nats_pid"], "nats-server")) or (
                st.get("supervisor_pid") and _runs(st["supervisor_pid"],
                                                   "host.cluster.supervise")):
            raise UserError(f"a cluster is already up in {d}: `cluster down --dir {d}` first")
    d.mkdir(parents=True, exist_ok=True)
    key_file = d / "cluster.key"  # the router signs requests with it; only it reaches shards
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
    state: dict = {"url": nats_url, "nats_pid": None, "replicas": [], "started": time.time(),
                   "takeover_ms": takeover_ms, "supervisor_pid": None,
                   "key_file": str(key_file)}
    srv = None
    if nats_url is None:
        srv = NatsServer(d / "nats", port=port, host=host).start()
        state["url"], state["nats_pid"] = srv.url, srv.proc.pid
    url = state["url"]
    want: dict = {}
    try:
        # a new session: the shards' replicated journals of an earlier one are dropped (the
        # journal files of the earlier session stay in the shard folders until a SETUP)
        asyncio.run(reset_logs(url, range(shards)))
        for k in range(shards):
            roles = ["primary"] + (["standby"] if standby else [])
            want[k] = roles
            for role in roles:
                p = spawn_replica(url, k, d / f"shard{k}-{role}", role, takeover_ms=takeover_ms,
                                  extra=("--key-file", str(key_file)))
                state["replicas"].append({"shard": k, "role": role, "pid": p.pid,
                                          "dir": str(d / f"shard{k}-{role}")})
        write_state(d, state)
        asyncio.run(wait_ready(url, want, timeout=timeout))
        if supervise:
            sup = _spawn_supervisor(d, max_restarts, window_s, backoff_s)
            end = time.monotonic() + 30
            while _state(d).get("supervisor_pid") != sup.pid:  # it took over cluster.json
                if sup.poll() is not None or time.monotonic() > end:
                    raise OSError(f"the supervisor did not start (see {d / 'supervisor.log'})")
                time.sleep(0.05)
            state["supervisor_pid"] = sup.pid
    except BaseException as e:
        if (d / STATE).exists():
            down(d, quiet=True)
        elif srv is not None:
            srv.stop()
        if isinstance(e, TimeoutError | OSError):
            raise UserError(f"cluster did not come up: {e}") from None
        raise
    return [f"nats {url}" + (f" (pid {state['nats_pid']}, store {d / 'nats'})"
                             if state["nats_pid"] else " (external)")] + [
        f"shard {r['shard']} {r['role']:>7} pid {r['pid']} journals {r['dir']}"
        for r in state["replicas"]] + (
        [f"supervisor pid {state['supervisor_pid']} log {d / 'supervisor.log'}"]
        if state["supervisor_pid"] else []) + [f"state {d / STATE}"]


def _spawn_supervisor(d: Path, max_restarts: int, window_s: float, backoff_s: float):
    import subprocess
    import sys

    log = open(d / "supervisor.log", "ab")  # noqa: SIM115 (the child owns it)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "host.cluster.supervise", "--dir", str(d),
             "--max-restarts", str(max_restarts), "--window-s", str(window_s),
             "--backoff-s", str(backoff_s)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    finally:
        log.close()


def status(d) -> list[str]:
    """What runs, as the heartbeats tell; lines to print."""
    from host.cluster.local import heartbeats

    st = _state(d)
    out = [f"nats {st['url']}: " + (
        "external" if st["nats_pid"] is None else
        f"pid {st['nats_pid']} " + ("running" if _runs(st["nats_pid"], "nats-server")
                                    else "NOT RUNNING"))]
    try:
        hb = asyncio.run(heartbeats(st["url"], 0.5))
    except Exception as e:  # server down: say so, do not raise a traceback
        hb = {}
        out.append(f"cannot listen to heartbeats: {type(e).__name__}")
    sp = st.get("supervisor_pid")
    out.append("supervisor: " + ("none (started with --no-supervise)" if not sp else
                                 f"pid {sp} " + ("running" if _runs(sp, "host.cluster.supervise")
                                                 else "NOT RUNNING")))
    for r in st["replicas"]:
        h = hb.get(r["pid"])
        alive = _runs(r["pid"], "host.cluster.shard")
        slot = r.get("supervisor", {})
        tail = ""
        if r.get("restarted"):
            code = slot.get("last_exit")
            tail = (f"; restarted {r['restarted']} time(s), last exit status "
                    + ("unknown (not the supervisor's child)" if code is None else str(code)))
        if slot.get("state") == "crash-loop":
            tail += (f"; CRASH LOOP: {len(slot['restarts'])} restarts within the supervisor's "
                     "window, no more restarts (see replica.log)")
        elif slot.get("state") == "backoff":
            tail += "; restart pending (backoff)"
        head = (f"shard {r['shard']} pid {r['pid']} (started as {r['role']}"
                + (", by the supervisor" if r.get("restarted") else "") + "): ")
        if h:
            extra = (f", took over in {h['takeover_s']:.3f} s" if h.get("takeover_s")
                     else "")
            out.append(head + f"{h['role']}, requests applied {h['applied']}, log entries "
                       f"{h['log_seq']}{extra}{tail}")
        else:
            out.append(head + ("running, no heartbeat" if alive else "DOWN") + tail)
    return out


def down(d, *, quiet: bool = False, timeout: float = 10.0) -> list[str]:
    """Stop the supervisor, the replicas, then the NATS server ``up`` started; lines to
    print."""
    st = _state(d)
    out = []
    sp = st.get("supervisor_pid")
    if sp:
        out += _stop([(sp, "host.cluster.supervise", "supervisor")], timeout)
        st = _state(d)  # the pids it restarted
    procs = [(r["pid"], "host.cluster.shard", f"shard {r['shard']} {r['role']}")
             for r in st["replicas"]]
    if st.get("nats_pid"):
        procs.append((st["nats_pid"], "nats-server", "nats-server"))
    out += _stop(procs, timeout)
    (Path(d) / STATE).unlink(missing_ok=True)
    return [] if quiet else out


def _stop(procs, timeout: float) -> list[str]:
    out = []
    for pid, what, name in procs:  # replicas first: they close their journals cleanly
        if not _runs(pid, what):
            out.append(f"{name} pid {pid}: not running")
            continue
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        while _runs(pid, what) and time.monotonic() < end:
            try:  # reap it if it is our child (the `up` of a test, not of the command line)
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        if _runs(pid, what):
            os.kill(pid, signal.SIGKILL)
            out.append(f"{name} pid {pid}: killed (no exit after SIGTERM)")
        else:
            out.append(f"{name} pid {pid}: stopped")
    return out
