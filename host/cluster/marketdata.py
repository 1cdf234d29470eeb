"""Market-data fan-out on JetStream: one subject per symbol, compact binary records.

The card's BBO records (:data:`hw.bbo_record.DTYPE`, 64 bytes; or the reference model's, which
the session converts to the same records) are published one per message to
``md.<venue>.<symbol>`` as :data:`MD_DTYPE` (52 bytes, little-endian, packed):

======  ====  =============  ==========================================================
offset  size  field          meaning
======  ====  =============  ==========================================================
0       8     ``seq``        MoldUDP64 sequence number of the message that changed the BBO
8       8     ``sym_seq``    this subject's record counter: 1, 2, 3 ... (a jump = a gap)
16      8     ``ts_event``   ITCH timestamp, integer ns since midnight
24      2     ``locate``     ITCH stock locate
26      1     ``flags``      the card record's flags (gap, bid/ask valid, cleared, invalid)
27      1     ``msg_type``   ITCH message type (ASCII) that caused the update
28      4     ``bid_px``     best bid, Price(4) integer (0 = empty side)
32      4     ``bid_sz``     shares at the best bid
36      4     ``bid_ct``     orders at the best bid
40      4     ``ask_px``     best ask, Price(4) integer (0 = empty side)
44      4     ``ask_sz``     shares at the best ask
48      4     ``ask_ct``     orders at the best ask
======  ====  =============  ==========================================================

A JetStream stream ``MD_<VENUE>`` captures ``md.<venue>.>``, so every record is stored with a
stream sequence number. The MoldUDP64 ``seq`` is kept as the card reported it (consumers see
where in the feed each update came from, and that it only grows); ``sym_seq`` is what makes a
gap on one subject visible, since a subject carries only its symbol's updates.
:class:`MdConsumer` checks both and, on a ``sym_seq`` jump, re-reads the missing records from
the stream (``STREAM.MSG.GET`` with ``next_by_subj`` from the last stream sequence it had on
that subject), so what it hands on is complete and in order.

Top-N (``publish --depth N``, N = 2..16): the records of a depth build
(:func:`hw.bbo_record.dtype`, or :func:`model_depth_records` from the reference model) are
published on the same subjects as :func:`md_dtype` ``(N)`` records: the 52 bytes above, then
levels 2..N of the bid side, then of the ask side, 12 bytes each (``px``, ``sz``, ``ct``, u32;
zeros past a side's last level), ``52 + 24·(N - 1)`` bytes. The payload length gives N (a
consumer needs nothing else), and each such message carries the NATS header ``Md-Depth: N``
(a BBO-only publication has no header, byte for byte as before). ``flags`` bit 7
(:data:`hw.bbo_record.FLAG_DEPTH_ONLY`) marks a record for a change at levels 2..N alone.
``seq`` and ``sym_seq`` are those of every record, so gap detection and repair are unchanged;
:meth:`MdConsumer.frame` widens a subject's narrower records (an earlier BBO-only
publication) with zero levels.

Symbols are the stock directory's names, upper case, with any character other than
``A-Z0-9`` replaced by ``_`` (a NATS subject token cannot hold ``.``, ``*``, ``>`` or a space);
a locate without a directory entry is published as ``L<locate>``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

import numpy as np

__all__ = ["MD_DTYPE", "md_dtype", "md_depth", "model_depth_records", "as_md", "to_md",
           "subject_token", "stream_name", "publish_records", "ensure_md_stream", "MdConsumer",
           "GapReport"]

MD_DTYPE = np.dtype([
    ("seq", "<u8"), ("sym_seq", "<u8"), ("ts_event", "<i8"), ("locate", "<u2"),
    ("flags", "u1"), ("msg_type", "u1"),
    ("bid_px", "<u4"), ("bid_sz", "<u4"), ("bid_ct", "<u4"),
    ("ask_px", "<u4"), ("ask_sz", "<u4"), ("ask_ct", "<u4"),
])
assert MD_DTYPE.itemsize == 52

MD_LEVEL_BYTES = 12
"""Bytes of one level past the first in a top-N payload (``px``, ``sz``, ``ct``, u32)."""

DEPTH_HEADER = "Md-Depth"
"""NATS header of a top-N message: its N (the payload length says the same)."""


def md_dtype(n: int = 1) -> np.dtype:
    """Payload dtype of a depth-``n`` publication (:data:`MD_DTYPE` when ``n`` = 1).

    :data:`MD_DTYPE`'s 52 bytes, then ``bid_levels`` and ``ask_levels``: ``(n - 1, 3)`` u32
    arrays of ``(px, sz, ct)`` for levels 2..n, best first (packed, little-endian).
    """
    from hw.bbo_record import MAX_DEPTH_N

    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_DEPTH_N:
        raise ValueError(f"depth must be an integer in 1..{MAX_DEPTH_N}, not {n!r}")
    if n == 1:
        return MD_DTYPE
    return np.dtype(MD_DTYPE.descr + [("bid_levels", "<u4", (n - 1, 3)),
                                      ("ask_levels", "<u4", (n - 1, 3))])


def md_depth(payload_len: int) -> int:
    """N of a payload of ``payload_len`` bytes; ValueError when no N has that length."""
    extra = payload_len - MD_DTYPE.itemsize
    n = 1 + extra // (2 * MD_LEVEL_BYTES)
    if extra < 0 or extra % (2 * MD_LEVEL_BYTES) or n > 16:
        raise ValueError(f"not a market-data payload: {payload_len} bytes")
    return n


def _decode(data: bytes):
    return np.frombuffer(data, md_dtype(md_depth(len(data))))[0]


def _depth_of(records: np.ndarray) -> int:
    names = records.dtype.names or ()
    return 1 + (records.dtype["bid_levels"].shape[0] if "bid_levels" in names else 0)


def as_md(md: np.ndarray, dt: np.dtype) -> np.ndarray:
    """Market-data records of any depth as ``dt`` (:func:`md_dtype`): the first 52 bytes,
    levels cut or padded with zeros."""
    out = np.zeros(len(md), dt)
    for f in MD_DTYPE.names:
        out[f] = md[f]
    k = min(_depth_of(md), 1 + (dt["bid_levels"].shape[0] if "bid_levels" in dt.names else 0))
    if k > 1:
        out["bid_levels"][:, : k - 1] = md["bid_levels"][:, : k - 1]
        out["ask_levels"][:, : k - 1] = md["ask_levels"][:, : k - 1]
    return out


def model_depth_records(feed, locates, n: int) -> np.ndarray:
    """Depth-``n`` card records (:func:`hw.bbo_record.dtype`) from the reference model.

    :func:`host.feed.depth.depth_trace` of ``feed.itch`` for ``locates``; the records without
    :data:`hw.bbo_record.FLAG_DEPTH_ONLY` are, field for field,
    :func:`host.trading.session.model_records`' (``seq``, valid bits, the ``gap`` bit on the
    first of them after a MoldUDP64 sequence gap; tested); a depth-only record carries the
    valid bits and the depth-only flag. ``record_seq`` counts every record. Sizes saturate
    at 2**32-1 as the card's do.
    """
    from host.feed.depth import depth_trace
    from hw import bbo_record

    tr = depth_trace(feed.itch, locates, n=n)
    rec = np.zeros(len(tr), bbo_record.dtype(n))
    mi = tr["msg_index"].astype(np.int64)
    rec["seq"] = feed.seq[mi] if len(mi) else 0
    rec["ts_event"] = tr["ts_event"]
    rec["locate"] = tr["locate"]
    rec["depth_n"] = n
    sat = (1 << 32) - 1
    for c in ("bid_px", "bid_sz", "bid_ct", "ask_px", "ask_sz", "ask_ct"):
        rec[c] = np.minimum(tr[c].astype(np.int64), sat)
    if n > 1:
        for side in ("bid_levels", "ask_levels"):
            rec[side] = np.minimum(tr[side], sat).astype(np.uint32)
    only = tr["depth_only"].astype(bool)
    flags = np.where(tr["bid_px"] > 0, bbo_record.FLAG_BID_VALID, 0) | np.where(
        tr["ask_px"] > 0, bbo_record.FLAG_ASK_VALID, 0)
    flags = flags | np.where(only, bbo_record.FLAG_DEPTH_ONLY, 0)
    main = np.flatnonzero(~only)  # the gap bit as model_records places it: on BBO records
    jumps = np.nonzero(np.diff(feed.seq) != 1)[0] + 1
    at = np.searchsorted(mi[main], jumps)
    at = at[at < len(main)]
    flags[main[at]] |= bbo_record.FLAG_GAP
    rec["flags"] = flags
    rec["record_seq"] = np.arange(len(rec))
    return rec

_BAD = re.compile(r"[^A-Z0-9]")


def subject_token(symbol: str) -> str:
    """A symbol as one NATS subject token (upper case, ``A-Z0-9_``)."""
    return _BAD.sub("_", symbol.strip().upper()) or "_"


def stream_name(venue: str) -> str:
    """JetStream stream of a venue's market data."""
    return "MD_" + subject_token(venue)


def to_md(records: np.ndarray, start: dict | None = None) -> np.ndarray:
    """Card records (:func:`hw.bbo_record.dtype` ``(n)``) -> :func:`md_dtype` ``(n)``,
    ``sym_seq`` per locate (:data:`MD_DTYPE` for 64-byte records).

    ``sym_seq`` counts each locate's records in card order from ``start[locate] + 1``
    (default 1).
    """
    md = np.zeros(len(records), md_dtype(_depth_of(records)))
    for f in ("seq", "ts_event", "locate", "flags", "msg_type", "bid_px", "bid_sz", "bid_ct",
              "ask_px", "ask_sz", "ask_ct"):
        md[f] = records[f]
    if "bid_levels" in md.dtype.names:
        md["bid_levels"] = records["bid_levels"]
        md["ask_levels"] = records["ask_levels"]
    loc = records["locate"].astype(np.int64)
    order = np.argsort(loc, kind="stable")
    sl = loc[order]
    first = np.r_[0, np.nonzero(np.diff(sl))[0] + 1]
    run = np.arange(len(sl)) - np.repeat(first, np.diff(np.r_[first, len(sl)]))
    md["sym_seq"][order] = run + 1
    if start:
        md["sym_seq"] += np.array([start.get(int(x), 0) for x in md["locate"].tolist()],
                                  np.uint64)
    return md


async def ensure_md_stream(js, venue: str, *, max_age_s: float = 0.0) -> str:
    """Create (or keep) the stream ``MD_<VENUE>`` on ``md.<venue>.>``; returns its name."""
    from nats.js.api import StreamConfig

    name = stream_name(venue)
    cfg = StreamConfig(name=name, subjects=[f"md.{subject_token(venue).lower()}.>"],
                       max_age=max_age_s or None)
    try:
        await js.add_stream(cfg)
    except Exception:  # exists with another config: update it to this one
        await js.update_stream(cfg)
    return name


def _subjects(venue: str, locates, names: dict[int, str]) -> dict[int, str]:
    v = subject_token(venue).lower()
    return {int(loc): f"md.{v}.{subject_token(names.get(int(loc), f'L{int(loc)}'))}"
            for loc in locates}


async def publish_records(js, venue: str, records: np.ndarray, names: dict[int, str], *,
                          window: int = 4096) -> dict:
    """Publish card records to JetStream, one :func:`md_dtype` message per record.

    Parameters
    ----------
    js : nats.js.JetStreamContext
    venue : str
    records : numpy.ndarray
        :func:`hw.bbo_record.dtype` records (card order): 64-byte ones give :data:`MD_DTYPE`
        messages, depth-N ones give :func:`md_dtype` ``(N)`` messages with the
        ``Md-Depth`` header.
    names : dict
        ``{locate: symbol}`` (the feed's stock directory, inverted).
    window : int
        Publishes in flight before waiting for their acknowledgements (every record is
        acknowledged by the stream before this returns).

    Returns
    -------
    dict
        ``{"records": n, "subjects": {locate: subject}, "first_stream_seq", "last_stream_seq"}``.

    Notes
    -----
    A subject's ``sym_seq`` continues from the number of messages the stream already holds on
    it, so a later publication (the next session) extends each subject without a jump.
    """
    subj = _subjects(venue, np.unique(records["locate"]).tolist(), names)
    info = await js.stream_info(stream_name(venue),
                                subjects_filter=f"md.{subject_token(venue).lower()}.>")
    held = info.state.subjects or {}
    md = to_md(records, {loc: held.get(s, 0) for loc, s in subj.items()})
    raw = md.tobytes()
    n, size = len(md), md.dtype.itemsize
    depth = _depth_of(records)
    hdr = {DEPTH_HEADER: str(depth)} if depth > 1 else None
    locs = md["locate"].tolist()
    first = last = 0
    pending = []
    for i in range(n):
        pending.append(await js.publish_async(subj[locs[i]], raw[i * size:(i + 1) * size],
                                              headers=hdr))
        if len(pending) >= window or i == n - 1:
            acks = await asyncio.gather(*pending)
            if not first:
                first = acks[0].seq
            last = acks[-1].seq
            pending = []
    return {"records": n, "subjects": subj, "first_stream_seq": first, "last_stream_seq": last}


@dataclass
class GapReport:
    """What a consumer saw: gaps found and repaired, anomalies counted (never raised)."""

    received: int = 0
    gaps: int = 0
    repaired: int = 0
    seq_backwards: int = 0
    duplicates: int = 0
    per_subject: dict = field(default_factory=dict)


class MdConsumer:
    """Reassemble the per-symbol streams; detect and repair gaps from the stream.

    Feed it messages with :meth:`on_message` (subject, payload, stream sequence), e.g. from a
    JetStream consumer; it keeps, per subject, the records in ``sym_seq`` order. A jump in
    ``sym_seq`` is a gap: the missing records are fetched from the stream
    (:meth:`repair`), from the stream sequence after the last one held for that subject.
    ``drop`` (a set of ``(subject, sym_seq)``) discards chosen messages on arrival, to test the
    repair path (fault injection).
    """

    def __init__(self, js, stream: str, *, drop=frozenset()) -> None:
        self.js = js
        self.stream = stream
        self.drop = set(drop)
        self.records: dict[str, list[np.void]] = {}
        self.last_stream_seq: dict[str, int] = {}
        self.last_md_seq: dict[str, int] = {}
        self.report = GapReport()

    async def on_message(self, subject: str, data: bytes, stream_seq: int) -> None:
        """Take one message in stream order."""
        rec = _decode(data)
        if (subject, int(rec["sym_seq"])) in self.drop:
            return
        self.report.received += 1
        have = self.records.setdefault(subject, [])
        want = len(have) + 1
        got = int(rec["sym_seq"])
        if got < want:
            self.report.duplicates += 1
            return
        if got > want:
            self.report.gaps += 1
            await self.repair(subject, got)
        self._keep(subject, rec, stream_seq)

    def _keep(self, subject: str, rec, stream_seq: int) -> None:
        if int(rec["seq"]) < self.last_md_seq.get(subject, 0):
            self.report.seq_backwards += 1
        self.last_md_seq[subject] = int(rec["seq"])
        self.records[subject].append(rec)
        self.last_stream_seq[subject] = stream_seq
        self.report.per_subject[subject] = len(self.records[subject])

    async def repair(self, subject: str, upto: int) -> None:
        """Fetch ``subject``'s records before ``sym_seq == upto`` that are missing."""
        have = self.records[subject]
        seq = self.last_stream_seq.get(subject, 0) + 1
        while len(have) + 1 < upto:
            m = await self.js.get_msg(self.stream, seq=seq, subject=subject, next=True)
            rec = _decode(m.data)
            if int(rec["sym_seq"]) == len(have) + 1:
                self._keep(subject, rec, m.seq)
                self.report.repaired += 1
            seq = m.seq + 1

    async def complete(self, subject_filter: str = ">") -> None:
        """Repair the tails: a subject whose last records were lost has no later message to
        show the jump, so compare with the stream's per-subject counts."""
        info = await self.js.stream_info(self.stream, subjects_filter=subject_filter)
        for subject, count in (info.state.subjects or {}).items():
            have = self.records.setdefault(subject, [])
            if len(have) < count:
                self.report.gaps += 1
                await self.repair(subject, count + 1)

    def frame(self, subject: str) -> np.ndarray:
        """The subject's records, reassembled (``sym_seq`` order), as :func:`md_dtype` of the
        deepest record held (:data:`MD_DTYPE` when all are BBO-only; narrower records get
        zero levels)."""
        recs = self.records.get(subject, [])
        if not recs:
            return np.zeros(0, MD_DTYPE)
        n = max(_depth_of(r) for r in recs)
        out = np.zeros(len(recs), md_dtype(n))
        for i, r in enumerate(recs):
            d = _depth_of(r)
            if d == n:
                out[i] = r
                continue
            for f in MD_DTYPE.names:
                out[f][i] = r[f]
            if d > 1:
                out["bid_levels"][i, : d - 1] = r["bid_levels"]
                out["ask_levels"][i, : d - 1] = r["ask_levels"]
        return out

    async def consume(self, subject_filter: str, expected: int, *, batch: int = 1024,
                      timeout: float = 10.0) -> GapReport:
        """Pull ``expected`` messages of ``subject_filter`` from the stream's start."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        sub = await self.js.pull_subscribe(
            subject_filter, stream=self.stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE))
        seen = 0
        try:
            while seen < expected:
                msgs = await sub.fetch(min(batch, expected - seen), timeout=timeout)
                for m in msgs:
                    await self.on_message(m.subject, m.data, m.metadata.sequence.stream)
                seen += len(msgs)
        finally:
            await sub.unsubscribe()
        await self.complete()
        return self.report
