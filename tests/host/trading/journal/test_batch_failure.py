"""An exception in the middle of a journaled batch (issue 15): the journal holds exactly what
the engine applied, and recovery reproduces it (no ReplayMismatchError)."""

from __future__ import annotations

import numpy as np
import pytest

from host.trading.journal import (
    JournalConfig,
    JournaledEngine,
    JournalWriteError,
    read_journal,
    recover,
)
from host.trading.matching import MatchingEngine, core
from host.trading.matching.workload import WorkloadSpec, mixed_workload, workload_config

SPEC = WorkloadSpec(n_resting=300, n_instruments=2)


def _cmds(n: int = 1500) -> np.ndarray:
    pre, ops = mixed_workload(n, SPEC, seed=7)
    return np.concatenate([pre, ops])


def _fail_after(monkeypatch, k: int, exc: BaseException) -> None:
    """The engine's kernel applies ``k`` more commands, then the next call raises ``exc``
    (what a MemoryError growing the event buffer, or a ^C between calls, does)."""
    real = core.process
    state = {"calls": 0}

    def flaky(C, start, E, *rest):
        state["calls"] += 1
        if state["calls"] == 1:
            i, n, _ = real(C[:start + k], start, E, *rest)
            return i, n, 0
        raise exc

    monkeypatch.setattr(core, "process", flaky)


@pytest.mark.parametrize("exc", [MemoryError("injected"), KeyboardInterrupt()])
@pytest.mark.parametrize("k", [0, 1, 137])
def test_exception_mid_batch_journals_what_was_applied(tmp_path, monkeypatch, exc, k) -> None:
    cmds = _cmds()
    cfg = workload_config(SPEC)
    p = tmp_path / "j"
    je, _ = JournaledEngine.open(p, config=cfg)
    je.process(cmds[:500])
    with monkeypatch.context() as m:
        _fail_after(m, k, exc)
        with pytest.raises(type(exc)):
            je.process(cmds[500:1000])
    assert je.engine.command_seq == 500 + k  # the engine did apply k commands
    assert je.engine.interrupted is not None or k == 0
    je.process(cmds[1000:])  # the caller carries on
    expect = je.engine.state_hash()
    je.close()

    applied = np.concatenate([cmds[:500 + k], cmds[1000:]])
    j = read_journal(p)
    assert np.array_equal(j.commands, applied)
    assert np.array_equal(j.events["seq"], np.arange(1, je.engine.event_seq + 1))
    eng, rep = recover(p, config=cfg)  # replays and checks every event
    ref = MatchingEngine(cfg)
    ref.process(applied)
    assert eng.state_hash() == expect == ref.state_hash()
    assert rep.events_checked == je.engine.event_seq
    je2, _ = JournaledEngine.open(p, config=cfg)
    assert je2.engine.state_hash() == expect
    je2.close()


def test_failed_commit_stops_the_journaled_engine(tmp_path, monkeypatch) -> None:
    cmds = _cmds(300)
    cfg = workload_config(SPEC)
    p = tmp_path / "j"
    je, _ = JournaledEngine.open(p, config=cfg, journal_config=JournalConfig())
    je.process(cmds[:200])
    hash200 = je.engine.state_hash()

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr("host.trading.journal.journal.os.fsync", disk_full)
        with pytest.raises(OSError):
            je.process(cmds[200:250])
    # the engine is now ahead of the journal: no more commands through this object
    with pytest.raises(JournalWriteError):
        je.process(cmds[250:])
    je.close()
    # the failed group was never acknowledged: it goes as a torn tail (or was cut already)
    eng, rep = recover(p, config=cfg)
    assert eng.command_seq == 200 and eng.state_hash() == hash200
