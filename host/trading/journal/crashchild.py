"""Child process of the crash test: journal a seeded workload, acknowledging each commit.

Usage: ``python -m host.trading.journal.crashchild JOURNAL SEED N_OPS BATCH [CHUNK_BYTES]``

Opens (or recovers) the journaled engine at ``JOURNAL`` with ``FSYNC_EACH_BATCH`` and feeds
the commands of :func:`crash_commands` from where the journal ends, ``BATCH`` at a time,
writing each commit in ``CHUNK_BYTES`` pieces (so a kill can tear a record). After each
durable commit it prints the number of commands applied so far (the acknowledgement)
and flushes stdout. The parent kills it with SIGKILL at a random point.
"""

from __future__ import annotations

import sys

import numpy as np

from host.trading.journal.journal import DurabilityPolicy, JournalConfig
from host.trading.journal.recovery import JournaledEngine
from host.trading.matching.engine import EngineConfig
from host.trading.matching.workload import WorkloadSpec, mixed_workload, workload_config

__all__ = ["crash_commands", "crash_config", "main"]

_SPEC = WorkloadSpec(n_resting=2000, n_instruments=2)


def crash_config() -> EngineConfig:
    """Engine configuration used by the crash test."""
    return workload_config(_SPEC)


def crash_commands(seed: int, n_ops: int) -> np.ndarray:
    """The deterministic command stream of the crash test."""
    pre, ops = mixed_workload(n_ops, _SPEC, seed=seed)
    return np.concatenate([pre, ops])


def main(argv: list[str]) -> int:
    """Entry point; see the module docstring."""
    path, seed, n_ops, batch = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    chunk = int(argv[4]) if len(argv) > 4 else 1 << 20
    cmds = crash_commands(seed, n_ops)
    je, _ = JournaledEngine.open(path, config=crash_config(),
                                 journal_config=JournalConfig(DurabilityPolicy.FSYNC_EACH_BATCH,
                                                             write_chunk_bytes=chunk))
    out = sys.stdout
    for i in range(je.engine.command_seq, len(cmds), batch):
        je.process(cmds[i:i + batch])
        out.write(f"{je.engine.command_seq}\n")
        out.flush()
    je.close()
    out.write("done\n")
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
