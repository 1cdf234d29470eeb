"""cocotb bench for hw.top.Top: AXI-Lite configuration, frames in, 64-byte BBO records out.

Reference: ``host.card.ingress_model.IngressModel`` gives what the ingress delivers (records, with
their frame/beat of the last byte, counters, status); ``host.feed.book.L3Book`` restricted to the
subscribed locates, applied to those messages, gives every BBO record (one per ``apply`` that
returns True); the stale flag is set from the first record delivered with the gap flag on.
Records, ingress/book/top counters and status registers are compared through AXI-Lite.

Environment: ``PARAM_*`` (the Top parameters), ``TOP_N`` (messages), ``TOP_SYMBOLS``,
``TOP_SEED``, ``TOP_IDLE`` / ``TOP_BP`` (idle and backpressure probabilities),
``TOP_LATENCY_OUT`` (write the measured latency per message type as JSON).
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from host.card.ingress_model import IngressModel
from host.feed import itch
from host.feed.book import L3Book
from host.feed.generator import generate
from host.feed.moldudp import packetize
from host.feed.net import DEFAULTS, udp_frame
from hw import bbo_record as BR
from hw.layouts import mac_beat_layout
from hw.nsclock import increment
from hw.regs import (
    BOOK_COUNTERS,
    INGRESS_COUNTERS,
    MAGIC,
    REGMAP_VERSION,
    BuildParams,
    build_table,
)
from sim.axil.axil_master import AxiLiteMaster
from sim.streams import (
    StreamSink,
    StreamSource,
    cycle_now,
    frame_arrivals,
    frame_to_beats,
    pauses,
)

P = {k[6:].lower(): int(v) for k, v in os.environ.items() if k.startswith("PARAM_")}
DW = P.get("data_width", 64)
SLOTS = P["slots"]
DEPTH_N = P.get("depth_n", 1)
SESSION = DEFAULTS["session"].encode()


def env(name, default, cast=int):
    v = os.environ.get(name)
    return default if v in (None, "") else cast(v)


def table():
    params = BuildParams(data_width=DW, slots=SLOTS, table_capacity=P["capacity"],
                         levels=P["levels"], depth_n=DEPTH_N, record_bytes=BR.record_bytes(DEPTH_N),
                         clk_hz=P.get("clk_hz", 322_265_625), ways=P["ways"])
    return build_table(params)


T = table()


class Regs:
    def __init__(self, dut):
        self.m = AxiLiteMaster(dut, "axil__", clk=dut.clk)

    async def rd(self, name):
        data, resp = await self.m.read(T[name].offset)
        assert resp == 0, f"read {name}: resp {resp}"
        return data

    async def wr(self, name, value):
        resp = await self.m.write(T[name].offset, value)
        assert resp == 0, f"write {name}: resp {resp}"

    async def rd64(self, base):
        lo = await self.rd(base + "_LO")
        hi = await self.rd(base + "_HI")
        return lo | (hi << 32)


def split_messages(buf: bytes) -> list[bytes]:
    out, off = [], 0
    while off < len(buf):
        n = int.from_bytes(buf[off:off + 2], "big")
        out.append(buf[off + 2:off + 2 + n])
        off += 2 + n
    return out


def expected_book(model: IngressModel, sub: dict[int, int]):
    """Expected BBO records and book counters for what the ingress delivered.

    ``DEPTH_N > 1``: a record also when the reference's top ``DEPTH_N`` levels of the touched
    locate change without its BBO changing (``depth_only``), with every record's levels.
    """
    by_seq = {seq: msg for seq, msg, _gap in model.messages_log}
    ref = L3Book(locates=sorted(sub))
    cnt_ref = L3Book()
    out, stale, ignored = [], False, 0
    for i, mr in enumerate(model.records):
        f = mr.fields
        seq = f["seq"]
        raw = by_seq[seq]
        msg = itch.decode(raw, 0, len(raw))
        stale = stale or bool(f["gap"])
        t = msg.message_type
        if t not in "AFECXDU" or msg.stock_locate not in sub:
            ignored += 1
        else:
            if t in "AF" and msg.buy_sell_indicator not in ("B", "S"):
                ignored += 1
            cnt_ref.apply(msg)
        loc0 = ref._locate_of(msg) if t in "AFECXDU" else -1
        deep_before = deep(ref, loc0) if loc0 >= 0 else None
        bbo_changed = ref.apply(msg)
        depth_only = (not bbo_changed and DEPTH_N > 1 and loc0 in sub
                      and ref.last_locate == loc0 and deep(ref, loc0) != deep_before)
        if bbo_changed or depth_only:
            loc = ref.last_locate
            b = ref.bbo(loc)
            out.append(dict(
                slot=sub[loc], depth_only=depth_only,
                levels={s: ref.depth(loc, s, DEPTH_N) for s in "BS"},
                index=i, seq=seq, ts_event=msg.timestamp, locate=loc, msg_type=ord(t),
                bid_px=b.bid_px, bid_sz=min(b.bid_sz, 2**32 - 1), bid_ct=b.bid_ct,
                ask_px=b.ask_px, ask_sz=min(b.ask_sz, 2**32 - 1), ask_ct=b.ask_ct,
                flags=(BR.FLAG_STALE if stale else 0) | (BR.FLAG_BID_VALID if b.bid_ct else 0)
                | (BR.FLAG_ASK_VALID if b.ask_ct else 0)
                | (BR.FLAG_DEPTH_ONLY if depth_only else 0),
                frame=mr.frame, beat=mr.beat))
    a = cnt_ref.anomalies
    counters = {
        "records": len(model.records),
        "ignored": ignored,
        "unknown_ref": a["unknown_ref"] + a["replace_unknown"],
        "duplicate_add": a["duplicate_add"] + a["replace_duplicate"],
        "bbo_updates": len(out),
    }
    # the exact reference has no capacity limits and the ticks are picked so every book fits
    # the ladder window: every record is expected valid (checked record by record), so no
    # capacity or not-valid cause may count
    for name in ("table_full", "level_overflow", "far_visible", "off_grid", "size_overflow",
                 "missing_level", "injected"):  # the bench injects nothing
        counters[name] = 0
    return out, counters


def deep(book: L3Book, loc: int):
    """The reference's top ``DEPTH_N`` of both sides of ``loc``."""
    return book.depth(loc, "B", DEPTH_N), book.depth(loc, "S", DEPTH_N)


def build_frames(n, n_symbols, seed):
    """Frames (bytes, mac_error) for a generated feed with one wrong-port frame, one frame
    flagged bad by the MAC, and one MoldUDP64 packet left out (a gap)."""
    msgs = split_messages(generate(n, n_symbols, seed))
    rng = np.random.default_rng(seed)
    pkts = packetize(msgs, session=SESSION, max_payload=400, rng=rng)
    frames = [(udp_frame(p), False) for p in pkts]
    k = len(frames)
    bad_port = udp_frame(pkts[k // 4], dst_port=DEFAULTS["dst_port"] + 1)
    out = frames[: k // 4] + [(bad_port, False)] + frames[k // 4:]
    j = len(out) // 2
    out[j] = (out[j][0], True)  # MAC error (bad FCS) on a good frame: its last beat is dropped
    g = (3 * len(out)) // 4
    del out[g]  # a lost packet: the next one reports a gap
    return out, msgs


async def reset(dut):
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


@cocotb.test()
async def test_top(dut):
    n = env("TOP_N", 1200)
    n_symbols = env("TOP_SYMBOLS", 6)
    seed = env("TOP_SEED", 1)
    idle_p = env("TOP_IDLE", 0.2, float)
    bp_p = env("TOP_BP", 0.4, float)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.mac__valid.value = 0
    dut.bbo__ready.value = 0
    dut.mac_overflow.value = 0
    regs = Regs(dut)
    await reset(dut)
    t_reset = cycle_now()

    # -- frames the platform's MAC path dropped: pulses in, CNT_MAC_DROPPED_FRAMES counts them
    n_drop = seed % 5 + 3
    for k in range(n_drop):
        dut.mac_overflow.value = 1
        await ClockCycles(dut.clk, 1 + k % 2)  # a 2-cycle pulse counts twice: one per cycle
        dut.mac_overflow.value = 0
        await ClockCycles(dut.clk, 1 + k % 3)
    dropped = sum(1 + k % 2 for k in range(n_drop))

    # -- identification and reset values
    for r in T:
        if r.name.startswith("ID_"):
            assert await regs.rd(r.name) == r.const, r.name
    assert await regs.rd("ID_MAGIC") == MAGIC
    assert await regs.rd("ID_VERSION") >> 16 == REGMAP_VERSION[0]
    assert await regs.rd("CONFIG_IP_DST") == T["CONFIG_IP_DST"].reset
    assert await regs.rd("CONFIG_UDP_PORT") == DEFAULTS["dst_port"]
    data, resp = await regs.m.read(0xFFC)
    assert resp == 2 and data == 0xDEADBEEF

    # -- configuration
    frames, msgs = build_frames(n, n_symbols, seed)
    sess = int.from_bytes(SESSION, "little")
    await regs.wr("CONFIG_UDP_PORT", DEFAULTS["dst_port"])
    a, b, c, d = (int(x) for x in DEFAULTS["dst_ip"].split("."))
    await regs.wr("CONFIG_IP_DST", (a << 24) | (b << 16) | (c << 8) | d)
    await regs.wr("CONFIG_SESSION_0", sess & 0xFFFFFFFF)
    await regs.wr("CONFIG_SESSION_1", (sess >> 32) & 0xFFFFFFFF)
    await regs.wr("CONFIG_SESSION_2", (sess >> 64) | (1 << 31))
    locates = sorted({itch.decode(m, 0, len(m)).stock_locate for m in msgs if m[:1] in b"AF"})
    rnd = random.Random(seed)
    rnd.shuffle(locates)
    chosen = locates[: max(1, min(SLOTS, len(locates) - 1))]  # leave one locate unsubscribed
    slots = rnd.sample(range(SLOTS), len(chosen))
    sub = dict(zip(chosen, slots, strict=True))
    # the ladder's tick per slot, as the host driver picks it (host.card.ticks): the coarsest
    # tick dividing every order price of the symbol, so its book fits the 4096-tick window
    from host.card.ticks import tick_codes

    ticks = tick_codes(b"".join(len(m).to_bytes(2, "big") + m for m in msgs), sub)
    for loc, slot in sub.items():
        await regs.wr("CONFIG_SUB_LOCATE", loc)
        await regs.wr("CONFIG_SUB_SLOT", slot | (ticks[loc] << 24) | (1 << 31))
        await regs.wr("CONFIG_SUB_CTRL", 1)
    while (await regs.rd("STATUS")) & 0b110:
        pass
    # -- the hardware clock: the reset rate is the nominal clock's; set it to 4 ns per cycle
    # and a 64-bit time (both words used), then check every record's rx_ns against the cycle
    # of its frame's first MAC beat
    inc_ns, inc_frac = increment(T.params.clk_hz)
    assert await regs.rd("CLOCK_INCR_NS") == inc_ns
    assert await regs.rd("CLOCK_INCR_FRAC") == inc_frac
    t0_ns = 0x1234_5678_9ABC_0000 + seed
    await regs.wr("CLOCK_INCR_NS", 4)
    await regs.wr("CLOCK_INCR_FRAC", 0)
    await regs.wr("CLOCK_SET_LO", t0_ns & 0xFFFFFFFF)
    await regs.wr("CLOCK_SET_HI", t0_ns >> 32)
    await regs.wr("CLOCK_CTRL", 1)  # clk_load
    now = await regs.rd64("CLOCK_NOW")
    # the load shows on CLOCK_NOW two cycles after its pulse (hw/nsclock.py's pipeline): a
    # read that follows the write at once may sample the set value itself
    assert t0_ns <= now < t0_ns + 4 * 100, (hex(t0_ns), hex(now))
    later = await regs.rd64("CLOCK_NOW")
    assert now < later < now + 4 * 100, (hex(now), hex(later))
    await regs.wr("CTRL", 1)

    # -- reference
    model = IngressModel(session=SESSION, data_width=DW)
    for fr, err in frames:
        model.feed(fr, mac_error=err)
    want, want_book = expected_book(model, sub)

    # -- streams
    bp_on = [False]

    def backpressure():
        rng = random.Random(seed + 7)
        while True:
            yield bp_on[0] and rng.random() < bp_p

    src = StreamSource(dut, "mac", dut.clk, layout=mac_beat_layout(DW),
                       idle=pauses(idle_p, seed))
    sink = StreamSink(dut, "bbo", dut.clk, backpressure=backpressure())
    beat_cycle: dict[tuple[int, int], int] = {}
    order: list[tuple[int, int]] = []
    for fi, (fr, err) in enumerate(frames):
        beats = frame_to_beats(fr, DW, error=err)
        order.extend((fi, bi) for bi in range(len(beats)))
        src.extend(beats)
    pos = [0]

    def on_beat(_payload, cyc):
        beat_cycle[order[pos[0]]] = cyc
        pos[0] += 1

    src.on_transfer = on_beat
    # the first cycle each frame's first beat is valid on mac: its arrival, the time the card
    # stamps (rx_ns), whatever backpressure follows
    arrival: list[int] = []
    cocotb.start_soon(frame_arrivals(dut, "mac", dut.clk, mac_beat_layout(DW),
                                     lambda: arrival.append(cycle_now())))
    # first half without backpressure (latency), second half with
    half = want[len(want) // 2]["index"] if want else 0
    while sink.received < len(want) // 2 and not src.idle_now():
        await RisingEdge(dut.clk)
    bp_on[0] = True
    await src.wait_idle()
    for _ in range(20000):
        if sink.received >= len(want):
            break
        await RisingEdge(dut.clk)
    await ClockCycles(dut.clk, 200)  # nothing more may come
    await ReadOnly()
    await RisingEdge(dut.clk)

    # -- records
    rb = BR.record_bytes(DEPTH_N)
    raw = b"".join(int(v).to_bytes(rb, "little") for v in list(sink.queue))
    recs = np.frombuffer(raw, BR.dtype(DEPTH_N))
    got = [BR.unpack(raw[i * rb:i * rb + 64]) for i in range(len(recs))]
    assert all(raw[i * rb + 64 + 24 * (DEPTH_N - 1):(i + 1) * rb] == bytes(
        rb - 64 - 24 * (DEPTH_N - 1)) for i in range(len(recs))), "padding not zero"
    times = list(sink.times)
    assert len(got) == len(want), f"{len(got)} records, model {len(want)}"
    lat = defaultdict(list)
    offset = None
    rx_base = None
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        # the reference book has no capacity limits: a record flagged not-valid means the build
        # parameters are too small for the stream (table full / level store full), say so
        if g["flags"] & BR.FLAG_BOOK_INVALID and not w["flags"] & BR.FLAG_BOOK_INVALID:
            raise AssertionError(
                f"record {i}: the card marked locate {g['locate']} not valid (order table or "
                f"level store full); these build parameters are too small for this stream\n{g}"
            )
        for k in ("seq", "ts_event", "locate", "msg_type", "bid_px", "bid_sz", "bid_ct",
                  "ask_px", "ask_sz", "ask_ct", "flags"):
            assert g[k] == w[k], f"record {i} {k}: got {g[k]} want {w[k]}\n{g}\n{w}"
        assert g["record_seq"] == i and g["reserved0"] == 0
        # rx_ns: the clock when the message's frame arrived (4 ns per bench cycle)
        first = arrival[w["frame"]]
        if rx_base is None:
            rx_base = g["rx_ns"] - 4 * first
            assert t0_ns < g["rx_ns"], (hex(t0_ns), hex(g["rx_ns"]))
        assert g["rx_ns"] == rx_base + 4 * first, (i, w["frame"], g["rx_ns"], rx_base, first)
        assert g["slot"] == w["slot"], (i, g["slot"], w["slot"])
        assert g["depth_n"] == DEPTH_N, (i, g["depth_n"])
        for s in "BS":
            lv = [tuple(int(x) for x in row) for row in BR.depth_levels(recs[i:i + 1], s)[0]]
            ref_lv = [(px, min(sz, 2**32 - 1), ct) for px, sz, ct in w["levels"][s]]
            ref_lv += [(0, 0, 0)] * (DEPTH_N - len(ref_lv))
            assert lv == ref_lv, f"record {i} side {s} levels: got {lv} want {ref_lv}"
        # first cycle the record is valid: card_cycles + 1 (it was loaded the cycle before),
        # in bench cycles (cycle_now) counted from the first cycle after reset
        valid_cycle = g["card_cycles"] + 1 + t_reset
        if offset is None:
            offset = times[i] - valid_cycle
            dut._log.info("card_cycles time base: offset %d", offset)
        assert times[i] >= valid_cycle + offset
        if w["index"] < half:  # no backpressure yet: valid cycle == transfer cycle
            assert times[i] == valid_cycle + offset, (i, times[i], valid_cycle)
            lat[chr(w["msg_type"])].append(valid_cycle - beat_cycle[(w["frame"], w["beat"])])
    sink.queue.clear()
    assert src.idle_now() and pos[0] == len(order)

    # -- counters and status
    c = model.counters
    for name, _ in INGRESS_COUNTERS:
        v = await regs.rd64(f"CNT_{name.upper()}")
        assert v == c[name], f"ingress counter {name}: got {v}, model {c[name]}"
    for name, _ in BOOK_COUNTERS:
        v = await regs.rd64(f"CNT_{name.upper()}")
        assert v == want_book[name], f"book counter {name}: got {v}, model {want_book[name]}"
    assert await regs.rd64("CNT_BBO_RECORDS") == len(want)
    assert await regs.rd64("CNT_BBO_STALL_CYCLES") > 0
    assert await regs.rd64("CNT_MAC_DROPPED_FRAMES") == dropped
    st = model.status()
    assert await regs.rd64("STATUS_EXPECTED_SEQ") == st["expected_seq"]
    assert await regs.rd64("STATUS_LAST_GAP_FIRST") == st["last_gap_first"]
    assert await regs.rd64("STATUS_LAST_GAP_COUNT") == st["last_gap_count"]
    assert st["last_gap_count"] > 0
    s = await regs.rd("STATUS")
    assert s & 1 == st["session_locked"]
    sticky = await regs.rd("STATUS_STICKY")
    assert sticky & 0b11 == 0b11, hex(sticky)  # gap and drop seen
    assert sticky & 0b1100 == 0  # no table full, no level overflow
    await regs.wr("STATUS_STICKY", 0b11)
    assert await regs.rd("STATUS_STICKY") & 0b11 == 0
    cyc0 = await regs.rd64("STATUS_CYCLES")
    cyc1 = await regs.rd64("STATUS_CYCLES")
    assert cyc1 > cyc0 > 0
    # counters_clear zeroes every counter; STATUS_CYCLES keeps counting
    await regs.wr("CTRL_PULSE", 1 << 3)
    for name in ("FRAMES", "MESSAGES", "RECORDS", "BBO_UPDATES", "BBO_RECORDS",
                 "MAC_DROPPED_FRAMES"):
        assert await regs.rd64(f"CNT_{name}") == 0, name
    assert await regs.rd64("STATUS_CYCLES") > cyc1

    out = os.environ.get("TOP_LATENCY_OUT")
    summary = {t: {"n": len(v), "min": min(v), "max": max(v), "mean": sum(v) / len(v)}
               for t, v in sorted(lat.items())}
    dut._log.info("records %d, latency (cycles, last-byte beat -> record valid): %s",
                  len(want), summary)
    if out:
        with open(out, "w") as fh:
            json.dump(summary, fh, indent=1)
