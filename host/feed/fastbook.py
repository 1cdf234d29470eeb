"""Fast L3 book over record arrays or raw ITCH bytes; same output as :mod:`host.feed.book`.

The book semantics, anomaly rules and BBO-trace definition are those of :mod:`host.feed.book`
(one row each time a message changes the BBO of the order's locate). This module only changes
the data structures:

Orders
    An open-addressing hash table (linear probing, backward-shift deletion, so no tombstones)
    in numpy arrays: ``okey[cap]`` (uint64 reference) and ``odat[cap, 3]`` (``1 + 2*locate +
    side``, 0 = empty slot; price; shares). The table is kept at most half full and is
    rehashed to twice its size when it would pass that.
Price levels
    One sorted run per (locate, side) book inside a shared pool (``lkey``, ``lsz``, ``lct``),
    ordered so that the best level is always the *last* element: the key is the price for bids
    and ``2**32 - 1 - price`` for asks, ascending. Orders arrive near the touch, so finding,
    inserting or removing a level scans and shifts only the few levels above it, and the BBO is
    read in O(1). A book that outgrows its run moves to the end of the pool with twice the room;
    the pool is compacted and grown from Python when it is full. Levels are found by binary
    search. A level that empties below the top stays in its run as an empty placeholder
    (count 0) instead of shifting every better level down; a new level opens its slot by
    shifting toward the nearest placeholder (or the top, when nearer), and placeholders are
    dropped when a run is full or the pool is compacted. So far-from-touch traffic on deep
    books costs the distance to a placeholder, not the depth of the book; the top level is
    never a placeholder, so the BBO is still read in O(1).

The kernel stops and returns to Python whenever a table must grow *before* it changes anything
for the current message, so a chunked run over a whole file never half-applies a message.
:class:`FastBook` keeps the state between chunks (``feed``), :func:`bbo_trace_records` runs one
array.

Two backends run the kernels on the same arrays, step for step the same code:

``c``
    ``host/feed/fastbook.c``, compiled on first use with the system C compiler (``$CC`` or
    ``cc``) into ``build/fastbook/<hash>/libfastbook.so`` (the hash covers the source, the
    flags and the compiler name, so an edit rebuilds) and loaded with :mod:`ctypes`. It also
    parses raw NASDAQ-framed bytes itself (:meth:`FastBook.feed_bytes`, :func:`scan`), which is
    what ``python -m host bbo`` uses: no numba import, no JIT cache load, no record array.
``numba``
    ``host/feed/fastbook_jit.py``: the fallback when no compiler is present (or the build
    fails, with a warning), and the second implementation the tests compare with.

``ITCHFPGA_FASTBOOK=c|numba|auto`` (default ``auto``: ``c`` when it builds) picks one for the
whole process; ``FastBook(backend=...)`` for one book.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from host.feed.book import ANOMALY_KINDS, BBO_COLUMNS, BBO_DTYPE, Bbo
from host.feed.chunks import STAT_KEYS

__all__ = [
    "FastBook",
    "bbo_csv_bytes",
    "bbo_trace_records",
    "RECORD_FIELDS",
    "backend",
    "c_library",
    "scan",
    "stock_directory",
]

RECORD_FIELDS = (
    "msg_type",
    "stock_locate",
    "timestamp",
    "order_ref",
    "new_order_ref",
    "side",
    "shares",
    "price",
    "msg_index",
)
"""Record fields the book reads (a ``host.feed.bulk.RECORD_DTYPE`` array has them all)."""

N_LOCATES = 1 << 16
N_BOOKS = 2 * N_LOCATES
INIT_LEVELS = 8
ASK_FLIP = 0xFFFFFFFF
_MUL = np.uint64(0x9E3779B97F4A7C15)

# anomaly indices, in host.feed.book.ANOMALY_KINDS order (the C source has the same enum)
_UNKNOWN_REF, _DUP_ADD, _OVER_EXEC, _OVER_CANCEL = 0, 1, 2, 3
_REPL_UNKNOWN, _REPL_DUP, _LOC_MISMATCH, _BAD_SIDE = 4, 5, 6, 7
assert ANOMALY_KINDS[_BAD_SIDE] == "bad_side" and ANOMALY_KINDS[_REPL_DUP] == "replace_duplicate"

# kernel status
_DONE, _GROW_ORDERS, _GROW_POOL, _GROW_OUT = 0, 1, 2, 3

# --- backends ---------------------------------------------------------------------------------

BACKEND_ENV = "ITCHFPGA_FASTBOOK"
"""Environment variable: ``auto`` (default), ``c`` or ``numba``."""
C_SOURCE = Path(__file__).with_name("fastbook.c")
BUILD_ROOT = Path(__file__).resolve().parents[2] / "build" / "fastbook"
CFLAGS = ("-O2", "-std=c11", "-fPIC", "-shared")
C_ABI = 1

_lib = None  # ctypes.CDLL once loaded; False when the C backend is unavailable
_lib_error = ""


def _c_key(source: bytes, cc: str) -> str:
    h = hashlib.sha256(b"\0".join([source, " ".join(CFLAGS).encode(), cc.encode(),
                                    os.uname().machine.encode(), str(C_ABI).encode()]))  # fmt: skip
    return h.hexdigest()[:16]


def _build(root: Path) -> Path:
    """Compile ``fastbook.c`` (or find it cached) under ``root``; return the library path."""
    cc = os.environ.get("CC", "cc")
    src = C_SOURCE.read_bytes()
    out = root / _c_key(src, cc)
    lib = out / "libfastbook.so"
    if lib.exists():
        return lib
    import fcntl  # only when building: start-up of the common path matters
    import shutil
    import subprocess

    if shutil.which(cc) is None:
        raise FileNotFoundError(f"no C compiler ({cc!r} not found)")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)  # parallel test workers build once
        if lib.exists():
            return lib
        tmp = root / f"{out.name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        cmd = [cc, *CFLAGS, str(C_SOURCE), "-o", str(tmp / "libfastbook.so")]
        p = subprocess.run(cmd, capture_output=True, text=True)
        (tmp / "build.log").write_text("$ " + " ".join(cmd) + "\n" + p.stdout + p.stderr)
        if p.returncode:
            raise RuntimeError(f"{C_SOURCE.name} did not compile (log in {tmp / 'build.log'})")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return lib


def c_library():
    """The loaded C backend (a :class:`ctypes.CDLL`), built on first use; None when it cannot
    be had (no compiler, a failed build: :func:`c_library_error` says why)."""
    global _lib, _lib_error
    if _lib is None:
        try:
            _lib = _load(_build(BUILD_ROOT))
        except (OSError, RuntimeError) as e:
            _lib, _lib_error = False, str(e)
            if not isinstance(e, FileNotFoundError):  # a compiler that fails is worth a line
                print(f"warning: fast book: {e}; using the numba backend", file=sys.stderr)
    return _lib or None


def c_library_error() -> str:
    """Why :func:`c_library` returned None (empty when it did not)."""
    return _lib_error


def backend(requested: str | None = None) -> str:
    """The backend a :class:`FastBook` uses: ``requested``, else ``$ITCHFPGA_FASTBOOK``, else
    ``auto`` (``"c"`` when the C library is available, else ``"numba"``)."""
    want = requested or os.environ.get(BACKEND_ENV) or "auto"
    if want not in ("auto", "c", "numba"):
        raise ValueError(f"fast book backend must be auto, c or numba, not {want!r}")
    if want == "numba":
        return "numba"
    if c_library() is not None:
        return "c"
    if want == "c":
        raise RuntimeError(f"the C fast book is not available: {_lib_error}")
    return "numba"


def _load(path: Path):
    lib = ctypes.CDLL(str(path))
    vp, i64 = ctypes.c_void_p, ctypes.c_int64
    i64p = ctypes.POINTER(ctypes.c_int64)
    sig = {
        "fb_abi_version": (ctypes.c_int, []),
        "fb_rehash": (None, [vp, vp, i64, vp, vp, i64, ctypes.c_uint64]),
        "fb_compact": (i64, [i64, vp, vp, vp, vp, vp, vp, vp, vp, vp]),
        "fb_feed_records": (ctypes.c_int, [vp, i64, *[vp] * 9, i64p]),
        "fb_scan": (None, [vp, i64, vp, vp, vp]),
        "fb_directory": (
            i64,
            [
                vp,
                i64,
                vp,
                ctypes.c_int,
                ctypes.c_int32,
                ctypes.c_int32,
                ctypes.c_int32,
                vp,
                vp,
                i64,
            ],
        ),  # fmt: skip
        "fb_feed_bytes": (ctypes.c_int, [vp, vp, i64, vp, vp, i64p]),
        "fb_csv": (i64, [vp, i64, vp, i64, vp]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    if lib.fb_abi_version() != C_ABI:
        raise RuntimeError(f"{path} has ABI {lib.fb_abi_version()}, this module needs {C_ABI}")
    return lib


def _jit():
    from host.feed import fastbook_jit

    return fastbook_jit


class _Tables:
    """Framing and field tables for the C parser, from :mod:`host.feed.spec` and
    :mod:`host.feed.record_map` (so no offset or length is written in the C source)."""

    FIELDS = (
        "stock_locate",
        "timestamp",
        "order_ref",
        "new_order_ref",
        "side",
        "shares",
        "price",
    )  # the C source's F_LOCATE..F_PRICE order

    def __init__(self):
        from host.feed.record_map import RECORD_MAP
        from host.feed.spec import MESSAGES

        self.type_len = np.zeros(256, np.int64)
        self.field = np.zeros((len(self.FIELDS), 256, 2), np.int32)
        for mtype, spec in MESSAGES.items():
            self.type_len[spec.code] = spec.length
            for k, rf in enumerate(self.FIELDS):
                sf = RECORD_MAP[rf].get(mtype)
                if sf is not None:
                    f = spec.field(sf)
                    if f.offset + f.width > spec.length or f.width > 8:
                        raise ValueError(f"{mtype}.{sf} does not fit the C parser")
                    self.field[k, spec.code] = (f.offset, f.width)
        r = MESSAGES["R"]
        loc, stock = r.field(RECORD_MAP["stock_locate"]["R"]), r.field(RECORD_MAP["stock"]["R"])
        if stock.width != 8 or stock.offset + 8 > r.length:
            raise ValueError("R.stock does not fit the C parser")
        self.r = (r.code, loc.offset, loc.width, stock.offset)


_tables: _Tables | None = None


def _tab() -> _Tables:
    global _tables
    if _tables is None:
        _tables = _Tables()
    return _tables


def _u8(buf) -> np.ndarray:
    if isinstance(buf, np.ndarray):
        return np.ascontiguousarray(buf).reshape(-1).view(np.uint8)
    return np.frombuffer(buf, np.uint8)


def scan(buf) -> tuple[dict, np.ndarray]:
    """Walk the framing of ``buf`` (C backend): the :func:`host.feed.bulk.parse_records`
    ``stats`` dict and the count of decoded messages per type byte (``int64[256]``)."""
    lib = c_library()
    a = _u8(buf)
    c = np.zeros(7, np.int64)
    per_type = np.zeros(256, np.int64)
    lib.fb_scan(a.ctypes.data, a.size, _tab().type_len.ctypes.data, c.ctypes.data,
                per_type.ctypes.data)  # fmt: skip
    return dict(zip(STAT_KEYS, c.tolist(), strict=True)), per_type


def stock_directory(buf, count: int) -> list[tuple[int, str]]:
    """``(locate, symbol)`` of the first ``count`` stock directory (``R``) messages of
    ``buf`` (C backend), in stream order; the symbol as ``host.cli.feed`` shows it."""
    lib = c_library()
    a = _u8(buf)
    code, loc_off, loc_w, stock_off = _tab().r
    locs = np.zeros(count, np.int64)
    stocks = np.zeros(count, "S8")
    k = lib.fb_directory(a.ctypes.data, a.size, _tab().type_len.ctypes.data, code, loc_off,
                         loc_w, stock_off, locs.ctypes.data, stocks.ctypes.data, count)  # fmt: skip
    return [(int(loc), s.decode("latin-1").rstrip(" \x00"))
            for loc, s in zip(locs[:k], stocks[:k], strict=True)]  # fmt: skip


def _backend(requested: str | None) -> str:
    return backend(requested)


class _CBook(ctypes.Structure):
    """``fb_book`` of fastbook.c: pointers to a :class:`FastBook`'s arrays."""

    _fields_ = [(n, ctypes.c_void_p) for n in ("okey", "odat")] + [
        ("ocap", ctypes.c_int64), ("shift", ctypes.c_uint64)] + [
        (n, ctypes.c_void_p) for n in ("state", "boff", "blen", "bcap", "lkey", "lsz", "lct")
    ] + [("pool", ctypes.c_int64), ("locmask", ctypes.c_void_p), ("anom", ctypes.c_void_p),
         ("out", ctypes.c_void_p), ("out_cap", ctypes.c_int64)]  # fmt: skip


_RECORD_TYPES = (
    np.uint8,
    np.uint16,
    np.uint64,
    np.uint64,
    np.uint64,
    np.uint8,
    np.uint32,
    np.uint32,
    np.int64,
)  # RECORD_FIELDS as fb_feed_records reads them


class FastBook:
    """Chunked fast L3 book of every locate (state kept between :meth:`feed` calls).

    Parameters
    ----------
    locates : iterable of int, optional
        Only these locates produce BBO rows; every order is tracked regardless.
    order_capacity : int
        Initial hash-table size (rounded up to a power of two; it grows on demand).
    pool_levels : int
        Initial price-level pool size (grows on demand).
    backend : str, optional
        ``"c"``, ``"numba"`` or ``"auto"``; default from :func:`backend`.
    """

    def __init__(
        self,
        locates: Iterable[int] | None = None,
        *,
        order_capacity: int = 1 << 16,
        pool_levels: int = 1 << 16,
        backend: str | None = None,
    ):
        self.backend = _backend(backend)
        self.locmask = np.zeros(N_LOCATES, np.bool_)
        if locates is None:
            self.locmask[:] = True
        else:
            self.locmask[np.asarray(list(locates), dtype=np.int64)] = True
        cap = 1 << max(4, int(order_capacity - 1).bit_length())
        self._alloc_orders(cap)
        self.boff = np.zeros(N_BOOKS, np.int64)
        self.blen = np.zeros(N_BOOKS, np.int64)
        self.bcap = np.zeros(N_BOOKS, np.int64)
        self.lkey = np.zeros(pool_levels, np.int64)
        self.lsz = np.zeros(pool_levels, np.int64)
        self.lct = np.zeros(pool_levels, np.int64)
        self.state = np.zeros(3, np.int64)
        self.anom = np.zeros(len(ANOMALY_KINDS), np.int64)
        self._out: np.ndarray | None = None

    @property
    def _lib(self):
        """The C library on the C backend, else None (not stored: a book stays picklable)."""
        return c_library() if self.backend == "c" else None

    def _alloc_orders(self, cap: int) -> None:
        self.okey = np.zeros(cap, np.uint64)
        self.odat = np.zeros((cap, 3), np.int64)
        self.shift = np.uint64(64 - (cap.bit_length() - 1))

    def set_locates(self, locates: Iterable[int] | None) -> None:
        """Change which locates produce rows from now on (e.g. once ``R`` resolved symbols)."""
        if locates is None:
            self.locmask[:] = True
        else:
            self.locmask[:] = False
            self.locmask[np.asarray(list(locates), dtype=np.int64)] = True

    def _grow_orders(self) -> None:
        okey, odat = self.okey, self.odat
        self._alloc_orders(2 * okey.shape[0])
        if self._lib is not None:
            self._lib.fb_rehash(okey.ctypes.data, odat.ctypes.data, okey.shape[0],
                                self.okey.ctypes.data, self.odat.ctypes.data,
                                self.okey.shape[0], int(self.shift))  # fmt: skip
        else:
            _jit()._rehash(okey, odat, self.okey, self.odat, self.shift)

    def _grow_pool(self) -> None:
        size = 2 * self.lkey.shape[0]
        while True:
            nkey = np.zeros(size, np.int64)
            nsz = np.zeros(size, np.int64)
            nct = np.zeros(size, np.int64)
            boff = self.boff.copy()
            blen = self.blen.copy()
            bcap = self.bcap.copy()
            if self._lib is not None:
                used = self._lib.fb_compact(N_BOOKS, *[x.ctypes.data for x in (
                    boff, blen, bcap, self.lkey, self.lsz, self.lct, nkey, nsz, nct)])  # fmt: skip
            else:
                used = _jit()._compact(boff, blen, bcap, self.lkey, self.lsz, self.lct, nkey,
                                       nsz, nct)  # fmt: skip
            if used * 2 <= size:
                break
            size *= 2
        self.lkey, self.lsz, self.lct = nkey, nsz, nct
        self.boff, self.blen, self.bcap = boff, blen, bcap
        self.state[1] = used

    def _grow(self, status: int, out: np.ndarray) -> np.ndarray:
        if status == _GROW_ORDERS:
            self._grow_orders()
        elif status == _GROW_POOL:
            self._grow_pool()
        else:
            bigger = np.empty(2 * len(out), BBO_DTYPE)
            bigger[: len(out)] = out
            out = bigger
        return out

    def _c_book(self, out: np.ndarray):
        """The C ``fb_book`` view of this book's arrays (rebuilt after every growth)."""
        return _CBook(*[x.ctypes.data for x in (self.okey, self.odat)], self.okey.shape[0],
                      int(self.shift), *[x.ctypes.data for x in (
                          self.state, self.boff, self.blen, self.bcap, self.lkey, self.lsz,
                          self.lct)], self.lkey.shape[0], self.locmask.ctypes.data,
                      self.anom.ctypes.data, out.ctypes.data, len(out))  # fmt: skip

    def _out_buffer(self, n: int) -> np.ndarray:
        out = self._out
        if out is None or len(out) < n // 2 + 1024:
            out = np.empty(n // 2 + 1024, BBO_DTYPE)
        self.state[2] = 0
        return out

    def _rows(self, out: np.ndarray, copy: bool) -> np.ndarray:
        m = int(self.state[2])
        if copy:
            self._out = None
            return out[:m] if m == len(out) else out[:m].copy()
        self._out = out
        return out[:m]

    def feed(self, records: np.ndarray, *, copy: bool = True) -> np.ndarray:
        """Apply a record array (``host.feed.bulk.RECORD_DTYPE`` fields); return its BBO rows.

        Parameters
        ----------
        records : numpy.ndarray
            Records in stream order (a chunk continues the previous one).
        copy : bool
            With False the rows are a view of an internal buffer that the next call reuses
            (saves page faults in chunked runs; use the rows before feeding again).
        """
        cols = [np.asarray(records[f]) for f in RECORD_FIELDS]
        n = cols[0].shape[0]
        if any(c.shape != (n,) for c in cols):
            raise ValueError("record fields must be 1-d and of one length")
        out = self._out_buffer(n)
        if self._lib is not None:
            cols = [np.ascontiguousarray(c, dtype=t) for c, t in zip(cols, _RECORD_TYPES,
                                                                     strict=True)]  # fmt: skip
            start = ctypes.c_int64(0)
            while True:
                status = self._lib.fb_feed_records(
                    ctypes.byref(self._c_book(out)), n, *[c.ctypes.data for c in cols],
                    ctypes.byref(start))  # fmt: skip
                if status == _DONE:
                    break
                out = self._grow(status, out)
            return self._rows(out, copy)
        kernel = _jit()._kernel
        start = 0
        while True:
            status, start = kernel(
                *cols, start, self.okey, self.odat, self.shift, self.state, self.boff,
                self.blen, self.bcap, self.lkey, self.lsz, self.lct, self.locmask, self.anom,
                *[out[c] for c in BBO_COLUMNS],
            )  # fmt: skip
            if status == _DONE:
                break
            out = self._grow(status, out)
        return self._rows(out, copy)

    def feed_bytes(self, buf, *, base_index: int = 0, copy: bool = True) -> np.ndarray:
        """Parse and apply NASDAQ-framed ITCH bytes; return their BBO rows.

        The same as ``feed(host.feed.bulk.parse_records(buf, base_index=base_index)[0])``
        (the C backend parses as it goes, without building the record array).

        Parameters
        ----------
        buf : bytes-like or numpy.ndarray of uint8
            Messages in NASDAQ file framing; the walk stops where
            :func:`~host.feed.bulk.parse_records` stops (zero length, truncation).
        base_index : int
            ``msg_index`` of the first length-prefixed message of ``buf``.
        copy : bool
            As in :meth:`feed`.
        """
        if self._lib is None:
            from host.feed.bulk import parse_records

            return self.feed(parse_records(buf, base_index=base_index)[0], copy=copy)
        a = _u8(buf)
        t = _tab()
        out = self._out_buffer(a.size // 32)  # ~ the message count (it grows when short)
        pos = (ctypes.c_int64 * 2)(0, base_index)
        while True:
            status = self._lib.fb_feed_bytes(
                ctypes.byref(self._c_book(out)), a.ctypes.data, a.size, t.type_len.ctypes.data,
                t.field.ctypes.data, pos)  # fmt: skip
            if status == _DONE:
                break
            out = self._grow(status, out)
        return self._rows(out, copy)

    @property
    def anomalies(self) -> dict[str, int]:
        """Anomaly counters (same keys and rules as :attr:`host.feed.book.L3Book.anomalies`)."""
        return {k: int(v) for k, v in zip(ANOMALY_KINDS, self.anom, strict=True)}

    @property
    def n_orders(self) -> int:
        """Number of live orders."""
        return int(self.state[0])

    def _levels(self, locate: int, side: str) -> list[tuple[int, int, int]]:
        sd = {"B": 0, "S": 1}.get(side)
        if sd is None:
            raise ValueError(f"side must be 'B' or 'S', not {side!r}")
        b = 2 * int(locate) + sd
        off, n = int(self.boff[b]), int(self.blen[b])
        keys = self.lkey[off : off + n][::-1]
        px = keys if sd == 0 else ASK_FLIP - keys
        return [
            (int(p), int(s), int(c))
            for p, s, c in zip(px, self.lsz[off : off + n][::-1], self.lct[off : off + n][::-1],
                               strict=True)
            if c  # skip the empty placeholders
        ]  # fmt: skip

    def depth(self, locate: int, side: str, n: int) -> list[tuple[int, int, int]]:
        """Best ``n`` levels ``(price, size, count)`` of ``side``, best first."""
        return self._levels(locate, side)[:n]

    def bbo(self, locate: int) -> Bbo:
        """Best bid and offer of ``locate`` (empty side ``0, 0, 0``)."""
        b = self.depth(locate, "B", 1)
        a = self.depth(locate, "S", 1)
        return Bbo(*(b[0] if b else (0, 0, 0)), *(a[0] if a else (0, 0, 0)))

    def orders(self) -> dict[int, tuple[int, str, int, int]]:
        """Every live order: reference -> ``(locate, side, price, shares)`` (slow; for tests)."""
        used = np.nonzero(self.odat[:, 0])[0]
        out = {}
        for j in used:
            meta = int(self.odat[j, 0]) - 1
            out[int(self.okey[j])] = (
                meta >> 1,
                "BS"[meta & 1],
                int(self.odat[j, 1]),
                int(self.odat[j, 2]),
            )
        return out


def bbo_trace_records(
    records: np.ndarray, locates: Iterable[int] | None = None
) -> tuple[np.ndarray, dict[str, int]]:
    """BBO trace and anomaly counts of one record array (see :mod:`host.feed.book` for semantics).

    Parameters
    ----------
    records : numpy.ndarray
        ``host.feed.bulk.RECORD_DTYPE`` records (at least the fields of :data:`RECORD_FIELDS`).
    locates : iterable of int, optional
        Only emit rows for these locates.

    Returns
    -------
    trace : numpy.ndarray
        :data:`host.feed.book.BBO_DTYPE` rows.
    anomalies : dict
        Counter per :data:`host.feed.book.ANOMALY_KINDS`.
    """
    fb = FastBook(locates)
    trace = fb.feed(records)
    return trace, fb.anomalies


def bbo_csv_bytes(trace: np.ndarray, header: bool = False, extra: dict | None = None) -> bytes:
    """BBO rows as CSV bytes (the text of :func:`host.feed.book.write_bbo_csv`, ~50x faster).

    ``extra`` appends integer columns after :data:`~host.feed.book.BBO_COLUMNS` (name ->
    array of ``len(trace)``): the card floor adds its ``valid`` and ``stale`` flags this way.
    """
    extra = extra or {}
    names = [*BBO_COLUMNS, *extra]
    head = (",".join(names) + "\n").encode() if header else b""
    if len(trace) == 0:
        return head
    lib = c_library() if backend() == "c" else None
    if lib is not None:
        rows = np.ascontiguousarray(trace)
        if rows.dtype != BBO_DTYPE:
            rows = np.empty(len(trace), BBO_DTYPE)
            for c in BBO_COLUMNS:
                rows[c] = trace[c]
        more = np.empty((len(trace), len(extra)), np.int64)
        for k, v in enumerate(extra.values()):
            more[:, k] = v
        out = np.empty(len(trace) * len(names) * 21, np.uint8)
        m = lib.fb_csv(rows.ctypes.data, len(rows), more.ctypes.data, len(extra),
                       out.ctypes.data)  # fmt: skip
        return head + out[:m].tobytes()
    cols = np.empty((len(trace), len(names)), np.int64)
    for k, c in enumerate(BBO_COLUMNS):
        cols[:, k] = trace[c]
    for k, v in enumerate(extra.values(), start=len(BBO_COLUMNS)):
        cols[:, k] = v
    out = np.empty(len(trace) * len(names) * 21, np.uint8)
    m = _jit()._csv(cols, out)
    return head + out[:m].tobytes()
