"""Reference model of hw.ladder.Ladder and the op streams of its bench (pure Python).

:class:`LadderModel` keeps, per (slot, side), two books:

- ``truth``: every level, from every op (a dict price -> [size, count]): the exact book;
- the ladder's *semantics* (docs/ladder.md): the window ``lo``, the represented levels (a dict
  key -> [size, count], no bitmap, no cache, no refill), the far cache (the best far level,
  exact: key, price, size, count), the far counts and the sticky bad flag.

Every expected record carries the represented top ``n`` and the valid flag; whenever the model
predicts ``valid = 1`` it asserts that the represented top ``n`` equals the truth's top ``n``
(the design's visibility claim), so a bench that compares every record with the model checks
the gateware against the exact book on every valid record.

:class:`OrderFlow` turns order-level events (add, cancel, delete) into level ops, the way the
order table does, and can mirror them as ITCH messages into :class:`host.feed.book.L3Book`
(``cross_check=True``): its top five per side must equal the model's truth after every event.
"""

from __future__ import annotations

import bisect
import random

from hw.ladder import TICKS, LadderOp, div_tick

MASK32 = (1 << 32) - 1


def key_of(px: int, bid: bool, code: int) -> tuple[int, bool]:
    q, ok = div_tick(px, code)
    return ((~q) & MASK32 if bid else q), ok


def px_of(key: int, bid: bool, code: int) -> int:
    return ((~key) & MASK32 if bid else key) * TICKS[code]


class _Side:
    __slots__ = ("lo", "rep", "rep_keys", "fc", "far_orders", "far_lo", "truth", "truth_px")

    def __init__(self):
        self.lo = 0
        self.rep: dict[int, list[int]] = {}
        self.rep_keys: list[int] = []  # sorted keys of ``rep``
        self.fc: list[int] | None = None  # the far cache: [key, px, size, count]
        self.far_orders = 0
        self.far_lo = 0
        self.truth: dict[int, list[int]] = {}
        self.truth_px: list[int] = []  # sorted prices of ``truth``

    def rep_set(self, k, lv):
        if k not in self.rep:
            bisect.insort(self.rep_keys, k)
        self.rep[k] = lv

    def rep_del(self, k):
        del self.rep[k]
        del self.rep_keys[bisect.bisect_left(self.rep_keys, k)]

    def count_far(self, k, ct):
        """``ct`` orders at ``k`` join the far counts (``far_lo``: their lowest key)."""
        self.far_lo = k if self.far_orders == 0 else min(self.far_lo, k)
        self.far_orders += ct

    def new_far_level(self, k, px, sz, ct):
        """A far level better than every far level becomes the far cache's; the far cache's
        level before it joins the far counts."""
        if self.fc is not None:
            self.count_far(self.fc[0], self.fc[3])
        self.fc = [k, px, sz, ct]

    def promote(self):
        """After a RED: a side left without represented levels moves its window onto the far
        cache's level (when its size fits an op's 32-bit shares), which becomes represented."""
        if not self.rep and self.fc is not None and self.fc[2] < (1 << 32):
            k, _px, sz, ct = self.fc
            self.lo = k
            self.rep_set(k, [sz, ct])
            self.fc = None
            return 1
        return 0

    def is_far_add(self, k):
        return (self.fc is not None and k >= self.fc[0]) or (self.far_orders and k >= self.far_lo)


class LadderModel:
    """Expected records of :class:`hw.ladder.Ladder` (see the module docstring)."""

    def __init__(self, *, slots, depth, k, n, size_width=48, count_width=21, check_truth=True):
        self.slots, self.depth, self.k, self.n = slots, depth, k, n
        self.sz_lim, self.ct_lim = 1 << size_width, 1 << count_width
        self.check_truth = check_truth
        self.tick = [0] * slots
        self.sides = [[_Side(), _Side()] for _ in range(slots)]  # [slot][bid]
        self.bad = [False] * slots
        self.stats = dict(far_visible=0, off_grid=0, size_overflow=0, missing=0, far_ops=0,
                          evicted=0, promotions=0)

    def set_tick(self, slot: int, code: int) -> None:
        self.tick[slot] = code

    # -- truth --------------------------------------------------------------------------------
    @staticmethod
    def _truth_apply(s: _Side, op) -> None:
        lv = s.truth.get(op["px"])
        if op["kind"] == LadderOp.ADD:
            if lv is None:
                s.truth[op["px"]] = [op["q"], 1]
                bisect.insort(s.truth_px, op["px"])
            else:
                lv[0] += op["q"]
                lv[1] += 1
        elif lv is not None:
            lv[0] -= op["q"]
            lv[1] -= op["remove"]
            if lv[1] == 0:
                del s.truth[op["px"]]
                del s.truth_px[bisect.bisect_left(s.truth_px, op["px"])]

    def _truth_top(self, s: _Side, bid: bool):
        pxs = s.truth_px[:-self.n - 1:-1] if bid else s.truth_px[: self.n]
        return [(p, *s.truth[p]) for p in pxs]

    # -- semantics ----------------------------------------------------------------------------
    def apply(self, op: dict) -> dict:
        """Apply one op (a dict of :func:`hw.ladder.ladder_op_layout` fields); return the
        expected record (decoded like the bench decodes the gateware's)."""
        rec = self._apply(op)
        if op["kind"] == LadderOp.RED:  # the record is the same before and after it
            self.stats["promotions"] += self.sides[op["slot"]][bool(op["bid"])].promote()
        return rec

    def _apply(self, op: dict) -> dict:
        slot = op["slot"]
        if op["kind"] == LadderOp.CLR:
            self.sides[slot] = [_Side(), _Side()]
            self.bad[slot] = False
            return self._record(op)
        bid = bool(op["bid"])
        s = self.sides[slot][bid]
        self._truth_apply(s, op)  # a bad slot keeps applying the ops it can (as the gateware)
        k, ok = key_of(op["px"], bid, self.tick[slot])
        if not ok:
            self.stats["off_grid"] += 1
            self.bad[slot] = True
            return self._record(op)
        D = self.depth
        if op["kind"] == LadderOp.ADD:
            if s.is_far_add(k):
                self.stats["far_ops"] += 1
                if s.fc is not None and k == s.fc[0]:
                    nsz, nct = s.fc[2] + op["q"], s.fc[3] + 1
                    if nsz >= self.sz_lim or nct >= self.ct_lim:
                        self.stats["size_overflow"] += 1
                        self.bad[slot] = True
                    else:
                        s.fc[2], s.fc[3] = nsz, nct
                else:
                    s.count_far(k, 1)
                return self._record(op)
            if not s.rep:
                s.lo = k
            elif k < s.lo:
                code = self.tick[slot]
                # an evicted level better than the far cache's becomes the far cache's (any
                # order: the gateware's scan visits them in ladder index order)
                for kk in [x for x in s.rep_keys if x >= k + D]:
                    sz, ct = s.rep[kk]
                    s.rep_del(kk)
                    if s.fc is None or kk < s.fc[0]:
                        s.new_far_level(kk, px_of(kk, bid, code), sz, ct)
                    else:
                        s.count_far(kk, ct)
                    self.stats["evicted"] += 1
                s.lo = k
            elif k >= s.lo + D:
                if k < s.rep_keys[0] + D:
                    s.lo = k - D + 1
                else:
                    s.new_far_level(k, op["px"], op["q"], 1)
                    self.stats["far_ops"] += 1
                    return self._record(op)
            lv = s.rep.get(k, [0, 0])
            nsz, nct = lv[0] + op["q"], lv[1] + 1
            if nsz >= self.sz_lim or nct >= self.ct_lim:
                self.stats["size_overflow"] += 1
                self.bad[slot] = True
            else:
                s.rep_set(k, [nsz, nct])
        else:
            if s.fc is not None and k == s.fc[0]:
                self.stats["far_ops"] += 1
                if s.fc[2] < op["q"] or (op["remove"] and s.fc[3] == 0):
                    self.stats["missing"] += 1
                    self.bad[slot] = True
                else:
                    s.fc[2] -= op["q"]
                    s.fc[3] -= op["remove"]
                    if s.fc[3] == 0:
                        s.fc = None
                return self._record(op)
            if s.far_orders and k >= s.far_lo:
                s.far_orders -= op["remove"]
                self.stats["far_ops"] += 1
                return self._record(op)
            lv = s.rep.get(k)
            if lv is None or lv[0] < op["q"] or (op["remove"] and lv[1] == 0):
                self.stats["missing"] += 1
                self.bad[slot] = True
            else:
                lv[0] -= op["q"]
                lv[1] -= op["remove"]
                if lv[1] == 0:
                    s.rep_del(k)
        return self._record(op)

    def shown(self, slot: int, bid: bool) -> list[tuple]:
        """The levels a record shows of one side: the best ``n`` represented, then the far
        cache's level, as ``(px, size, count)``."""
        s = self.sides[slot][bid]
        code = self.tick[slot]
        out = [(px_of(k, bid, code), *s.rep[k]) for k in s.rep_keys[: self.n]]
        if len(out) < self.n and s.fc is not None:
            out.append((s.fc[1], s.fc[2], s.fc[3]))
        return out

    def _record(self, op) -> dict:
        slot = op["slot"]
        out = {"slot": slot, "tag": op["tag"]}
        vis = True
        for bid, name in ((True, "bids"), (False, "asks")):
            s = self.sides[slot][bid]
            out[name] = self.shown(slot, bid)
            vis &= len(out[name]) >= self.n or s.far_orders == 0
        bad = self.bad[slot]
        out["bad"] = int(bad)
        out["far_visible"] = int(not vis)
        out["valid"] = int(vis and not bad)
        if not vis and not bad:
            self.stats["far_visible"] += 1
        if out["valid"] and self.check_truth:
            for bid, name in ((True, "bids"), (False, "asks")):
                want = self._truth_top(self.sides[slot][bid], bid)
                assert out[name] == [tuple(x) for x in want], (
                    f"model: valid record differs from the exact book, slot {slot} "
                    f"{name}: {out[name]} vs {want}")
        return out


# ---------------------------------------------------------------------------------------------
# Order-level streams -> level ops


class OrderFlow:
    """Live orders -> level ops (what the order table emits), optionally mirrored into
    :class:`host.feed.book.L3Book` for a cross-check of the model's truth."""

    def __init__(self, slots: int, ticks=None, *, cross_check: bool = False, n: int = 5):
        self.orders: dict[int, list] = {}
        self.next_ref = 1
        self.ops: list[dict] = []
        self.tag = 0
        self.slots = slots
        self.ticks = list(ticks or [1] * slots)
        self.n = n
        self.book = None
        if cross_check:
            from host.feed.book import L3Book

            self.book = L3Book()
            self._truth: dict[tuple[int, bool], dict[int, list[int]]] = {}

    def _op(self, kind, slot, bid, px, q, remove):
        op = dict(kind=kind, slot=slot, bid=int(bid), px=px, q=q, remove=int(remove),
                  tag=self.tag & 0xFFFF)
        self.tag += 1
        self.ops.append(op)
        return op

    def add(self, slot: int, bid: bool, px: int, shares: int) -> int:
        ref = self.next_ref
        self.next_ref += 1
        self.orders[ref] = [slot, bid, px, shares]
        self._op(LadderOp.ADD, slot, bid, px, shares, 0)
        if self.book is not None:
            from host.feed.itch import make

            self._mirror(make("A", stock_locate=slot + 1, order_reference_number=ref,
                              buy_sell_indicator="B" if bid else "S", shares=shares,
                              stock="T", price=px), slot, bid, px, shares, 1)
        return ref

    def cancel(self, ref: int, shares: int) -> None:
        o = self.orders[ref]
        shares = min(shares, o[3])
        if shares >= o[3]:
            self.delete(ref)
            return
        o[3] -= shares
        self._op(LadderOp.RED, o[0], o[1], o[2], shares, 0)
        if self.book is not None:
            from host.feed.itch import make

            self._mirror(make("X", stock_locate=o[0] + 1, order_reference_number=ref,
                              cancelled_shares=shares), o[0], o[1], o[2], -shares, 0)

    def delete(self, ref: int) -> None:
        o = self.orders.pop(ref)
        self._op(LadderOp.RED, o[0], o[1], o[2], o[3], 1)
        if self.book is not None:
            from host.feed.itch import make

            self._mirror(make("D", stock_locate=o[0] + 1, order_reference_number=ref),
                         o[0], o[1], o[2], -o[3], -1)

    def replace(self, ref: int, px: int, shares: int) -> int:
        """An ITCH ``U`` as the order table emits it: the RED that removes ``ref``, then the
        ADD of the new order at ``px`` on the same (slot, side)."""
        slot, bid = self.orders[ref][:2]
        self.delete(ref)
        return self.add(slot, bid, px, shares)

    def clear(self, slot: int) -> None:
        for ref in [r for r, o in self.orders.items() if o[0] == slot]:
            del self.orders[ref]
        self._op(LadderOp.CLR, slot, 0, 0, 0, 0)
        if self.book is not None:
            from host.feed.book import L3Book

            # L3Book has no clear: rebuild it without the slot's orders
            old = self.book
            self.book = L3Book()
            from host.feed.itch import make

            for ref, (s, bid, px, sh) in self.orders.items():
                self.book.apply(make("A", stock_locate=s + 1, order_reference_number=ref,
                                     buy_sell_indicator="B" if bid else "S", shares=sh,
                                     stock="T", price=px))
            del old
            for key in [k for k in self._truth if k[0] == slot]:
                del self._truth[key]

    def _mirror(self, msg, slot, bid, px, dsz, dct):
        self.book.apply(msg)
        t = self._truth.setdefault((slot, bid), {})
        lv = t.setdefault(px, [0, 0])
        lv[0] += dsz
        lv[1] += dct
        if lv[1] == 0:
            del t[px]
        want = [(p, *t[p]) for p in sorted(t, reverse=bid)[: self.n]]
        got = [tuple(x) for x in self.book.depth(slot + 1, "B" if bid else "S", self.n)]
        assert got == want, f"L3Book cross-check: slot {slot} bid {bid}: {got} vs {want}"

    def refs_at(self, slot, bid, px):
        return [r for r, o in self.orders.items() if o[0] == slot and o[1] == bid and o[2] == px]

    def live(self, slot=None, bid=None):
        return [r for r, o in self.orders.items()
                if (slot is None or o[0] == slot) and (bid is None or o[1] == bid)]


def _tick(code):
    return TICKS[code]


def stream_fill_drain(depth: int, *, seed: int = 1, code: int = 1, per_level: int = 1,
                      slot: int = 0, sides=(True, False)):
    """Fill ``sides`` (``True`` = bid) of ``slot`` to ``depth`` levels each (shuffled order:
    the window slides down without evicting) and drain each from the top one level at a
    time."""
    rng = random.Random(seed)
    t = _tick(code)
    f = OrderFlow(slot + 1, cross_check=False)
    mid = 5_000_000 * t
    for bid in sides:
        pxs = [mid - (i + 1) * t if bid else mid + i * t for i in range(depth)]
        order = list(pxs)
        rng.shuffle(order)
        for px in order:
            for _ in range(per_level):
                f.add(slot, bid, px, rng.randint(1, 900) * 100)
    for bid in sides:
        pxs = sorted({o[2] for o in f.orders.values() if o[1] == bid}, reverse=bid)
        for px in pxs:
            for ref in f.refs_at(slot, bid, px):
                f.delete(ref)
    return f.ops


def stream_sweep(depth: int, *, seed: int = 2, code: int = 1, levels: int = 300,
                 sweep: int = 120, slot: int = 0):
    """Build ``levels`` levels per side with 1-3 orders each, then sweep: cancel the top
    ``sweep`` levels back to back, partially first; refill them and sweep again."""
    rng = random.Random(seed)
    t = _tick(code)
    f = OrderFlow(slot + 1)
    mid = 2_000_000 * t
    levels = min(levels, depth)
    for _round in range(2):
        for bid in (True, False):
            for i in range(levels):
                px = mid - (i + 1) * t if bid else mid + i * t
                for _ in range(rng.randint(1, 3)):
                    f.add(slot, bid, px, rng.randint(1, 50) * 100)
        for bid in (False, True):
            pxs = sorted({o[2] for o in f.orders.values() if o[1] == bid}, reverse=bid)
            for px in pxs[:sweep]:
                refs = f.refs_at(slot, bid, px)
                f.cancel(refs[0], 100)  # partial first (may remove a 100-share order)
                for ref in f.refs_at(slot, bid, px):
                    f.delete(ref)
    return f.ops


def stream_slide(depth: int, *, seed: int = 3, code: int = 1, slot: int = 0):
    """Move the window over represented levels both ways: a spread of levels over the whole
    window, then better prices (slide down, the far end is evicted to the far counts), drains
    (far levels become visible: valid=0), deletes of the far orders, adds beyond the window
    (slide up, or far when the best is too far)."""
    rng = random.Random(seed)
    t = _tick(code)
    f = OrderFlow(slot + 1)
    D = depth
    base = 3_000_000 * t
    for bid in (False, True):
        sgn = -1 if bid else 1

        def px(off, sgn=sgn):  # ``off`` ticks behind ``base`` (negative: better)
            return base + sgn * off * t

        offs = sorted(rng.sample(range(D), min(D, 40)) + [0, D - 1])
        for o in offs:
            f.add(slot, bid, px(o), rng.randint(1, 9) * 100)
        # slide down by 5, 17, D//4 ticks: evicts the far end
        for d in (5, 17, D // 4):
            f.add(slot, bid, px(-d), 300)
        # a level far beyond everything: far (best + D is exceeded)
        f.add(slot, bid, px(3 * D), 700)
        # drain from the top until far levels show
        for _ in range(50):
            live = f.live(slot, bid)
            if not live:
                break
            best = min(live, key=lambda r: sgn * f.orders[r][2])
            f.delete(best)
        # delete every far order (whatever is left), far count returns to 0
        for ref in list(f.live(slot, bid)):
            f.delete(ref)
        # empty side: re-seed, then slide up: adds beyond lo + D but within best + D
        f.add(slot, bid, px(100), 100)
        f.add(slot, bid, px(150), 100)
        f.delete(f.refs_at(slot, bid, px(100))[0])
        f.add(slot, bid, px(150 + D - 1), 200)  # lo moves up to keep it
        f.add(slot, bid, px(150 + D), 200)  # beyond best + D: far
        f.add(slot, bid, px(90), 100)  # better again: slide down, evicts 150 + D - 1
        for ref in list(f.live(slot, bid)):
            f.delete(ref)
    return f.ops


def stream_far_stubs(depth: int, *, n: int = 5, seed: int = 4, code: int = 1, slot: int = 0):
    """A thin book near the touch (fewer than ``n`` levels) with stub quotes far away: valid=0
    exactly while a stub would show; more levels near the touch make it valid again."""
    rng = random.Random(seed)
    t = _tick(code)
    f = OrderFlow(slot + 1)
    D = depth
    mid = 4_000_000 * t
    for bid in (True, False):
        sgn = -1 if bid else 1
        f.add(slot, bid, mid + sgn * 1 * t, 500)
        f.add(slot, bid, mid + sgn * 2 * t, 500)
        stubs = [f.add(slot, bid, mid + sgn * (D + 50 + i * 7) * t, 100) for i in range(3)]
        near = [f.add(slot, bid, mid + sgn * (3 + i) * t, 100 + i) for i in range(n)]
        for ref in near:
            f.delete(ref)
        f.add(slot, bid, mid + sgn * (D + 60) * t, 100)  # more stubs, partly inside
        for ref in stubs:
            f.delete(ref)
        for ref in list(f.live(slot, bid)):
            if rng.random() < 0.5:
                f.cancel(ref, 100)
    for ref in list(f.live(slot)):
        f.delete(ref)
    return f.ops


def stream_clears(*, clears: int = 1000, seed: int = 5, code: int = 1, slot: int = 0,
                  other: int | None = 1, depth: int = 64):
    """``clears`` clears of one slot, a few orders between them (the minimal case of issue 13
    item 8 at the start), the other slot untouched by the clears."""
    rng = random.Random(seed)
    t = _tick(code)
    f = OrderFlow(max(slot, other or 0) + 1)
    mid = 1_000_000 * t
    if other is not None:
        for i in range(3):
            f.add(other, True, mid - (i + 1) * t, 100)
            f.add(other, False, mid + i * t, 100)
    r = f.add(slot, True, 1000 * t, 100)
    for _ in range(64):
        f.clear(slot)
    f.add(slot, True, 2000 * t, 200)
    f.add(slot, True, 1500 * t, 50)
    f.add(slot, True, 1000 * t, 100)
    del r
    f.delete(f.refs_at(slot, True, 2000 * t)[0])
    for _ in range(clears - 64):
        for _ in range(rng.randint(0, 4)):
            bid = rng.random() < 0.5
            off = int(rng.paretovariate(1.2)) if rng.random() < 0.9 else rng.randint(0, 3 * depth)
            f.add(slot, bid, mid + (-1 - off if bid else off) * t, rng.randint(1, 9) * 100)
        if rng.random() < 0.3 and f.live(slot):
            f.delete(rng.choice(f.live(slot)))
        f.clear(slot)
    return f.ops


def stream_random(depth: int, n_events: int, *, slots: int = 4, seed: int = 6,
                  n: int = 5, cross_check: bool = True, codes=None):
    """Realistic mix over ``slots`` slots: heavy-tailed (Pareto) offsets from a drifting touch
    (most within a few ticks, some hundreds, a few beyond the window: far stubs), cancels,
    executions at the touch, sweeps of several levels, occasional clears of a slot."""
    rng = random.Random(seed)
    codes = list(codes or [1] * slots)
    f = OrderFlow(slots, cross_check=cross_check, n=n)
    mids = [(1000 + 500 * s) * 100 for s in range(slots)]  # in ticks
    while len(f.ops) < n_events:
        s = rng.randrange(slots)
        t = TICKS[codes[s]]
        r = rng.random()
        bid = rng.random() < 0.5
        live = f.live(s)
        if r < 0.5 or len(live) < 10:
            off = int(rng.paretovariate(1.1)) - 1
            if rng.random() < 0.01:
                off = rng.randint(depth, 3 * depth)  # stub quote
            px = (mids[s] - 1 - off) * t if bid else (mids[s] + off) * t
            if px > 0:
                f.add(s, bid, px, rng.randint(1, 20) * 100)
        elif r < 0.8:
            ref = rng.choice(live)
            if rng.random() < 0.3:
                f.cancel(ref, 100)
            else:
                f.delete(ref)
        elif r < 0.97:
            # execute at the touch of one side: the best order, partially or fully
            side = [x for x in live if f.orders[x][1] == bid]
            if side:
                best = (max if bid else min)(side, key=lambda x: f.orders[x][2])
                f.cancel(best, rng.choice([100, 10**9]))
        elif r < 0.995:
            # sweep: remove every order of the best 2..8 levels of one side
            side = [x for x in live if f.orders[x][1] == bid]
            pxs = sorted({f.orders[x][2] for x in side}, reverse=bid)[: rng.randint(2, 8)]
            for x in side:
                if f.orders[x][2] in pxs:
                    f.delete(x)
            mids[s] += (-1 if bid else 1) * rng.randint(0, 3)
        else:
            f.clear(s)
        if rng.random() < 0.02:
            mids[s] += rng.choice([-1, 1])
    return f.ops


def stream_replace(depth: int, n_events: int, *, slots: int = 2, seed: int = 7, n: int = 5,
                   codes=None):
    """Replace pairs (RED of an order, ADD of its new order on the same side) in every case
    of the ladder's pair path (docs/ladder.md, "Replace pairs"): the new price at the same
    tick, a neighbouring one (same bitmap word) or further (other words), at a new level or
    an existing one, cached or not; the old order alone at its level (the level and its
    cached entry go) or not, at the best level, the side's last order; new prices beyond the
    window (far, slides) and below it; between them adds, deletes and clears."""
    rng = random.Random(seed)
    codes = list(codes or [1] * slots)
    f = OrderFlow(slots, cross_check=True, n=n)
    mids = [(1000 + 500 * s) * 100 for s in range(slots)]
    while len(f.ops) < n_events:
        s = rng.randrange(slots)
        t = TICKS[codes[s]]
        bid = rng.random() < 0.5
        live = f.live(s, bid)
        r = rng.random()

        def px_at(off, s=s, bid=bid, t=t):
            return (mids[s] - 1 - off) * t if bid else (mids[s] + off) * t

        if r < 0.25 or not live:
            for _ in range(rng.randint(1, 3)):
                off = rng.choice([rng.randint(0, 8), int(rng.paretovariate(1.0)),
                                  rng.randint(0, depth - 1)])
                f.add(s, bid, px_at(off), rng.randint(1, 20) * 100)
        elif r < 0.9:
            ref = rng.choice(live)
            old = f.orders[ref][2]
            old_off = (mids[s] - 1 - old // t) if bid else (old // t - mids[s])
            u = rng.random()
            if u < 0.15:
                off = old_off  # same tick
            elif u < 0.55:
                off = max(0, old_off + rng.randint(-3, 3))  # same bitmap word, mostly
            elif u < 0.8:
                off = rng.randint(0, depth - 1)
            elif u < 0.9:
                off = rng.randint(depth, 2 * depth)  # beyond the window
            else:
                off = -rng.randint(1, 70)  # better than the touch: below the window
            px = px_at(off)
            if px > 0:
                f.replace(ref, px, rng.randint(1, 20) * 100)
        elif r < 0.98:
            f.delete(rng.choice(live))
        else:
            f.clear(s)
    return f.ops
