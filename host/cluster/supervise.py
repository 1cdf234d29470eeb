"""Restart dead replicas of a local cluster, as hot standbys, with a bounded restart rate.

``python -m host.cluster.supervise --dir DIR`` (``cluster up`` starts it) watches the replica
processes recorded in ``DIR/cluster.json``. A replica whose process is gone (SIGKILL, a
crash, a fenced primary's exit status 3) is started again **as a standby** in the same
folder, with ``--alone-takeover``: it replays its shard's log from the start (its SETUP
rewrites its journals), follows the log, and takes over only when no primary heartbeats — a
restarted replica never comes back as a second primary, and if a paused old primary is still
around, the epoch fencing of :func:`host.cluster.shard.serve` holds as for any standby.

Restart rate: the first restart of a slot is immediate; while a slot has restarts within
the last ``window_s`` seconds, the next one waits ``backoff_s * 2**(n-1)`` (at most
``max_backoff_s``); after ``max_restarts`` within the window the slot is left down and marked
``crash-loop`` (``cluster status`` says so). The supervisor is the only writer of
``cluster.json`` once it runs (new pids, restarts, slot states); ``cluster down`` stops it
first.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

__all__ = ["Supervisor", "main", "STATE", "write_state"]

STATE = "cluster.json"


def write_state(d, state: dict) -> None:
    """Replace ``d/cluster.json`` atomically (a reader never sees half a file)."""
    p = Path(d) / STATE
    tmp = p.with_name(p.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, p)


def _alive(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"host.cluster.shard" in cmd  # a zombie has an empty command line


class Supervisor:
    """Watch and restart the replicas of the cluster recorded in ``d``.

    Parameters
    ----------
    d : path
        The cluster folder (``cluster.json``).
    max_restarts, window_s : int, float
        At most ``max_restarts`` restarts of one slot within ``window_s`` seconds; then the
        slot is marked ``crash-loop`` and left down.
    backoff_s, max_backoff_s : float
        Delay before the n-th restart within the window (n >= 2): ``backoff_s * 2**(n-2)``,
        capped.
    """

    def __init__(self, d, *, max_restarts: int = 5, window_s: float = 60.0,
                 backoff_s: float = 1.0, max_backoff_s: float = 30.0, poll_s: float = 0.05,
                 log=print) -> None:
        self.d = Path(d)
        self.max_restarts, self.window_s = max_restarts, window_s
        self.backoff_s, self.max_backoff_s, self.poll_s = backoff_s, max_backoff_s, poll_s
        self.log = log
        self.children: dict[int, object] = {}  # pid -> Popen of the replicas we started
        self.stop = False

    def _exit_status(self, pid: int):
        p = self.children.pop(pid, None)
        if p is not None:
            return p.wait()
        try:  # a replica `up` started in this process (tests): reap it if it is ours
            _, st = os.waitpid(pid, os.WNOHANG)
            return os.waitstatus_to_exitcode(st) if st else None
        except ChildProcessError:
            return None

    def step(self, state: dict, now: float) -> bool:
        """One pass over the slots; True if ``state`` changed."""
        from host.cluster.local import spawn_replica

        changed = False
        for r in state["replicas"]:
            slot = r.setdefault("supervisor", {"state": "running", "restarts": []})
            if slot["state"] == "crash-loop":
                continue
            if slot["state"] == "running":
                if _alive(r["pid"]):
                    continue
                code = self._exit_status(r["pid"])
                recent = [t for t in slot["restarts"] if now - t < self.window_s]
                slot["restarts"] = recent
                slot["last_exit"] = code
                slot["died_at"] = time.time()
                if len(recent) >= self.max_restarts:
                    slot["state"] = "crash-loop"
                    self.log(f"shard {r['shard']} pid {r['pid']}: exited ({code}); "
                             f"{len(recent)} restarts in the last {self.window_s:g} s: "
                             "crash loop, not restarted")
                else:
                    delay = 0.0 if not recent else min(
                        self.max_backoff_s, self.backoff_s * 2 ** (len(recent) - 1))
                    slot["state"], slot["due"] = "backoff", now + delay
                    self.log(f"shard {r['shard']} pid {r['pid']}: exited ({code}); restart "
                             f"as standby in {delay:.1f} s")
                changed = True
            if slot["state"] == "backoff" and now >= slot["due"]:
                p = spawn_replica(state["url"], r["shard"], r["dir"], "standby",
                                  takeover_ms=state.get("takeover_ms", 500),
                                  extra=("--alone-takeover",) + (
                                      ("--key-file", state["key_file"])
                                      if state.get("key_file") else ()))
                self.children[p.pid] = p
                slot["restarts"].append(now)
                slot["state"] = "running"
                slot.pop("due", None)
                r["pid"], r["role"] = p.pid, "standby"
                r["restarted"] = r.get("restarted", 0) + 1
                slot["restarted_at"] = time.time()
                self.log(f"shard {r['shard']}: restarted as standby, pid {p.pid}")
                changed = True
        return changed

    def run(self) -> int:
        """Until SIGTERM/SIGINT; returns 0."""
        def _stop(*_):
            self.stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        state = json.loads((self.d / STATE).read_text())
        state["supervisor_pid"] = os.getpid()
        write_state(self.d, state)
        self.log(f"supervising {len(state['replicas'])} replicas")
        while not self.stop:
            if self.step(state, time.monotonic()):
                write_state(self.d, state)
            time.sleep(self.poll_s)
        return 0  # the replicas keep running (their own sessions); `down` stops them


def main(argv=None) -> int:
    """``python -m host.cluster.supervise --dir DIR [--max-restarts 5] [--window-s 60]
    [--backoff-s 1] [--max-backoff-s 30]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m host.cluster.supervise")
    p.add_argument("--dir", required=True)
    p.add_argument("--max-restarts", type=int, default=5)
    p.add_argument("--window-s", type=float, default=60.0)
    p.add_argument("--backoff-s", type=float, default=1.0)
    p.add_argument("--max-backoff-s", type=float, default=30.0)
    a = p.parse_args(argv)
    return Supervisor(a.dir, max_restarts=a.max_restarts, window_s=a.window_s,
                      backoff_s=a.backoff_s, max_backoff_s=a.max_backoff_s,
                      log=lambda s: print(time.strftime("%H:%M:%S ") + s, flush=True)).run()


if __name__ == "__main__":
    raise SystemExit(main())
