"""Append-only audit journal of the matching engine: records, recovery, export.

See ``docs/matching.md`` (journal format byte by byte, durability policies, recovery).
"""

from host.trading.journal.crc32c import crc32c
from host.trading.journal.export import EXPORT_COLUMNS, export_csv, export_parquet, order_records
from host.trading.journal.journal import (
    AcknowledgedDataLostError,
    AckState,
    DurabilityPolicy,
    JournalConfig,
    JournalContents,
    JournalCorruptError,
    JournalWriteError,
    JournalWriter,
    SalvageReport,
    ack_path,
    read_ack,
    read_journal,
)
from host.trading.journal.recovery import (
    JournaledEngine,
    RecoveryReport,
    ReplayMismatchError,
    load_snapshot,
    recover,
    save_snapshot,
)

__all__ = [
    "crc32c", "DurabilityPolicy", "JournalConfig", "JournalContents", "JournalCorruptError",
    "JournalWriter", "read_journal", "JournaledEngine", "RecoveryReport",
    "ReplayMismatchError", "recover", "save_snapshot", "load_snapshot", "order_records",
    "export_csv", "export_parquet", "EXPORT_COLUMNS", "AcknowledgedDataLostError",
    "AckState", "JournalWriteError", "SalvageReport", "ack_path", "read_ack",
]
