"""hw.order_table.OrderTable alone (Amaranth simulator, no Verilator) against a dict model.

The table is pipelined (C0 read, C1 way match, C2 update, C3 write back) and forwards the
buckets of the two operations ahead, so the streams here are built to hit every hazard:
back-to-back operations on one reference and on one bucket (tiny tables: 2-8 buckets),
full buckets, U1/U2 pairs, clears of one slot and of every slot between them, and enough
clears of one slot (2-bit epochs: a scrub every 4 clears) to wrap its epoch hundreds of
times. Every output of the table is compared field by field with the model's.
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hw.arith import mux_tree
from hw.ladder import div_tick
from hw.order_table import LevelOpKind, OrderTable, OtOp, bucket_of

FIELDS = ("op", "u1", "u2", "touch", "slot", "bid", "px", "q", "remove", "mark_invalid",
          "ev_ignored", "ev_unknown", "ev_dup", "ev_full", "ev_oversize", "tag")


class Model:
    """The table's contract: live orders by reference, a bucket full at ``ways`` live orders,
    a clear frees every order of its slot (whatever the epochs do inside)."""

    def __init__(self, buckets: int, ways: int):
        self.bucket_bits = buckets.bit_length() - 1
        self.ways = ways
        self.orders: dict[int, dict] = {}  # ref -> slot, bid, px, shares
        self.prev: dict | None = None  # the previous output (U1's for a U2)

    def _full(self, key):
        b = bucket_of(key, self.bucket_bits)
        return sum(bucket_of(r, self.bucket_bits) == b for r in self.orders) >= self.ways

    def _insert(self, out, op, slot, bid):
        out.update(touch=1, slot=slot, bid=bid)
        if self._full(op["key"]):
            out.update(ev_full=1, mark_invalid=1)
        else:
            self.orders[op["key"]] = dict(slot=slot, bid=bid, px=op["px"], shares=op["shares"])
            out.update(op=LevelOpKind.ADD, px=op["px"], q=op["shares"])

    def step(self, op: dict, sub: tuple[int, int]) -> dict:
        out = dict.fromkeys(FIELDS, 0)
        out["tag"] = op["tag"]
        subscribed, sub_slot = sub
        k = op["op"]
        if k == OtOp.ADD:
            if not subscribed or not op["side_ok"]:
                out["ev_ignored"] = 1
            elif op["key"] in self.orders:
                out["ev_dup"] = 1
            else:
                self._insert(out, op, sub_slot, op["bid"])
        elif k in (OtOp.RED, OtOp.U1):
            out["u1"] = int(k == OtOp.U1)
            e = self.orders.get(op["key"])
            if not subscribed:
                out["ev_ignored"] = 1
            elif e is None:
                out["ev_unknown"] = 1
            else:
                is_del = op["is_del"] or k == OtOp.U1
                remove = is_del or op["shares"] >= e["shares"]
                out.update(op=LevelOpKind.RED, touch=1, slot=e["slot"], bid=e["bid"],
                           px=e["px"], q=e["shares"] if remove else op["shares"],
                           remove=int(remove),
                           ev_oversize=int(not is_del and op["shares"] > e["shares"]))
                if remove:
                    del self.orders[op["key"]]
                else:
                    e["shares"] -= op["shares"]
        elif k == OtOp.U2:
            p = self.prev
            if p is not None and p["u1"] and p["touch"]:
                out.update(u2=1, touch=1, slot=p["slot"], bid=p["bid"])
                if op["same_ref"] or op["key"] in self.orders:
                    out["ev_dup"] = 1
                else:
                    self._insert(out, op, p["slot"], p["bid"])
        elif k == OtOp.CLR:
            out.update(op=LevelOpKind.CLR, slot=op["slot"])
            self.orders = {r: e for r, e in self.orders.items() if e["slot"] != op["slot"]}
        elif k == OtOp.MARK:
            if subscribed:
                out.update(touch=1, slot=sub_slot)
            else:
                out["ev_ignored"] = 1
        else:
            out["ev_ignored"] = 1
        self.prev = out
        return out


def _op(kind, key=0, *, shares=0, px=0, bid=0, is_del=0, same_ref=0, side_ok=1, slot=0,
        clr_all=0, sub=(1, 0)):
    return dict(op=kind, key=key, shares=shares, px=px, bid=bid, is_del=is_del,
                same_ref=same_ref, side_ok=side_ok, slot=slot, clr_all=clr_all, sub=sub)


def _run(dut: OrderTable, ops: list[dict], *, idle: float, seed: int,
         ticks: list[int] | None = None) -> dict:
    """Drive ``ops`` (a U1 is always followed by its U2 in the next cycle, as the book does),
    with random idle cycles; return the outputs, the model's outputs and statistics. With
    ``dut.divide``, ``ticks[slot]`` is the tick code of each slot (``i_tick``), and the outputs
    carry ``idx``/``offg``/``code`` (:func:`_divided`)."""
    fields = FIELDS + (("idx", "offg", "code") if dut.divide else ())
    rnd = random.Random(seed)
    tags = 1 << dut.tag_width
    for n, op in enumerate(ops):
        op["tag"] = n % tags
    outs: list[dict] = []
    stats = {"cycles": 0, "not_ready": 0}

    async def bench(ctx):
        i, o = dut.i, dut.o
        last_sub = (0, 0)
        n = 0
        tail = 0
        while tail < 8:
            op = ops[n] if n < len(ops) else None
            after_u1 = n > 0 and ops[n - 1]["op"] == OtOp.U1 and op is not None
            present = op is not None and (after_u1 or rnd.random() >= idle)
            ctx.set(i.valid, int(present))
            if op is not None:
                for f in ("op", "key", "shares", "px", "bid", "is_del", "same_ref", "side_ok",
                          "slot", "clr_all", "tag"):
                    ctx.set(getattr(i.payload, f), op[f])
            ctx.set(dut.i_sub.subscribed, last_sub[0])
            ctx.set(dut.i_sub.slot, last_sub[1])
            if dut.divide:
                ctx.set(dut.i_tick, ticks[last_sub[1]])
            ready = ctx.get(i.ready)
            if after_u1:
                assert ready, "a U2 must never wait"
            if ctx.get(o.valid):
                p = ctx.get(o.payload)
                outs.append({f: int(getattr(p, f)) for f in fields})
            last_sub = op["sub"] if op is not None else (0, 0)
            await ctx.tick()
            stats["cycles"] += 1
            if present and not ready:
                stats["not_ready"] += 1
            if present and ready:
                n += 1
            if op is None:
                tail += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    model = Model(dut.buckets, dut.ways)
    want = [model.step(op, op["sub"]) for op in ops]
    if dut.divide:
        want = [_divided(w, ticks) for w in want]
    return {"got": outs, "want": want, **stats}


def _divided(out: dict, ticks: list[int]) -> dict:
    """A model output as the ``divide`` table gives it: an ADD or RED level op carries its
    price's index and grid flag by its slot's tick (:func:`hw.ladder.div_tick`) and the tick
    code; a RED's ``px`` is 0 (the entry holds the index, not the price)."""
    out = {**out, "idx": 0, "offg": 0, "code": 0}
    if out["op"] in (LevelOpKind.ADD, LevelOpKind.RED):
        code = ticks[out["slot"]]
        idx, ok = div_tick(out["px"], code)
        out.update(idx=idx, offg=int(not ok), code=code)
        if out["op"] == LevelOpKind.RED:
            out["px"] = 0
    return out


def _check(res, ops):
    got, want = res["got"], res["want"]
    for n, (g, w) in enumerate(zip(got, want, strict=False)):
        assert g == w, (n, ops[n], g, w)
    assert len(got) == len(want), (len(got), len(want))


def _random_stream(rnd, *, n, slots, keys, clear_p, clear_all_p=0.0, sub_p=0.95):
    """Ops on a small pool of references (many per bucket), U pairs, clears; a reference is
    often reused right after its last op (same order back to back)."""
    ops = []
    last = rnd.randrange(keys)
    for _ in range(n):
        r = rnd.random()
        key = last if rnd.random() < 0.4 else rnd.randrange(keys)
        key = key * 0x9E3779B1 % (1 << 40) if rnd.random() < 0.1 else key
        last = key
        sub = (int(rnd.random() < sub_p), rnd.randrange(slots))
        px = rnd.randrange(1, 50) * 100
        sh = rnd.choice((1, 5, 100, 300, 2**32 - 1))
        if r < clear_all_p:
            # a clear of every slot: one CLR per slot, the first flagged clr_all
            ops.extend(_op(OtOp.CLR, slot=s, clr_all=1, sub=(0, 0)) for s in range(slots))
        elif r < clear_all_p + clear_p:
            ops.append(_op(OtOp.CLR, slot=rnd.randrange(slots), sub=(0, 0)))
        elif r < 0.45:
            ops.append(_op(OtOp.ADD, key, shares=sh, px=px, bid=rnd.randrange(2),
                           side_ok=int(rnd.random() < 0.97), sub=sub))
        elif r < 0.75:
            ops.append(_op(OtOp.RED, key, shares=rnd.choice((1, 50, 100, 400)),
                           is_del=int(rnd.random() < 0.4), sub=sub))
        elif r < 0.85:
            new = key + 1 if rnd.random() < 0.5 else rnd.randrange(keys)
            ops.append(_op(OtOp.U1, key, sub=sub))
            ops.append(_op(OtOp.U2, new, shares=sh, px=px, same_ref=int(new == key), sub=sub))
            last = new
        elif r < 0.9:
            ops.append(_op(OtOp.MARK, sub=sub))
        else:
            ops.append(_op(OtOp.NONE, key, sub=sub))
    return ops


def _hostile_stream(rnd, *, n, slots, keys):
    """Back-to-back chains on one order and on orders of one bucket, no idle cycles wanted:
    A E E X D, A then U then E of the new reference, A into a full bucket, E right after
    the D that freed its way, re-adds of a just-deleted reference."""
    ops = []
    while len(ops) < n:
        k = rnd.randrange(keys)
        slot = rnd.randrange(slots)
        sub = (1, slot)
        c = rnd.randrange(7)
        if c == 0:
            ops += [_op(OtOp.ADD, k, shares=500, px=100, sub=sub),
                    _op(OtOp.RED, k, shares=100, sub=sub), _op(OtOp.RED, k, shares=100, sub=sub),
                    _op(OtOp.RED, k, shares=300, sub=sub), _op(OtOp.RED, k, is_del=1, sub=sub)]
        elif c == 1:
            ops += [_op(OtOp.ADD, k, shares=300, px=200, bid=1, sub=sub),
                    _op(OtOp.U1, k, sub=sub),
                    _op(OtOp.U2, k + 1, shares=200, px=300, sub=sub),
                    _op(OtOp.RED, k + 1, shares=50, sub=sub),
                    _op(OtOp.U1, k + 1, sub=sub),
                    _op(OtOp.U2, k, shares=70, px=400, sub=sub)]
        elif c == 2:
            # many adds of distinct references: buckets fill, then deletes and re-adds
            ks = [rnd.randrange(keys) for _ in range(6)]
            ops += [_op(OtOp.ADD, x, shares=10, px=100, sub=sub) for x in ks]
            ops += [_op(OtOp.RED, x, is_del=1, sub=sub) for x in ks[::2]]
            ops += [_op(OtOp.ADD, x, shares=20, px=200, sub=sub) for x in ks]
        elif c == 3:
            ops += [_op(OtOp.RED, k, is_del=1, sub=sub), _op(OtOp.ADD, k, shares=9, px=5, sub=sub),
                    _op(OtOp.ADD, k, shares=9, px=5, sub=sub), _op(OtOp.RED, k, shares=9, sub=sub),
                    _op(OtOp.RED, k, shares=1, sub=sub)]
        elif c == 4:
            # a clear between ops on the slot's orders (the epoch bump meets the forwarding)
            ops += [_op(OtOp.ADD, k, shares=50, px=100, sub=sub),
                    _op(OtOp.CLR, slot=slot, sub=(0, 0)),
                    _op(OtOp.RED, k, shares=10, sub=sub),
                    _op(OtOp.ADD, k, shares=60, px=110, sub=sub),
                    _op(OtOp.CLR, slot=slot, sub=(0, 0)),
                    _op(OtOp.CLR, slot=slot, sub=(0, 0)),
                    _op(OtOp.ADD, k, shares=70, px=120, sub=sub)]
        elif c == 5:
            ops += [_op(OtOp.ADD, k + j, shares=5, px=100 + j, sub=(1, (slot + j) % slots))
                    for j in range(4)]
            ops += [_op(OtOp.RED, k + j, shares=5, sub=sub) for j in range(4)]
        else:
            # the reduce's compares on the way the op one ahead wrote (registered in C3, not
            # C1's): oversize on an inserted way, on a reduced way, exact on a reduced way
            ops += [_op(OtOp.ADD, k, shares=50, px=100, sub=sub),
                    _op(OtOp.RED, k, shares=60, sub=sub),
                    _op(OtOp.ADD, k, shares=40, px=100, sub=sub),
                    _op(OtOp.RED, k, shares=10, sub=sub), _op(OtOp.RED, k, shares=31, sub=sub),
                    _op(OtOp.ADD, k, shares=40, px=100, sub=sub),
                    _op(OtOp.RED, k, shares=10, sub=sub), _op(OtOp.RED, k, shares=30, sub=sub),
                    _op(OtOp.RED, k, shares=1, sub=sub)]
    return ops


CONFIGS = [
    # slots, capacity, ways, epoch_bits
    dict(slots=2, capacity=4, ways=2, epoch_bits=2),  # 2 buckets: nearly every op collides
    dict(slots=4, capacity=16, ways=2, epoch_bits=2),
    dict(slots=4, capacity=32, ways=4, epoch_bits=3),
    dict(slots=3, capacity=8, ways=8, epoch_bits=2),  # one bucket
    dict(slots=4, capacity=64, ways=2, epoch_bits=8),  # the book's small synthesis set
    dict(slots=9, capacity=16, ways=2, epoch_bits=2),  # per-slot selects of several stages
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "s{slots}c{capacity}w{ways}e{epoch_bits}"
                         .format(**c))
@pytest.mark.parametrize("idle", [0.0, 0.3])
def test_random_stream_matches_model(cfg, idle):
    rnd = random.Random(hash((tuple(cfg.values()), idle)) & 0xFFFF)
    keys = cfg["capacity"] * 2
    ops = _random_stream(rnd, n=1500, slots=cfg["slots"], keys=keys, clear_p=0.02,
                         clear_all_p=0.005)
    res = _run(OrderTable(**cfg, tag_width=8), ops, idle=idle, seed=1)
    _check(res, ops)
    # the stream did reach the hazards it is there for
    want = res["want"]
    assert sum(w["ev_full"] for w in want) > 0 or cfg["capacity"] >= 64
    assert sum(w["op"] == LevelOpKind.RED and not w["remove"] for w in want) > 20


@pytest.mark.parametrize("cfg", CONFIGS[:4], ids=lambda c: "s{slots}c{capacity}w{ways}"
                         .format(**c))
def test_hostile_back_to_back(cfg):
    rnd = random.Random(cfg["capacity"])
    ops = _hostile_stream(rnd, n=1200, slots=cfg["slots"], keys=cfg["capacity"])
    res = _run(OrderTable(**cfg, tag_width=8), ops, idle=0.0, seed=2)
    _check(res, ops)
    # reduces that left on an oversize, also on a way written by the op one ahead
    assert sum(w["ev_oversize"] for w in res["want"]) > 10


def test_thousand_clears_of_one_slot():
    """>= 1000 clears of slot 0 (2-bit epochs: a wrap scrub every 4), orders of slot 0 re-added
    under the same references, slot 1's orders kept across; clears of every slot among them."""
    rnd = random.Random(13)
    cfg = dict(slots=2, capacity=16, ways=2, epoch_bits=2)
    ops, clears = [], 0
    keep = [100, 101, 102]
    ops += [_op(OtOp.ADD, k, shares=10, px=100, sub=(1, 1)) for k in keep]
    for rnd_i in range(1050):
        for k in rnd.sample(range(8), 3):
            ops.append(_op(OtOp.ADD, k, shares=100 + rnd_i % 7, px=1000, sub=(1, 0)))
        ops.append(_op(OtOp.RED, rnd.randrange(8), shares=1, sub=(1, 0)))
        if rnd_i % 50 == 49:
            ops += [_op(OtOp.CLR, slot=s, clr_all=1, sub=(0, 0)) for s in range(2)]
            ops += [_op(OtOp.ADD, k, shares=10, px=100, sub=(1, 1)) for k in keep]
        else:
            ops.append(_op(OtOp.CLR, slot=0, sub=(0, 0)))
        clears += 1
        ops.append(_op(OtOp.RED, keep[rnd_i % 3], shares=1, sub=(1, 1)))
        ops.append(_op(OtOp.RED, keep[rnd_i % 3], shares=0, sub=(1, 1)))
    res = _run(OrderTable(**cfg, tag_width=8), ops, idle=0.1, seed=3)
    _check(res, ops)
    assert clears >= 1000
    assert res["not_ready"] > 200  # the scrubs ran (4-bucket walks, ~1050/4 of them)


_PRICES = (0, 1, 99, 100, 101, 9999, 10000, 10100, 2500, 123400, 50_000_000, 2**32 - 1,
           (2**32 - 1) // 100 * 100, (2**32 - 1) // 10000 * 10000, 4294960000)


@pytest.mark.parametrize("idle", [0.0, 0.3])
def test_divide_index_and_grid(idle):
    """``divide``: every ADD carries ``px // tick`` and the grid flag of its slot's tick
    (the D1-D3 divide in step with C1-C3), every RED the ones its order was stored with,
    a U2 those of U1's slot; prices on and off each grid, up to 2**32 - 1."""
    rnd = random.Random(7 + int(idle * 10))
    cfg = dict(slots=3, capacity=32, ways=2, epoch_bits=2)
    ops = _random_stream(rnd, n=1500, slots=cfg["slots"], keys=cfg["capacity"] * 2,
                         clear_p=0.02, clear_all_p=0.005)
    for op in ops:
        r = rnd.random()
        op["px"] = (rnd.choice(_PRICES) if r < 0.3 else rnd.randrange(1 << 32) if r < 0.5
                    else rnd.randrange(1 << 18) * rnd.choice((100, 10000)))
    ticks = [0, 1, 2]
    res = _run(OrderTable(**cfg, tag_width=8, divide=True), ops, idle=idle, seed=4, ticks=ticks)
    _check(res, ops)
    want = res["want"]
    for code in (0, 1, 2):
        for op in (LevelOpKind.ADD, LevelOpKind.RED):
            for offg in ((0,) if code == 0 else (0, 1)):
                assert any(w["op"] == op and w["code"] == code and w["offg"] == offg
                           for w in want), (op, code, offg)


@pytest.mark.parametrize("n,width", [(1, 3), (2, 1), (3, 2), (5, 1), (8, 8), (17, 4), (256, 8)])
def test_mux_tree_selects_every_index(n, width):
    """``mux_tree`` (the per-slot selects of the table and the book) equals ``values[index]``
    for every index, power of two or not."""
    from amaranth.hdl import Module, Signal

    rng = random.Random(n * 31 + width)
    m = Module()
    vals = [Signal(width, name=f"v{i}") for i in range(n)]
    idx = Signal(max(1, (n - 1).bit_length()))
    out = Signal(width)
    m.d.comb += out.eq(mux_tree(m, vals, idx, "t"))
    data = [rng.randrange(1 << width) for _ in range(n)]

    async def bench(ctx):
        for v, d in zip(vals, data, strict=True):
            ctx.set(v, d)
        for k in range(n):
            ctx.set(idx, k)
            assert ctx.get(out) == data[k], k

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
