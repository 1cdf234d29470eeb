"""``python -m host db``: load captures and sessions into the store, run the standard queries.

::

    python -m host db [--store DIR | --store postgresql://...] load capture FILE
    python -m host db [--store ...] load session DIR [--input FILE]
    python -m host db [--store ...] query fills-by-strategy [--session ID]
    python -m host db [--store ...] query tca [--session ID]
    python -m host db [--store ...] query bbo-at --capture ID|FILE --time HH:MM:SS[.fff]|NS

The default store is ``out/store`` (Parquet files + DuckDB); ``$ITCHFPGA_STORE`` overrides
it. See ``docs/store.md``.
"""

from __future__ import annotations

import os
import re
import sys

from host.errors import UserError

__all__ = ["register", "parse_time", "add_store_arguments", "store_writer", "finish_store"]


def parse_time(text: str) -> int:
    """``HH:MM:SS[.fraction]`` or integer ns since midnight -> ns since midnight."""
    t = text.strip()
    if t.isdigit():
        return int(t)
    m = re.fullmatch(r"(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?", t)
    if not m or int(m[1]) > 23 or int(m[2]) > 59 or int(m[3]) > 59:
        raise UserError(f"--time {text!r}: use HH:MM:SS[.fff] or ns since midnight")
    frac = (m[4] or "").ljust(9, "0")
    return ((int(m[1]) * 60 + int(m[2])) * 60 + int(m[3])) * 1_000_000_000 + int(frac)


def register(subparsers) -> None:
    """Add the ``db`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "db", help="store: load captures and session journals, run the standard queries",
        description="Load market-data captures (messages, BBO) and session journals (orders, "
        "fills, events) into the store (Parquet + DuckDB, or PostgreSQL) and run the standard "
        "queries. Loads are idempotent: loading the same file again writes nothing.")
    p.add_argument("--store", default=os.environ.get("ITCHFPGA_STORE", "out/store"),
                   help="folder (Parquet + DuckDB) or postgresql:// URL; default out/store")
    sub = p.add_subparsers(dest="db_cmd", required=True)
    ld = sub.add_parser("load", help="load a capture or a session folder")
    ld.add_argument("what", metavar="capture|session", help="what PATH is")
    ld.add_argument("path", help="ITCH file / pcap (capture) or session folder (session)")
    ld.add_argument("--input", help="session: the capture it ran on (links fills to its BBO "
                    "for TCA; loaded too if new)")
    q = sub.add_parser("query", help="run a standard query")
    q.add_argument("name", metavar="fills-by-strategy|tca|bbo-at", help="the query")
    q.add_argument("--session", help="session id (default: every session)")
    q.add_argument("--capture", help="bbo-at: capture id or the capture's file")
    q.add_argument("--time", help="bbo-at: HH:MM:SS[.fff] or ns since midnight")
    q.add_argument("--csv", action="store_true", help="CSV instead of a table")
    p.set_defaults(func=_cmd_db)


def _open(location: str, *, create: bool = True):
    from host.store import SchemaMismatch, StoreLocationError, open_store

    try:
        return open_store(location, create=create)
    except (SchemaMismatch, StoreLocationError) as e:
        raise UserError(str(e)) from None
    except Exception as e:
        if type(e).__module__.startswith("psycopg"):
            raise UserError(f"cannot open {location.split('@')[-1]}: "
                            f"{str(e).strip().splitlines()[0]}") from None
        raise


def add_store_arguments(p) -> None:
    """``--store`` and ``--run-id`` of the commands that write a run while it goes
    (``session``, ``backtest``, ``serve``; :mod:`host.store.live`)."""
    p.add_argument("--store", metavar="DIR|URL",
                   help="write market data, orders, fills and journal events to this store in "
                   "batches while the run goes (a folder: Parquet + DuckDB; or a "
                   "postgresql:// URL)")
    p.add_argument("--run-id", help="with --store: the run's id (default: derived from the "
                   "input's content and the options, so a re-run writes nothing twice)")


def store_writer(a, kind: str, out, *, input_path=None, **options):
    """The :class:`host.store.live.StoreWriter` of ``a.store`` (None without ``--store``);
    the store is opened here, so an unreachable server is one line before the run starts.

    The run id is ``a.run_id``, else :func:`host.store.live.run_id` of ``kind``, the input
    (``input_path``, default ``a.input``) and ``options``.
    """
    if not a.store:
        if a.run_id:
            raise UserError("--run-id needs --store")
        return None
    from host.store.live import StoreWriter, run_id

    src = a.input if input_path is None else input_path
    rid = a.run_id or run_id(kind, src, **options)
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", rid):
        raise UserError(f"--run-id {rid!r}: use 1-64 letters, digits, '_', '.', ':', '-'")
    return StoreWriter(_open(a.store), rid, str(out), source=str(src))


def finish_store(writer, location: str) -> None:
    """Flush and stop ``writer``; print what was written (one line)."""
    w = writer.close()
    print(f"store {location.split('@')[-1]}: run {writer.run}: "
          + ", ".join(f"{t} +{n:,}" for t, n in sorted(w.items()))
          + f" ({writer.batches} batches; producer blocked {writer.blocked_s:.2f} s)")


def _print(cols, rows, csv: bool) -> None:
    if csv:
        import csv as _csv

        w = _csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(cols)
        w.writerows(rows)
        return
    cells = [[("" if v is None else str(v)) for v in r] for r in rows]
    width = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    print("  ".join(c.rjust(w) for c, w in zip(cols, width, strict=True)))
    for r in cells:
        print("  ".join(v.rjust(w) for v, w in zip(r, width, strict=True)))
    print(f"({len(rows)} rows)")


_LOADS = ("capture", "session")


def _store_failure(e: Exception, store) -> UserError | None:
    """A database error (DuckDB, PostgreSQL, a damaged Parquet file) as one line."""
    if type(e).__module__.split(".")[0] not in ("duckdb", "_duckdb", "psycopg", "pyarrow"):
        return None
    first = (str(e).strip().splitlines() or [""])[0]
    return UserError(f"{store.kind} store: {type(e).__name__}: {first}")


def _cmd_db(a) -> int:
    from host.store import QUERIES

    if a.db_cmd == "load" and a.what not in _LOADS:
        raise UserError(f"load {a.what!r}: choose from: {', '.join(_LOADS)}")
    if a.db_cmd == "query" and a.name not in QUERIES:
        raise UserError(f"unknown query {a.name!r}; choose from: {', '.join(QUERIES)}")
    if a.db_cmd == "query" and a.name == "bbo-at" and (not a.capture or not a.time):
        raise UserError("bbo-at needs --capture and --time")
    ts = parse_time(a.time) if a.db_cmd == "query" and a.name == "bbo-at" else None
    store = _open(a.store, create=a.db_cmd == "load")  # a query needs an existing store
    try:
        return _run_db(a, store, ts)
    except UserError:
        raise
    except Exception as e:
        err = _store_failure(e, store)
        if err is None:
            raise
        raise err from None
    finally:
        store.close()


def _read_capture(path: str):
    """Check that ``path`` is an ITCH file or pcap; its content id."""
    from host.feed.capture import detect_format
    from host.store import content_id

    detect_format(path)  # missing, a folder, empty, not ITCH: one line
    return content_id(path)


def _load_capture(store, path: str) -> dict:
    from host.store import load_capture

    _read_capture(path)
    st: dict = {}
    try:
        written = load_capture(store, path, stats=st)
    except (OSError, EOFError, ValueError) as e:  # a truncated gzip, a garbled stream
        raise UserError(f"{path}: cannot read: {str(e).strip() or type(e).__name__}") from None
    # what the parser stopped at or skipped is said, not dropped silently
    left = st.get("bytes", 0) - st.get("consumed", 0) + st.get("cut_bytes", 0)
    if st.get("truncated") or st.get("zero_length") or left > 0:
        why = "a partial message" if st.get("truncated") else "a zero length prefix"
        print(f"warning: {path}: the stream ends in {why} after {st.get('messages', 0):,} "
              f"messages: the last {left:,} bytes were not loaded")
    for k in ("unknown_type", "bad_length"):
        if st.get(k):
            print(f"warning: {path}: {st[k]:,} messages with {k.replace('_', ' ')} skipped")
    return written


def _known(store, what: str, value: str) -> bool:
    tables = {"session": ("sessions", "orders", "fills"), "capture": ("captures",)}[what]
    col = "session_id" if what == "session" else "capture_id"
    for t in tables:
        if store.query(f"SELECT COUNT(*) FROM {t} WHERE {col} = :v", {"v": value})[1][0][0]:
            return True
    return False


def _run_db(a, store, ts) -> int:
    from host.store import load_session, run_query
    from host.trading.journal.journal import JournalCorruptError

    if a.db_cmd == "load":
        if a.what == "capture":
            written = _load_capture(store, a.path)
        else:
            cid = None
            if a.input:
                cid = _read_capture(a.input)
                w0 = _load_capture(store, a.input)
                print("capture " + cid + ": " + ", ".join(f"{k} +{v}" for k, v in w0.items()))
            try:
                written = load_session(store, a.path, capture=cid)
            except FileNotFoundError as e:
                raise UserError(str(e)) from None
            except (JournalCorruptError, ValueError, OSError, EOFError) as e:
                raise UserError(f"{a.path}: cannot read its journals: "
                                f"{str(e).strip() or type(e).__name__}") from None
        print(f"{a.what} {a.path}: " + ", ".join(f"{k} +{v}" for k, v in written.items())
              + f" ({store.kind} store {a.store.split('@')[-1]})")
        return 0
    params: dict = {}
    if a.name in ("fills-by-strategy", "tca"):
        if a.session is not None and not _known(store, "session", a.session):
            raise UserError(f"no session {a.session!r} in the store")
        params["session"] = a.session
    else:
        if os.path.isfile(a.capture):
            cid = _read_capture(a.capture)
            if not _known(store, "capture", cid):
                raise UserError(f"{a.capture} (capture {cid}) is not in the store: load it "
                                f"with `db load capture {a.capture}`")
        elif _known(store, "capture", a.capture):
            cid = a.capture
        elif os.sep in a.capture or os.path.splitext(a.capture)[1]:
            raise UserError(f"{a.capture}: no such file (and no capture of that id)")
        else:
            raise UserError(f"no capture {a.capture!r} in the store (give a capture or run "
                            "id, or the capture's file)")
        params["capture"] = cid
        params["ts"] = ts
    cols, rows = run_query(store, a.name, **params)
    _print(cols, rows, a.csv)
    return 0
