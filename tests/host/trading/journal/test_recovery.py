"""Snapshot + journal replay, and the SIGKILL crash test with a real child process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from host.trading.journal import (
    JournalConfig,
    JournaledEngine,
    JournalWriter,
    ReplayMismatchError,
    ack_path,
    crc32c,
    read_journal,
    recover,
)
from host.trading.journal import format as fmt
from host.trading.journal.crashchild import crash_commands, crash_config
from host.trading.matching import MatchingEngine, Side, SubmitOrder
from host.trading.matching.workload import WorkloadSpec, mixed_workload, workload_config

ROOT = Path(__file__).resolve().parents[4]
SPEC = WorkloadSpec(n_resting=500, n_instruments=2)


def _cmds(seed=1, n=3000):
    pre, ops = mixed_workload(n, SPEC, seed=seed)
    return np.concatenate([pre, ops])


def test_snapshot_plus_replay_equals_full_state(tmp_path) -> None:
    cmds = _cmds()
    je, rep = JournaledEngine.open(tmp_path / "j", config=workload_config(SPEC))
    assert rep is None
    for part in np.array_split(cmds[:2000], 5):
        je.process(part)
    je.snapshot(tmp_path / "snap.npz")
    for part in np.array_split(cmds[2000:], 3):
        je.process(part)
    expect = je.engine.state_hash()
    je.close()
    ref = MatchingEngine(workload_config(SPEC))
    ref.process(cmds)
    assert ref.state_hash() == expect
    eng, rep = recover(tmp_path / "j", snapshot_path=tmp_path / "snap.npz")
    assert eng.state_hash() == expect
    assert rep.commands_replayed == len(cmds) - 2000 and rep.events_checked > 0
    eng2, rep2 = recover(tmp_path / "j", config=workload_config(SPEC))
    assert eng2.state_hash() == expect and rep2.commands_replayed == len(cmds)
    marks = read_journal(tmp_path / "j").marks
    assert (marks["kind"] == fmt.MARK_SNAPSHOT).sum() == 1
    # reopening continues where the journal ends
    je2, rep3 = JournaledEngine.open(tmp_path / "j", config=workload_config(SPEC),
                                     snapshot_path=tmp_path / "snap.npz")
    assert je2.engine.state_hash() == expect and rep3.command_seq == len(cmds)
    ev = je2.submit(SubmitOrder(10**9, 1, 1, Side.BUY, 1, 10_000))
    assert ev[0].seq == je2.engine.event_seq - len(ev) + 1
    je2.close()
    assert recover(tmp_path / "j", config=workload_config(SPEC))[0].state_hash() == (
        je2.engine.state_hash())


def test_replay_mismatch_is_detected(tmp_path) -> None:
    cmds = _cmds(n=500)
    je, _ = JournaledEngine.open(tmp_path / "j", config=workload_config(SPEC))
    je.process(cmds)
    je.close()
    # rewrite one event record's payload with a *valid* CRC: only the replay check can see it
    j = read_journal(tmp_path / "j")
    off = int(j.record_offset[j.record_type == 2][10])
    raw = bytearray((tmp_path / "j").read_bytes())
    raw[off + 40 + 64] ^= 1  # last_qty of that event
    c = crc32c(bytes(raw[off:off + 4]), crc32c(bytes(raw[off + 8:off + 160])))
    raw[off + 4:off + 8] = c.to_bytes(4, "little")
    (tmp_path / "j").write_bytes(bytes(raw))
    with pytest.raises(ReplayMismatchError):
        recover(tmp_path / "j", config=workload_config(SPEC))
    eng, rep = recover(tmp_path / "j", config=workload_config(SPEC), verify=False)
    assert rep.events_checked == 0 and eng.command_seq == len(cmds)


def test_torn_tail_recovers_every_complete_batch(tmp_path) -> None:
    cmds = _cmds(n=1000)
    p = tmp_path / "j"
    je, _ = JournaledEngine.open(p, config=workload_config(SPEC))
    je.process(cmds[:1000])
    hash_1000 = je.engine.state_hash()
    acked = open(ack_path(p), "rb").read()
    je.process(cmds[1000:])
    je.close()
    # the process died after writing the second batch, before acknowledging it
    open(ack_path(p), "wb").write(acked)
    j = read_journal(p)
    # cut inside the first command record of the second batch
    first2 = int(j.record_offset[j.record_type == 1][1000])
    with open(p, "r+b") as f:
        f.truncate(first2 + 50)
    eng, rep = recover(p, config=workload_config(SPEC))
    assert rep.torn_bytes == 50 and eng.command_seq == 1000 and eng.state_hash() == hash_1000


def _warm_kernels(tmp_path: Path) -> None:
    """Compile (or load) every kernel the child needs, so it starts fast."""
    cmds = crash_commands(0, 100)
    je, _ = JournaledEngine.open(tmp_path / "warm", config=crash_config(),
                                 journal_config=JournalConfig())
    je.process(cmds)
    je.close()
    recover(tmp_path / "warm", config=crash_config())


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_sigkill_crash_recovers_acknowledged_commands(tmp_path, seed) -> None:
    _warm_kernels(tmp_path)
    rng = random.Random(seed)
    n_ops, batch = 300_000, 500
    cmds = crash_commands(seed, n_ops)
    path = tmp_path / "crash.jrnl"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen(
        [sys.executable, "-m", "host.trading.journal.crashchild", str(path), str(seed), str(n_ops),
         str(batch), "3000"], stdout=subprocess.PIPE, cwd=ROOT, env=env, text=True)
    seen = int(child.stdout.readline())  # first durable batch
    time.sleep(rng.uniform(0.0, 0.3))  # then anywhere in the run, often in a write
    os.kill(child.pid, signal.SIGKILL)
    rest = child.stdout.read()  # acknowledgements the child printed before it died
    child.wait()
    assert child.returncode == -signal.SIGKILL
    acks = [seen] + [int(x) for x in rest.split() if x.isdigit()]
    acked = max(acks)
    assert acked < len(cmds), "the kill came after the end of the run"

    eng, rep = recover(path, config=crash_config())  # also checks the replayed events
    n = eng.command_seq
    print(f"seed {seed}: acked {acked}, recovered {n}, torn bytes {rep.torn_bytes}, "
          f"unjournaled events {len(rep.unjournaled)}")
    # every acknowledged command is kept; a group commit is all or nothing, so at most the
    # one batch in flight (written, not yet acknowledged) is extra
    assert n in (acked, min(acked + batch, len(cmds)))
    assert len(rep.unjournaled) == 0
    ref = MatchingEngine(crash_config())
    ref.process(cmds[:acked])
    if n == acked:
        assert eng.state_hash() == ref.state_hash()
    else:  # the in-flight batch reached the disk before the kill: replay it too
        ref.process(cmds[acked:n])
        assert eng.state_hash() == ref.state_hash()

    # restart: a new child opens the journal (dropping any torn tail) and finishes the run
    out = subprocess.run(
        [sys.executable, "-m", "host.trading.journal.crashchild", str(path), str(seed), str(n_ops),
         str(batch)], capture_output=True, cwd=ROOT, env=env, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "done"
    full = MatchingEngine(crash_config())
    full.process(cmds)
    final, rep2 = recover(path, config=crash_config())  # every event journaled exactly once
    assert rep2.torn_bytes == 0 and final.state_hash() == full.state_hash()
    assert len(rep2.unjournaled) == 0
    j = read_journal(path)
    assert np.array_equal(j.events["seq"], np.arange(1, full.event_seq + 1))


def test_writer_refuses_foreign_file(tmp_path) -> None:
    p = tmp_path / "x"
    p.write_bytes(b"hello world, not a journal" * 4)
    with pytest.raises(ValueError):
        JournalWriter(p)
