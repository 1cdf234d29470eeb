"""A/B replay: one capture sent on two lines with independent damage, merged by the arbiter.

The frames of a :class:`host.feed.capture.Feed` are copied onto line A and line B; each copy
is damaged on its own (:class:`LineDamage`: packets dropped, repeated, swapped with the next
one, the line dead after N packets; a seeded RNG per line) and given arrival times (a spaced
schedule, each packet decided before the next one arrives, B half a slot behind A). Both
lines then go through the two-line ingress model :func:`host.card.ab_model.ab_ingress` (the
:class:`host.card.ab_model.ArbiterModel` of :class:`hw.arbiter.LineArbiter`, then the one
MoldUDP64/framer/decoder model). The messages it hands on make the merged ITCH stream whose
BBO trace is compared with the clean single-line run.

What must hold (checked by :func:`check`):

* every message number delivered on at least one line in time is forwarded once, so with no
  gap flagged the BBO trace equals the clean run's row for row;
* a gap is flagged for every message that neither line carried; a flagged message was
  missing on both lines or arrived on a line only after a later packet (a reorder: the
  arbiter, like MoldUDP64, has no reorder buffer and takes the late copy as a duplicate).

Only the Python model of the card runs two lines today: the simulated card
(:mod:`host.card.sim`) is built with one MAC input (``ID_LINES = 1``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from hw.arbiter import DEFAULT_TIMEOUT

__all__ = [
    "LINE_NAMES",
    "LineDamage",
    "ABResult",
    "damage",
    "line_schedule",
    "ab_replay",
    "line_table",
    "check",
    "edge_losses",
    "merged_trace",
]

LINE_NAMES = ("a", "b")
BEAT_BYTES = 8  # the card's 64-bit MAC beats (the arbiter model's header-beat arithmetic)


@dataclass(frozen=True)
class LineDamage:
    """Damage applied to one line's copy of the frames.

    Attributes
    ----------
    drop, dup, reorder : float
        Per-packet probabilities (their sum at most 1): left out, sent twice in a row, swapped
        with the next packet.
    dead_after : int or None
        The line carries only its first ``dead_after`` packets of the capture (then dies).
    """

    drop: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    dead_after: int | None = None

    def __post_init__(self):
        for name in ("drop", "dup", "reorder"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} rate {v} is not in [0, 1]")
        if self.drop + self.dup + self.reorder > 1.0 + 1e-12:
            raise ValueError(
                f"drop + dup + reorder = {self.drop + self.dup + self.reorder:g} exceeds 1"
            )
        if self.dead_after is not None and self.dead_after < 0:
            raise ValueError(f"dead-after {self.dead_after} is negative")


def damage(n: int, d: LineDamage, rng: random.Random) -> list[int]:
    """Frame indices one line carries, in its order: each of ``0..n-1`` dropped, repeated or
    swapped with the next at ``d``'s rates; nothing from index ``d.dead_after`` on.

    The same draw order as the gateware bench's ``damage`` (``sim/arbiter/tb_arbiter.py``):
    one ``rng.random()`` per packet decision.
    """
    out: list[int] = []
    i = 0
    m = n if d.dead_after is None else min(d.dead_after, n)
    while i < m:
        r = rng.random()
        if r < d.drop:
            i += 1
        elif r < d.drop + d.dup:
            out += [i, i]
            i += 1
        elif r < d.drop + d.dup + d.reorder and i + 1 < m:
            out += [i + 1, i]
            i += 2
        else:
            out.append(i)
            i += 1
    return out


def line_schedule(order: list[int], line: int, slot: int) -> list[int]:
    """Arrival cycle of each packet of a line at the arbiter.

    The capture's packet ``i`` has the time slot ``i * slot`` on line A and half a slot later
    on line B (first arrival wins: A's copy, unless A missed it). A line's packets take the
    slots in their order (a swapped pair exchanges its two slots, a repeated packet comes a
    quarter slot after the first copy), so the lines stay aligned whatever each one lost.
    ``slot`` exceeds every frame's beats, so each packet is decided before the next arrives
    (the arbiter model is then exact, ``host.card.ab_model``).
    """
    ranks = sorted(order)
    off = slot // 2 if line else 0
    out = []
    for p, i in enumerate(ranks):
        again = p > 0 and ranks[p - 1] == i
        out.append(i * slot + off + (slot // 4 if again else 0))
    return out


@dataclass
class ABResult:
    """What :func:`ab_replay` measured.

    Attributes
    ----------
    orders : list of list of int
        Frame indices each line carried, in its order.
    line_counters : dict
        :data:`hw.arbiter.ARBITER_COUNTERS` of the arbiter model.
    won : list of int
        Packets forwarded from each line.
    ingress : dict
        The ingress counters (Ethernet ones summed over both lines; MoldUDP64 ``gaps``,
        ``missing``, ``duplicates`` of the merged stream).
    gaps : list of (int, int)
        ``(first, count)`` of every gap MoldUDP64 flagged, in order.
    seq : numpy.ndarray
        Sequence number of every message handed on, in order.
    itch : bytes
        Those messages in NASDAQ file framing (the merged stream).
    timeout : int
        ``CONFIG_AB_TIMEOUT`` used.
    slot : int
        Cycles between two packets of a line.
    """

    orders: list
    line_counters: dict
    won: list
    ingress: dict
    gaps: list
    seq: np.ndarray
    itch: bytes
    timeout: int
    slot: int
    extra: dict = field(default_factory=dict)


def _frames(feed) -> list[bytes]:
    off = feed.frame_offsets()
    buf = feed.buf
    return [bytes(buf[off[i] : off[i + 1]]) for i in range(feed.n_frames)]


def ab_replay(feed, damages, *, seed: int = 0, timeout: int = DEFAULT_TIMEOUT) -> ABResult:
    """Send ``feed`` on two lines damaged by ``damages`` (one :class:`LineDamage` per line)
    through the two-line ingress model.

    Parameters
    ----------
    feed : host.feed.capture.Feed
    damages : sequence of LineDamage
        Line A's and line B's.
    seed : int
        Line A draws from ``random.Random(seed)``, line B from ``random.Random(seed + 1)``.
    timeout : int
        ``CONFIG_AB_TIMEOUT`` in cycles (0: a packet past a gap never waits).
    """
    from host.card.ab_model import ETH_COUNTERS, ArbiterModel, eth_count, parse_arrival
    from host.card.ingress_model import IngressModel

    if len(damages) != 2:
        raise ValueError("the arbiter has two lines")
    if timeout < 0 or timeout >= 1 << 32:
        raise ValueError(f"timeout {timeout} is not a 32-bit cycle count")
    frames = _frames(feed)
    n = len(frames)
    lens = feed.lens
    # a packet every `slot` cycles: longer than any frame (one beat per cycle) and than the
    # arbiter's decision, so each packet is decided before the next (the model is then exact)
    slot = int(max(1, (int(lens.max()) if n else 0) + BEAT_BYTES - 1) // BEAT_BYTES) + 16
    orders = [damage(n, d, random.Random(seed + k)) for k, d in enumerate(damages)]
    ing = IngressModel(udp_port=feed.dst_port, ip_dst=feed.dst_ip, session=feed.session,
                       data_width=8 * BEAT_BYTES)
    eth = dict.fromkeys(ETH_COUNTERS, 0)
    arrivals = []
    for k, order in enumerate(orders):
        times = line_schedule(order, k, slot)
        for j, (t, i) in enumerate(zip(times, order, strict=True)):
            eth_count(eth, ing, frames[i], False)
            a = parse_arrival(ing, frames[i], False, k, t, j)
            if a is not None:
                arrivals.append(a)
    arb = ArbiterModel(session=feed.session, timeout=timeout)
    gaps = []
    for a in arb.run(arrivals):
        g0 = ing.counters["gaps"]
        ing.feed(a.frame, a.mac_error)
        if ing.counters["gaps"] != g0:
            gaps.append(ing.last_gap)
    ing.counters.update(eth)
    won = [0, 0]
    for x, how, _seq, _count in arb.log:
        if how != "drop":
            won["ab".index(x)] += 1
    msgs = ing.messages_log
    seq = np.array([s for s, _m, _g in msgs], np.int64)
    itch = b"".join(len(m).to_bytes(2, "big") + m for _s, m, _g in msgs)
    return ABResult(
        orders=orders,
        line_counters=dict(arb.counters),
        won=won,
        ingress=dict(ing.counters),
        gaps=gaps,
        seq=seq,
        itch=itch,
        timeout=timeout,
        slot=slot,
    )


def line_table(r: ABResult) -> str:
    """Per-line counters as a small text table."""
    c = r.line_counters
    rows = ["line  received   won  dup-dropped  gaps-filled-from-other"]
    for k, x in enumerate(LINE_NAMES):
        rows.append(
            f"{x:>4}  {c[f'line_{x}_packets']:8d}  {r.won[k]:4d}  {c[f'line_{x}_duplicates']:11d}"
            f"  {c[f'line_{x}_filled']:22d}"
        )
    missing = r.ingress["missing"]
    rows.append(
        f"both lines missed: {len(r.gaps)} gap(s), {missing} message(s); "
        f"timeouts (a line waited for the other): {c['line_timeouts']}"
    )
    return "\n".join(rows)


def _frame_seqs(feed) -> list[np.ndarray]:
    """Sequence numbers of the messages of every frame (frame index -> array)."""
    order = np.argsort(feed.frame, kind="stable")
    cuts = np.searchsorted(feed.frame[order], np.arange(feed.n_frames + 1))
    return [feed.seq[order[cuts[i] : cuts[i + 1]]] for i in range(feed.n_frames)]


def check(feed, r: ABResult) -> list[str]:
    """What the arbitration rules require of ``r``, independently of the arbiter model: a list
    of violations (empty when every rule holds).

    * each message forwarded at most once, in increasing sequence order;
    * the flagged gaps cover every message neither line carried (between the first and the
      last message forwarded: MoldUDP64 starts at the first packet it sees and cannot see a
      loss after the last), and only messages that were missing on both lines or reached a
      line out of order (after a later packet of that line);
    * every other message of the capture is forwarded.
    """
    bad = []
    s = r.seq
    if s.size and np.any(np.diff(s) <= 0):
        bad.append("messages forwarded twice or out of order")
    fs = _frame_seqs(feed)
    on = [set(np.concatenate([fs[i] for i in set(o)] or [np.zeros(0, np.int64)]).tolist())
          for o in r.orders]
    every = set(feed.seq.tolist())
    absent = every - on[0] - on[1]
    late: set[int] = set()
    for o in r.orders:
        top = -1
        for i in o:  # a packet behind a later one on its own line
            if i < top:
                late.update(fs[i].tolist())
            top = max(top, i)
    flagged: set[int] = set()
    for first, count in r.gaps:
        flagged.update(range(first, first + count))
    got = set(s.tolist())
    lo, hi = (int(s.min()), int(s.max())) if s.size else (0, -1)
    inside = {q for q in absent if lo <= q <= hi}
    if inside - flagged:
        bad.append(f"{len(inside - flagged)} message(s) missing on both lines not flagged as a gap")
    if flagged - absent - late:
        bad.append(f"{len(flagged - absent - late)} message(s) flagged as a gap though a line "
                   "delivered them in order")
    lost = every - got - flagged - (absent - inside)
    if lost:
        bad.append(f"{len(lost)} message(s) delivered on a line but neither forwarded nor "
                   "flagged")
    return bad


def edge_losses(feed, r: ABResult) -> tuple[int, int]:
    """Messages before the first and after the last forwarded one (no gap can show them)."""
    if not r.seq.size:
        return feed.n_messages, 0
    return int((feed.seq < r.seq[0]).sum()), int((feed.seq > r.seq[-1]).sum())


def merged_trace(feed, r: ABResult, locates=None) -> np.ndarray:
    """BBO trace (:data:`host.feed.book.BBO_DTYPE`) of the merged stream, ``msg_index``
    numbered as in the capture (the clean run's numbering), so that with every message
    forwarded it equals :func:`host.card.model.reference_trace` of ``feed.itch`` row for row."""
    from host.card.model import reference_trace

    tr = reference_trace(r.itch, locates)
    if len(tr):
        cap = np.searchsorted(feed.seq, r.seq[tr["msg_index"]])
        tr["msg_index"] = cap
    return tr
