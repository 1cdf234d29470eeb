"""The two stores: Parquet files queried by embedded DuckDB (default), and PostgreSQL.

Both take Arrow batches (:mod:`host.store.ingest`) with :meth:`write`, answer the standard
queries (:data:`host.store.schema.QUERIES`) with :meth:`query`, and are idempotent:

:class:`ParquetStore`
    ``ROOT/<table>/<source id>-<part>.parquet``: each batch of one source (a capture or a
    session) becomes one file, without the rows whose key that source already has (anti-join
    with its files), so a re-load, in whatever batches, writes nothing.
    ``ROOT/schema.json`` holds the schema version. Queries run in an in-memory DuckDB with
    one view per table over its files.
:class:`PostgresStore`
    Tables with primary keys (:func:`host.store.schema.ddl`); a batch is copied (``COPY``)
    into a temporary table and inserted with ``ON CONFLICT DO NOTHING``.
    ``schema_version`` holds the version.

:func:`open_store` picks one from a location: a ``postgresql://`` URL or a folder.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from host.store.ingest import arrow_schema
from host.store.schema import SCHEMA_VERSION, TABLES, bind, ddl

__all__ = ["ParquetStore", "PostgresStore", "open_store", "SchemaMismatch", "StoreLocationError",
           "source_of"]


class SchemaMismatch(Exception):
    """The store was written with another schema version."""


class StoreLocationError(Exception):
    """The location is not a store that can be used (the message says why, in one line)."""


def source_of(table: str, rows: pa.Table) -> str:
    """The content id a batch belongs to (its first column: capture or session id)."""
    col = rows.column(0)
    ids = set(col.unique().to_pylist())
    if len(ids) != 1:
        raise ValueError(f"a {table} batch must hold one source, not {sorted(map(str, ids))}")
    return str(ids.pop())


class ParquetStore:
    """Parquet files + DuckDB (see the module docstring).

    Parameters
    ----------
    root : path
        The store's folder: created (with ``schema.json``) when missing or empty.
    create : bool
        When False, a folder without a store is refused instead (queries).

    Raises
    ------
    StoreLocationError
        ``root`` is a file, cannot be created, is a non-empty folder that is not a store
        (no ``schema.json``: the store never writes into a foreign folder), or its
        ``schema.json`` is unreadable; or there is no store and ``create`` is False.
    SchemaMismatch
        The store has another schema version.
    """

    kind = "parquet"

    def __init__(self, root, *, create: bool = True) -> None:
        self.root = Path(root)
        meta = self.root / "schema.json"
        if self.root.exists() and not self.root.is_dir():
            raise StoreLocationError(f"{self.root}: not a folder (a store is a folder, or a "
                                     "postgresql:// URL)")
        if not meta.exists():
            if not create:
                raise StoreLocationError(f"{self.root}: no store here (nothing loaded yet)")
            if self.root.is_dir() and any(self.root.iterdir()):
                raise StoreLocationError(f"{self.root}: not a store (no schema.json) and not "
                                         "empty; give an empty or new folder")
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                meta.write_text(json.dumps({"version": SCHEMA_VERSION}) + "\n")
            except OSError as e:
                raise StoreLocationError(f"{self.root}: cannot create the store: "
                                         f"{e.strerror or e}") from None
        else:
            try:
                v = json.loads(meta.read_text()).get("version")
            except (OSError, ValueError, AttributeError) as e:
                raise StoreLocationError(f"{meta}: unreadable ({type(e).__name__}: "
                                         f"{str(e).splitlines()[0] if str(e) else ''})") \
                    from None
            if v != SCHEMA_VERSION:
                raise SchemaMismatch(f"{self.root}: schema version {v}, this code writes "
                                     f"{SCHEMA_VERSION}")
        self._db = None

    def begin(self) -> None:
        """Start a load (nothing to do: :meth:`write` skips the keys already stored)."""

    def write(self, table: str, rows: pa.Table) -> int:
        """Write the rows of one batch whose keys are not stored yet; returns how many.

        A batch holds rows of one source; the rows already stored for that source (whatever
        batches they came in) are left out with an anti-join on the table's key, and the rest
        becomes one new file.
        """
        from host.store.schema import KEYS

        src = source_of(table, rows)
        d = self.root / table
        d.mkdir(exist_ok=True)
        old = sorted(d.glob(f"{src}-*.parquet"))
        if old:
            import duckdb

            with duckdb.connect(":memory:") as db:
                db.register("batch", rows)
                lst = ", ".join("'" + str(p).replace("'", "''") + "'" for p in old)
                rows = db.sql(
                    f"SELECT * FROM batch ANTI JOIN read_parquet([{lst}]) "
                    f"USING ({', '.join(KEYS[table])})").to_arrow_table()
            rows = rows.cast(arrow_schema(table))
        if rows.num_rows == 0:
            return 0
        n = len(old)
        while (d / f"{src}-{n:05d}.parquet").exists():
            n += 1
        f = d / f"{src}-{n:05d}.parquet"
        tmp = d / f".{f.name}.tmp"
        pq.write_table(rows, tmp)
        os.replace(tmp, f)  # a crash leaves no half file under a name the views read
        self._db = None
        return rows.num_rows

    def _conn(self):
        if self._db is None:
            import duckdb

            db = duckdb.connect(":memory:")
            for t, cols in TABLES.items():
                files = sorted((self.root / t).glob("*.parquet")) if (self.root / t).is_dir() \
                    else []
                if files:
                    lst = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
                    db.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet([{lst}])")
                else:
                    sel = ", ".join(f"CAST(NULL AS {ty}) AS {c}" for c, ty in cols)
                    db.execute(f"CREATE VIEW {t} AS SELECT {sel} WHERE FALSE")
            self._db = db
        return self._db

    def query(self, sql: str, params: dict | None = None) -> tuple[list[str], list[tuple]]:
        """Run ``sql`` (``:name`` parameters); ``(column names, rows)``."""
        cur = self._conn().execute(bind(sql, "duckdb"), params or {})
        return [d[0] for d in cur.description], cur.fetchall()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class PostgresStore:
    """PostgreSQL (see the module docstring)."""

    kind = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=False)
        with self.conn.cursor() as cur:
            cur.execute("SELECT to_regclass('schema_version') IS NOT NULL")
            exists = cur.fetchone()[0]
            if exists:
                cur.execute("SELECT max(version) FROM schema_version")
                v = cur.fetchone()[0]
                if v != SCHEMA_VERSION:
                    self.conn.close()
                    raise SchemaMismatch(f"database schema version {v}, this code writes "
                                         f"{SCHEMA_VERSION}")
            for stmt in ddl():
                cur.execute(stmt)
            cur.execute("INSERT INTO schema_version VALUES (%s) ON CONFLICT DO NOTHING",
                        (SCHEMA_VERSION,))
        self.conn.commit()

    def begin(self) -> None:
        """Start a load (nothing to do: the primary keys make it idempotent)."""

    def write(self, table: str, rows: pa.Table) -> int:
        """Copy one batch in; returns the rows inserted (0 for rows already there)."""
        import pyarrow.csv as pacsv

        source_of(table, rows)
        cols = ", ".join(rows.column_names)
        buf = io.BytesIO()
        pacsv.write_csv(rows, buf, pacsv.WriteOptions(include_header=False))
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS load_{table} "
                        f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
            with cur.copy(f"COPY load_{table} ({cols}) FROM STDIN WITH (FORMAT csv)") as cp:
                cp.write(buf.getvalue())
            cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM load_{table} "
                        "ON CONFLICT DO NOTHING")
            n = cur.rowcount
        self.conn.commit()
        return n

    def query(self, sql: str, params: dict | None = None) -> tuple[list[str], list[tuple]]:
        with self.conn.cursor() as cur:
            cur.execute(bind(sql, "psycopg"), params or {})
            out = [d.name for d in cur.description], cur.fetchall()
        self.conn.rollback()
        return out

    def close(self) -> None:
        self.conn.close()


def open_store(location: str, *, create: bool = True):
    """``postgresql://...`` (or ``postgres://``) -> :class:`PostgresStore`; else a folder ->
    :class:`ParquetStore` (``create``: see there). Another URL scheme (``mysql://``, ...)
    raises :class:`StoreLocationError` rather than naming a folder."""
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresStore(location)
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", location)
    if m:
        shown = f"{m[1]}://{location[m.end():].split('@')[-1]}"  # without the credentials
        raise StoreLocationError(f"{shown}: unsupported store URL scheme "
                                 f"{m[1]!r}: use a folder (Parquet + DuckDB) or a "
                                 "postgresql:// URL")
    return ParquetStore(location, create=create)
