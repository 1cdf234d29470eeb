"""Replay market data through the card: set it up, drive it in batches, collect the records.

A :class:`host.feed.capture.Feed` (a NASDAQ ITCH 5.0 file packetized into MoldUDP64 frames, or
a pcap of such frames sent as they are) goes through a :class:`host.card.Card`:
:func:`setup_card` writes the filters and subscriptions, :func:`drive` sends the frames in
batches and drains the BBO records, :func:`replay_through_card` does both and clears the books
after a sequence gap. What is measured is reported and verified by :mod:`host.card.report`;
the ``python -m host replay`` command is :mod:`host.cli.card`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.feed.capture import Feed, symbol_directory
from host.feed.record_map import LOCATE_MAX

# ---------------------------------------------------------------------------------------------
# Driving the card


@dataclass
class RunResult:
    """What came out of one replay through a card.

    Attributes
    ----------
    raw : numpy.ndarray
        ``(n, record_bytes)`` ``uint8`` BBO records in output order.
    rec_cycles : numpy.ndarray or None
        Card cycle at which each record was accepted (simulated card).
    beat_cycles : numpy.ndarray or None
        Card cycle at which each MAC beat was accepted, in send order (simulated card).
    wall_s : float
        Wall-clock seconds of the run (sending, simulating, receiving).
    cycles : int or None
        Card cycles the run took (simulated card).
    epoch : int or None
        Shim cycle at which the card's ``STATUS_CYCLES`` counter was 0 (simulated card): a
        record's ``card_cycles`` stamp is shim cycle ``card_cycles + epoch``.
    """

    raw: np.ndarray
    rec_cycles: np.ndarray | None
    beat_cycles: np.ndarray | None
    wall_s: float
    cycles: int | None
    epoch: int | None = None


def drive(
    card,
    feed: Feed,
    *,
    batch_frames: int = 1024,
    progress=None,
    latency=True,
    after_batch=None,
    on_records=None,
):
    """Send ``feed`` through ``card`` in batches of frames, collecting every record.

    Parameters
    ----------
    card : host.card.Card
    feed : Feed
    batch_frames : int
        Frames queued per batch (each batch is one ``send`` + one C++ ``run``).
    progress : callable, optional
        Called with the number of messages of each batch once it has been processed.
    latency : bool
        Record the accept cycle of every MAC beat (simulated card) for latency.
    after_batch : callable, optional
        Called with the end frame index after each batch has been processed (the card is
        idle then: register accesses see the state after exactly those frames).
    on_records : callable, optional
        Called with every ``(n, record_bytes)`` array of raw records as it is drained.
    """
    import time

    t = card.t
    sim = t.has_cycles
    if sim and latency:
        t.record_beat_cycles(True)
    bb = getattr(t, "beat_bytes", 8)
    raws, cycs, beats = [], [], []
    c0 = t.cycle if sim else None
    msg_per_frame = np.bincount(feed.frame, minlength=feed.n_frames) if progress else None
    t0 = time.perf_counter()

    def drain():
        while True:
            r, c = t.recv_records(1 << 16)
            if len(r) == 0:
                return
            raws.append(r)
            if on_records is not None:
                on_records(r)
            if c is not None:
                cycs.append(c)

    for lo in range(0, feed.n_frames, batch_frames):
        hi = min(feed.n_frames, lo + batch_frames)
        card.send(feed.slice_frames(lo, hi))
        while card.run(max_records=1 << 20) == 1:
            drain()
        drain()
        if sim and latency:
            nb = np.maximum(1, (feed.lens[lo:hi].astype(np.int64) + bb - 1) // bb).sum()
            beats.append(t.take_beat_cycles(int(nb) + 1))
        if after_batch is not None:
            after_batch(hi)
            drain()
        if progress is not None:
            progress(int(msg_per_frame[lo:hi].sum()))
    wall = time.perf_counter() - t0
    empty = np.zeros((0, getattr(t, "record_bytes", 64)), np.uint8)
    return RunResult(
        raw=np.concatenate(raws) if raws else empty,
        rec_cycles=np.concatenate(cycs) if cycs else (np.zeros(0, np.uint64) if sim else None),
        beat_cycles=np.concatenate(beats) if beats else None,
        wall_s=wall,
        cycles=(t.cycle - c0) if sim else None,
        epoch=getattr(t, "epoch", None) if sim else None,
    )


def message_in_cycles(feed: Feed, beat_cycles: np.ndarray, beat_bytes: int = 8) -> np.ndarray:
    """Cycle at which the last byte of every message of ``feed`` entered the card.

    ``beat_cycles`` holds the accept cycle of every MAC beat in send order (one beat per
    ``beat_bytes`` of a frame, at least one per frame).
    """
    nb = np.maximum(1, (feed.lens.astype(np.int64) + beat_bytes - 1) // beat_bytes)
    base = np.zeros(nb.size + 1, np.int64)
    np.cumsum(nb, out=base[1:])
    if beat_cycles.size != base[-1]:
        raise ValueError(f"{beat_cycles.size} beat cycles for {base[-1]} beats")
    return beat_cycles[base[feed.frame] + (feed.end - 1) // beat_bytes]


# ---------------------------------------------------------------------------------------------
# Replay: card setup and the whole run


def resolve_locates(feed: Feed, symbols=None, slots: int | None = None) -> list[int]:
    """Locates to subscribe: ``symbols`` (names or locate numbers) or every symbol of the feed.

    Raises ``ValueError`` for an unknown symbol, a locate code out of range, or when there are
    more than ``slots``.
    """
    directory = symbol_directory(feed.itch)
    if symbols:
        out = []
        for s in symbols:
            s = str(s).strip()
            if s.isdigit():
                if int(s) > LOCATE_MAX:
                    raise ValueError(f"locate code {s} is out of range (0..{LOCATE_MAX})")
                out.append(int(s))
            elif s.upper() in directory:
                out.append(directory[s.upper()])
            else:
                raise ValueError(f"symbol {s!r} is not in the feed's stock directory")
        locs = sorted(set(out))
    elif directory:
        locs = sorted(set(directory.values()))
    else:
        from host.feed.bulk import parse_records

        recs, _ = parse_records(feed.itch)
        locs = sorted(set(recs["stock_locate"][np.isin(recs["msg_type"], list(b"AF"))].tolist()))
    if slots is not None and len(locs) > slots:
        raise ValueError(
            f"{len(locs)} symbols but the card has {slots} book slots: choose with --symbols"
        )
    return locs


def open_sim_card(*, allow_build: bool = True, params: dict | None = None, **kw):
    """A :class:`host.card.Card` on the simulated card (builds the model if needed)."""
    from host.card import Card
    from host.card.sim import SimTransport

    return Card(SimTransport(params=params, allow_build=allow_build, **kw))


def setup_card(card, feed: Feed, locates, ticks: dict | None = None) -> None:
    """Filters from the feed's destination and session, subscriptions, counters cleared.

    Each slot's tick comes from the feed's prices (:func:`host.card.ticks.tick_codes`);
    ``ticks`` (``{locate: code}``) overrides some.
    """
    from host.card.ticks import tick_codes

    card.configure(udp_port=feed.dst_port, ip_dst=feed.dst_ip, session=feed.session)
    card.subscribe(locates, ticks={**tick_codes(feed.itch, locates), **(ticks or {})})
    card.clear_counters()
    card.clear_sticky()


@dataclass
class Replay:
    """Everything :func:`replay_through_card` measured."""

    feed: Feed
    locates: list[int]
    run: RunResult
    recs: np.ndarray
    trace: np.ndarray
    flags: dict[str, np.ndarray]
    """``valid`` and ``stale`` of every row of ``trace`` (:func:`host.card.model.trace_flags`)."""
    counters: dict
    status: dict
    restarts: list[int]
    clk_hz: int
    params: object = None
    """The card's build parameters (:class:`hw.regs.BuildParams`, ``None`` if unknown)."""
    depth_n: int = 1
    """Levels per side of the card's records: ``recs`` has :func:`hw.bbo_record.dtype`
    ``(depth_n)``; ``trace`` and ``flags`` leave out the ``depth_only`` records (they are the
    trace a ``depth_n = 1`` card gives)."""
    recoveries: list = None
    """:class:`Recovery` of every re-seed the host made (``recover=True``)."""

    def __post_init__(self):
        if self.recoveries is None:
            self.recoveries = []


@dataclass
class Recovery:
    """One re-seed of a symbol's slot by :func:`replay_through_card`.

    Attributes
    ----------
    msg_index : int
        Messages processed before it: the slot holds the reference book after messages
        ``0 .. msg_index - 1``.
    locate : int
    cause : str
        ``"stale"`` (a sequence gap), ``"invalid"`` (a record flagged ``book_bad``: table
        full, off grid, size overflow, missing level) or ``"far"`` (a record flagged
        ``book_invalid`` alone: a level beyond the ladder window would show in the top N, e.g.
        a far stub quote left alone when the near levels drained).
    orders : int
        Live orders injected.
    seq : int
        Sequence number the commit record carries.
    bbo : tuple
        The reference BBO at that point (``bid_px, bid_sz, bid_ct, ask_px, ask_sz, ask_ct``):
        what the commit record must show.
    tick : int
        Tick code of the slot after the re-seed.
    """

    msg_index: int
    locate: int
    cause: str
    orders: int
    seq: int
    bbo: tuple
    tick: int


def live_orders(book, locate: int) -> list[tuple[int, str, int, int]]:
    """``(ref, side, shares, price)`` of the live orders of ``locate`` in a
    :class:`host.feed.book.L3Book`, in the book's priority order: per side best price first,
    then time (the order they were added, a ``U`` counting as a new add).

    Best price first keeps the card's ladder window on the touch while the seed goes in
    (:mod:`hw.ladder`: the first add of a side sets the window; later worse prices beyond it
    are counted far), so the re-seeded slot represents the best ``levels`` ticks of each side.
    """
    bids, asks = [], []
    for ref, (loc, side, px, sh) in book.orders.items():
        if loc == locate and sh > 0:
            (bids if side == "B" else asks).append((ref, side, sh, px))
    bids.sort(key=lambda o: -o[3])  # stable: time order within a price
    asks.sort(key=lambda o: o[3])
    return bids + asks


class _ReferenceCursor:
    """The host's reference book (:class:`host.feed.book.L3Book`) advanced lazily through the
    messages the card was given, to the batch boundary of a recovery."""

    def __init__(self, itch, locates):
        from host.feed.book import L3Book, iter_indexed

        self.book = L3Book(locates)
        self._it = iter_indexed(itch)
        self._next = None
        self.at = 0

    def advance(self, n: int):
        """Apply every message with index below ``n``; return the book."""
        b = self.book
        if self._next is not None:
            if self._next[0] >= n:
                return b
            b.apply(self._next[1])
            self._next = None
        for idx, msg in self._it:
            if idx >= n:
                self._next = (idx, msg)
                break
            b.apply(msg)
        self.at = n
        return b


def replay_through_card(
    card,
    feed: Feed,
    locates,
    *,
    batch_frames: int = 32,
    progress: bool = False,
    clear_on_gap: bool = True,
    latency: bool = True,
    recover: bool = True,
    max_recoveries: int | None = None,
    ticks: dict | None = None,
) -> Replay:
    """Configure ``card``, send ``feed`` through it, and collect records, counters and status.

    With ``recover`` (the default), the host recovers a symbol by itself at the end of every
    batch (the card is idle then): after a sequence gap (``STATUS_STICKY.seen_gap``: every
    slot is stale) each subscribed symbol, and any symbol whose last record was flagged
    ``book_bad`` (not valid until cleared: table full, off grid, size overflow, missing level)
    or ``book_invalid`` alone (``far_visible``: a level beyond the ladder window shows in the
    top N; it would heal only when the side comes back inside the window, and the re-seed
    centres the window on today's touch), is re-seeded (:meth:`host.card.Card.reseed`)
    with its live orders in the host's reference book (:class:`host.feed.book.L3Book` over the
    messages given to the card, up to that batch boundary), and the feed continues. A slot
    re-seeded after an off-grid price gets the coarsest tick that divides its live prices and
    the old tick. Each recovery is kept in :attr:`Replay.recoveries`; ``max_recoveries``
    bounds them (then the slot stays flagged). ``ticks`` overrides slot ticks
    (:func:`setup_card`).

    With ``recover=False`` and ``clear_on_gap``, after a gap the host empties every book
    (``clear_stale``) instead, and the message index is kept in :attr:`Replay.restarts` (the
    reference restarts from empty books there); not-valid slots stay not valid.
    """
    from host.card.model import card_trace, decode, trace_flags
    from host.card.ticks import tick_code
    from hw import bbo_record

    setup_card(card, feed, locates, ticks)
    frame_msgs = np.bincount(feed.frame, minlength=feed.n_frames)
    done = np.concatenate([[0], np.cumsum(frame_msgs)])
    restarts: list[int] = []
    recoveries: list[Recovery] = []
    last_flags: dict[int, int] = {}  # locate -> flags of its last record
    cursor = None
    subs = [int(x) for x in locates]

    depth_n = card.depth_n

    def on_records(raw):
        r = decode(raw, depth_n)
        if len(r) == 0:
            return
        loc = r["locate"]
        # the last record of every locate in this array
        rev_loc = loc[::-1]
        u, first = np.unique(rev_loc, return_index=True)
        fl = r["flags"][::-1][first]
        for k, f in zip(u.tolist(), fl.tolist(), strict=True):
            last_flags[k] = f

    def reseed(loc, n, cause):
        nonlocal cursor
        if cursor is None:
            cursor = _ReferenceCursor(feed.itch, subs)
        book = cursor.advance(n)
        orders = live_orders(book, loc)
        tick = card.tick_of(loc)
        if cause == "invalid" and tick is not None:
            from hw.ladder import TICKS

            fit = tick_code([o[3] for o in orders]) if orders else tick
            tick = min(tick, fit, key=lambda c: TICKS[c])
        seq = int(feed.seq[n - 1]) if n else 0
        k = card.reseed(loc, orders, seq=seq, tick=tick)
        recoveries.append(Recovery(n, loc, cause, k, seq, tuple(book.bbo(loc)),
                                   card.tick_of(loc)))
        last_flags.pop(loc, None)

    def after(hi):
        n = int(done[hi])
        gap = (clear_on_gap or recover) and card.field("STATUS_STICKY", "seen_gap")
        if recover:
            if gap:
                card.clear_sticky("seen_gap")
            need = {}
            for loc in subs:
                f = last_flags.get(loc, 0)
                if gap or f & bbo_record.FLAG_STALE:
                    need[loc] = "stale"
                elif f & bbo_record.FLAG_CLEARED:
                    continue  # a commit that is still not valid: that re-seed failed, stop
                elif f & bbo_record.FLAG_BOOK_BAD:
                    need[loc] = "invalid"
                elif f & bbo_record.FLAG_BOOK_INVALID:
                    need[loc] = "far"
            for loc, cause in need.items():
                if max_recoveries is not None and len(recoveries) >= max_recoveries:
                    break
                reseed(loc, n, cause)
        elif gap:
            card.clear_stale()
            card.clear_sticky("seen_gap")
            restarts.append(n)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=feed.n_messages, unit="msg", unit_scale=True, desc="replay")
    try:
        run = drive(
            card,
            feed,
            batch_frames=batch_frames,
            progress=bar.update if bar else None,
            latency=latency,
            after_batch=after,
            on_records=on_records,
        )
    finally:
        if bar is not None:
            bar.close()
    recs = decode(run.raw, depth_n)
    return Replay(
        feed=feed,
        locates=list(locates),
        run=run,
        recs=recs,
        trace=card_trace(recs, feed.seq),
        flags=trace_flags(recs),
        counters=card.counters(),
        status=card.status(),
        restarts=restarts,
        recoveries=recoveries,
        clk_hz=card.info.params.clk_hz if card.info else 0,
        params=card.info.params if card.info else None,
        depth_n=depth_n,
    )
