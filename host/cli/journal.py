"""``python -m host journal check|repair``: inspect and repair the trading floor's journals.

``check`` reads a journal (the venue's or the risk engine's, as ``session`` writes them) and
its acknowledgement sidecar without changing anything, and says whether every acknowledged
group is there. ``repair`` does what opening the journal for appending does: it drops a torn
tail that was never acknowledged. When acknowledged data is lost or damaged (a flipped byte in
the last COMMIT mark, a zeroed or cut tail, a cut at a group boundary) both refuse, with exit
status 1, unless ``repair --salvage`` is given: it keeps a copy of the damaged file, cuts the
journal after its last intact group and reports exactly what it cut (docs/matching.md,
"Acknowledgement semantics").
"""

from __future__ import annotations

import os
import shutil
import time

from host.errors import UserError

__all__ = ["register"]


def register(subparsers) -> None:
    """Add the ``journal`` subcommand (``check``, ``repair``) to an ``argparse`` subparsers
    object."""
    p = subparsers.add_parser(
        "journal", help="check or repair a venue / risk journal (acknowledged data is never "
        "dropped without --salvage)",
        description="Check or repair a journal written by `session` (venue.journal, "
        "risk.journal) and its .ack sidecar.")
    sub = p.add_subparsers(dest="journal_cmd", required=True)
    c = sub.add_parser("check", help="validate journals (read-only); exit 1 on damage",
                       description="Validate each journal and its acknowledgement sidecar "
                       "without modifying anything. Exit status 1 when any journal has "
                       "corrupt records or lost acknowledged data.")
    c.add_argument("paths", nargs="+", metavar="JOURNAL")
    c.set_defaults(func=_cmd_check)
    r = sub.add_parser("repair", help="drop a never-acknowledged torn tail; with --salvage "
                       "also cut lost acknowledged data (reported, original kept)",
                       description="Open the journal as an appending writer would: a torn "
                       "tail that was never acknowledged is truncated away. Damage to "
                       "acknowledged data is refused unless --salvage is given.")
    r.add_argument("path", metavar="JOURNAL")
    r.add_argument("--salvage", action="store_true",
                   help="cut the journal after its last intact group even when acknowledged "
                   "groups are lost; a copy of the damaged file is kept beside it "
                   "(JOURNAL.damaged-<time>) and the cut is reported")
    r.set_defaults(func=_cmd_repair)


def _exists(path: str) -> None:
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory, not a journal")


def _summary(path: str, j) -> str:
    ack = ("no acknowledgement sidecar (a cut at a group boundary cannot be detected)"
           if j.ack is None else
           f"acknowledged through record {j.ack.written_seq}, "
           f"{'clean shutdown' if j.ack.closed else 'NOT closed cleanly (crash or running)'}")
    torn = (f"; torn tail {j.torn_bytes} bytes never acknowledged ({j.torn_reason}), dropped "
            "by the next writer or `repair`" if j.torn_bytes else "")
    return (f"{path}: OK: {j.last_seq} records ({len(j.commands)} command, {len(j.events)} "
            f"event, {len(j.marks)} mark), {j.valid_end} bytes; {ack}{torn}")


def _cmd_check(a) -> int:
    from host.trading.journal import AcknowledgedDataLostError, JournalCorruptError, read_journal

    bad = 0
    for path in a.paths:
        _exists(path)
        try:
            j = read_journal(path)
        except AcknowledgedDataLostError as e:
            bad += 1
            print(f"{path}: DAMAGED: acknowledged data lost at byte offset {e.offset}: "
                  f"{e.reason}; acknowledged through record {e.acknowledged_seq}, intact "
                  f"through {e.recovered_seq}. `python -m host journal repair {path} "
                  "--salvage` cuts it and reports what it cut")
            continue
        except JournalCorruptError as e:
            bad += 1
            print(f"{path}: CORRUPT: {e.reason} at byte offset {e.offset}")
            continue
        except (ValueError, OSError) as e:  # not a journal at all (header), unreadable
            bad += 1
            print(f"{path}: NOT A JOURNAL: {e}")
            continue
        print(_summary(path, j))
    if bad:
        print(f"{bad} of {len(a.paths)} journals failed the check")
    return 1 if bad else 0


def _cmd_repair(a) -> int:
    from host.trading.journal import (
        AcknowledgedDataLostError,
        JournalCorruptError,
        JournalWriter,
        read_journal,
    )

    path = a.path
    _exists(path)
    try:
        j = read_journal(path, salvage=a.salvage)
    except AcknowledgedDataLostError as e:
        raise UserError(f"{path}: acknowledged data lost at byte offset {e.offset}: "
                        f"{e.reason}; nothing changed (--salvage cuts it and reports what "
                        "it cut)") from None
    except JournalCorruptError as e:
        raise UserError(f"{path}: corrupt record at byte offset {e.offset}: {e.reason}; "
                        "nothing changed") from None
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: not a journal: {e}") from None
    if not j.torn_bytes:
        print(_summary(path, j))
        print(f"{path}: nothing to repair")
        return 0
    backup = None
    if j.salvage is not None and (j.salvage.lost_records or j.salvage.lost_records is None):
        backup = f"{path}.damaged-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
        shutil.copy2(path, backup)
    # the writer truncates exactly the bytes read_journal reported, and rewrites the sidecar
    w = JournalWriter(path, salvage=a.salvage)
    w.close()
    if j.salvage is not None:
        print(f"{path}: {j.salvage.describe()}")
    else:
        print(f"{path}: dropped a torn tail of {j.torn_bytes} bytes that was never "
              f"acknowledged ({j.torn_reason}); kept records 1..{j.last_seq}")
    if backup:
        print(f"{path}: the damaged original is kept as {backup}")
    return 0
