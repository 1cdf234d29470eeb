"""Reference model of the A/B line arbiter (:mod:`hw.arbiter`) and of the two-line ingress.

:class:`ArbiterModel` takes the packets of both lines in the order (and at the cycle) their
MoldUDP64 header reaches the arbiter and applies the arbiter's rules (``docs/ingress.md``,
"A/B line arbitration"): it returns the merged frames in forwarding order and the per-line
counters. :func:`ab_ingress` runs the whole two-line ingress: the Ethernet counters summed over
both lines, the merged frames through :class:`host.card.ingress_model.IngressModel` (the one
MoldUDP64 tracker, framer and decoder).

Timing: decisions are taken instantly at each arrival, so the counters are exact when each
packet is decided before the next one arrives (the benches' spaced schedule; at full rate the
merged messages are the same, only which copy wins a tie can differ) and a held packet's wait
ends either at the other line's next arrival or ``timeout`` cycles after it became the head.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from host.feed.spec import MOLD_END_OF_SESSION, MOLD_HEADER, MOLD_HEADER_LENGTH, MOLD_SESSION_WIDTH
from hw.arbiter import ARBITER_COUNTERS, DEFAULT_TIMEOUT

__all__ = ["Arrival", "ArbiterModel", "ab_ingress", "ETH_COUNTERS"]

_F = {f.name: f for f in MOLD_HEADER}
ETH_COUNTERS = (
    "frames", "drop_error", "drop_ethertype", "drop_ip", "drop_proto", "drop_addr", "drop_port",
    "drop_short", "drop_long",
)


@dataclass
class Arrival:
    """One line's packet at the arbiter: ``time`` (cycle its header, or its last beat when the
    header never completes, was queued), ``line`` (0: A, 1: B), the frame and its MAC error,
    and the parsed header (``mold`` false when the header did not complete)."""

    time: int
    line: int
    frame: bytes
    mac_error: bool = False
    mold: bool = False
    seq: int = 0
    count: int = 0
    sess: bytes = b""
    order: int = 0  # arrival index, for a stable sort


@dataclass
class ArbiterModel:
    """The arbiter's decisions over a list of :class:`Arrival`.

    Parameters
    ----------
    session : bytes or None
        The configured session (``None``: learned from the first packet forwarded).
    timeout : int
        ``CONFIG_AB_TIMEOUT``.
    """

    session: bytes | None = None
    timeout: int = DEFAULT_TIMEOUT
    counters: dict = field(default_factory=lambda: dict.fromkeys(ARBITER_COUNTERS, 0))
    forwarded: list = field(default_factory=list)
    log: list = field(default_factory=list)  # (line, decision, seq, count)

    def __post_init__(self):
        if self.session is not None:
            self.session = bytes(self.session).ljust(MOLD_SESSION_WIDTH, b" ")
        self.learned = None
        self.locked = False
        self.E = 0
        self.seen = [False, False]
        self.lend = [0, 0]
        self.queues: list[list[Arrival]] = [[], []]
        self.head_since = [None, None]  # time a line's head became held

    # --- classification ------------------------------------------------------------------
    def _want(self, a: Arrival) -> bytes:
        if self.session is not None:
            return self.session
        return self.learned if self.learned is not None else a.sess

    def _class(self, a: Arrival) -> str:
        match = a.mold and a.sess == self._want(a)
        is_data = a.count not in (0, MOLD_END_OF_SESSION)
        end = a.seq + (a.count if is_data else 0)
        if not a.mold or (match and self.locked and is_data and end <= self.E):
            return "drop"
        if match and self.locked and a.seq > self.E:
            return "ahead"
        return "fwd"

    def _decide(self, k: int, how: str, t: int) -> None:
        a = self.queues[k].pop(0)
        x = "ab"[k]
        c = self.counters
        c[f"line_{x}_packets"] += 1
        match = a.mold and a.sess == self._want(a)
        is_data = a.count not in (0, MOLD_END_OF_SESSION)
        end = a.seq + (a.count if is_data else 0)
        if how == "drop" and a.mold:
            c[f"line_{x}_duplicates"] += 1
        if match:
            if self.seen[k] and self.locked and a.seq > self.lend[k] and a.seq <= self.E:
                c[f"line_{x}_filled"] += 1
            if not self.seen[k] or end > self.lend[k]:
                self.lend[k] = end
            self.seen[k] = True
        if how != "drop":
            if how == "timeout":
                c["line_timeouts"] += 1
            self.forwarded.append(a)
            if match:
                if self.session is None and self.learned is None:
                    self.learned = a.sess
                if not self.locked or end > self.E:
                    self.E = end
                self.locked = True
        self.log.append((x, how, a.seq, a.count))
        self.head_since[k] = None

    def _settle(self, t: int) -> None:
        while True:
            heads = [q[0] if q else None for q in self.queues]
            cls = [self._class(h) if h is not None else None for h in heads]
            if "drop" in cls:
                self._decide(cls.index("drop"), "drop", t)
                continue
            if cls[0] == "fwd" and cls[1] == "fwd":
                self._decide(1 if heads[1].seq < heads[0].seq else 0, "fwd", t)
                continue
            if "fwd" in cls:
                self._decide(cls.index("fwd"), "fwd", t)
                continue
            if cls[0] == "ahead" and cls[1] == "ahead":
                self._decide(1 if heads[1].seq < heads[0].seq else 0, "gap", t)
                continue
            for k in (0, 1):
                if cls[k] == "ahead" and self.head_since[k] is None:
                    self.head_since[k] = t
            return

    def _expire(self, until: int | None) -> None:
        """Release held heads whose wait ended before ``until`` (None: the end of input)."""
        while True:
            held = [(self.head_since[k], k) for k in (0, 1) if self.head_since[k] is not None]
            if not held:
                return
            since, k = min(held)
            due = since + self.timeout
            if until is not None and due >= until:
                return
            self._decide(k, "timeout", due)
            self._settle(due)

    def run(self, arrivals) -> list[Arrival]:
        """Decide every arrival; returns the forwarded ones in order."""
        arr = sorted(arrivals, key=lambda a: (a.time, a.line, a.order))
        for a in arr:
            self._expire(a.time)
            self.queues[a.line].append(a)
            self._settle(a.time)
        self._expire(None)
        return self.forwarded


def parse_arrival(model, frame: bytes, mac_error: bool, line: int, time: int, order: int = 0):
    """:class:`Arrival` of a frame as the line's parser forwards it, or None when the parser
    drops it at the header (nothing reaches the arbiter). ``model`` is an
    :class:`host.card.ingress_model.IngressModel` (its filter configuration and beat size)."""
    reason, payload, _trunc = model.frame_payload(frame)
    if reason is not None:
        return None
    _, info = model.classify(frame)
    a = Arrival(time=time, line=line, frame=frame, mac_error=mac_error, order=order)
    n = len(frame)
    hdr_last = info["start"] + MOLD_HEADER_LENGTH - 1
    final_beat = (n - 1) // model.nb
    cut = mac_error and hdr_last // model.nb == final_beat
    if len(payload) >= MOLD_HEADER_LENGTH and not cut:
        a.mold = True
        a.sess = payload[_F["session"].offset : _F["session"].end]
        a.seq = int.from_bytes(payload[_F["sequence_number"].offset : _F["sequence_number"].end],
                               "big")
        a.count = int.from_bytes(payload[_F["message_count"].offset : _F["message_count"].end],
                                 "big")
    return a


def header_beat(model, frame: bytes) -> int:
    """Beat index (in the frame) at which the arbiter has this frame's header: the beat holding
    the header's last byte, else the frame's final beat."""
    reason, info = model.classify(frame)
    n = len(frame)
    last = (max(n, 1) - 1) // model.nb
    if reason is not None:
        return last
    return min(last, (info["start"] + MOLD_HEADER_LENGTH - 1) // model.nb)


def eth_count(counters: dict, model, frame: bytes, mac_error: bool) -> None:
    """Add one frame to the Ethernet counters as a line's parser counts it."""
    n = len(frame)
    counters["frames"] += 1
    if n == 0:
        counters["drop_error" if mac_error else "drop_short"] += 1
        return
    reason, info = model.classify(frame)
    if mac_error:
        counters["drop_error"] += 1
    elif reason is not None:
        counters[reason] += 1
    elif n < info["ip"] + info["total"]:
        counters["drop_short"] += 1


def ab_ingress(lines, *, session=None, timeout: int = DEFAULT_TIMEOUT, **model_kw):
    """The two-line ingress: ``lines`` is ``[(time, frame, mac_error), ...]`` per line (A, B).

    Returns ``(ingress_model, arbiter_model)``: the ingress model fed with the merged frames
    (its records; its counters with the Ethernet ones summed over both lines) and the arbiter
    model (per-line counters, decisions).
    """
    from host.card.ingress_model import IngressModel

    ing = IngressModel(session=session, **model_kw)
    eth = dict.fromkeys(ETH_COUNTERS, 0)
    arrivals = []
    for k, events in enumerate(lines):
        for j, (t, frame, err) in enumerate(events):
            eth_count(eth, ing, frame, err)
            a = parse_arrival(ing, frame, err, k, t, j)
            if a is not None:
                arrivals.append(a)
    arb = ArbiterModel(session=None if session is None else (
        session.encode("latin-1") if isinstance(session, str) else bytes(session)),
        timeout=timeout)
    for a in arb.run(arrivals):
        ing.feed(a.frame, a.mac_error)
    ing.counters.update(eth)
    return ing, arb
