"""Fuzzing of the binary command layout (issue 15): random and mutated ``COMMAND_DTYPE`` rows.

Whatever the 64 bytes of a command, the engine must not crash, must keep a consistent book
(``check() == 0``), must answer every command with at least one event (but a mass cancel or
end of session that finds no order), and must answer a
command it refuses with exactly one ``OrderRejected`` carrying a reject reason -- and then
nothing but the sequence numbers may have changed. The batch path must give the same bytes.

The default run is short (``make test``); ``-m long`` runs many more examples.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.trading.matching import (
    COMMAND_DTYPE,
    EngineConfig,
    EventKind,
    InstrumentConfig,
    MatchingEngine,
    Reason,
    core,
)
from host.trading.matching.engine import MAX_ORDER_QTY

PX = 10_000
CONFIG = EngineConfig(
    instruments=(InstrumentConfig(1, min_price=100, max_price=20_000),
                 InstrumentConfig(2, min_price=100, max_price=20_000)),
    max_orders=64, event_buffer=64)
I64 = (-(2**63), 2**63 - 1)
REJECT_REASONS = {int(r) for r in Reason if 0 < r < 32}
OTHER_REASONS = {0} | {int(r) for r in Reason if r >= 32}


def _pick(common, rare, p_rare: int = 8):
    """Mostly ``common`` (a strategy), sometimes one of the ``rare`` values."""
    return st.integers(0, p_rare - 1).flatmap(
        lambda r: st.sampled_from(rare) if r == 0 else common)


_px = _pick(st.integers(-4, 4).map(lambda k: PX + 100 * k),
            [0, -1, 1, PX + 50, 20_000, 20_100, 2**62, *I64])
_qty = _pick(st.integers(1, 40),
             [0, -1, MAX_ORDER_QTY, MAX_ORDER_QTY + 1, 2**62, *I64])
_disp = _pick(st.sampled_from([0, 0, 0, 1, 3, 7]), [-1, 2**62, MAX_ORDER_QTY, *I64])
_u8 = st.integers(0, 255)


@st.composite
def plausible_rows(draw) -> bytes:
    """A command close to a valid one (each field sometimes at an edge), then byte flips."""
    row = struct.pack(
        "<qQqqqqIIBBBBBBH",
        draw(_pick(st.integers(1, 10**6), list(I64))),                        # ts
        draw(_pick(st.integers(0, 20), [2**64 - 1, 2**63, 2**63 - 1])),     # order_id
        draw(_px),                                                            # price
        draw(_qty),                                                           # qty
        draw(_disp),                                                          # display_qty
        draw(_px),                                                            # stop_price
        draw(_pick(st.integers(1, 3), [0, 2**32 - 1])),                       # account
        draw(_pick(st.sampled_from([1, 1, 2]), [0, 3, 65535, 65536, 2**32 - 1])),
        draw(_pick(st.sampled_from([1, 1, 1, 2, 3, 4, 5]), [0, 6, 255])),     # kind
        draw(_pick(st.sampled_from([1, 2]), [0, 3, 255])),                    # side
        draw(_pick(st.sampled_from([1, 1, 2, 3, 4]), [0, 5, 255])),           # order_type
        draw(_pick(st.sampled_from([1, 2, 3, 4]), [0, 5, 255])),              # tif
        draw(_pick(st.sampled_from([0, 0, 1, 2, 3]), [4, 255])),              # flags
        draw(_pick(st.sampled_from([0, 0, 1, 2, 3, 4]), [5, 255])),           # stp
        draw(_pick(st.just(0), [1, 65535])),                                  # pad
    )
    flips = draw(st.lists(st.tuples(st.integers(0, 63), _u8), max_size=3))
    b = bytearray(row)
    for pos, val in flips:
        b[pos] = val
    return bytes(b)


rows = st.one_of(plausible_rows(), plausible_rows(), plausible_rows(),
                 st.binary(min_size=64, max_size=64))


def _state(eng: MatchingEngine) -> list[np.ndarray]:
    hwm = int(eng.S[core.S_HWM])
    live = eng.P[:hwm].copy()
    live[live[:, core.O_STATE] == core.ST_FREE] = 0  # free rows hold stale bytes
    return [live, eng.L.copy(), eng.BM.copy(), eng.I.copy(), eng.H.copy()]


def _run(batch: list[bytes]) -> None:
    cmds = np.frombuffer(b"".join(batch), COMMAND_DTYPE)
    eng = MatchingEngine(CONFIG)
    stream = []
    for j in range(len(cmds)):
        before = _state(eng)
        seq0 = eng.event_seq
        ev = eng.process(cmds[j:j + 1])
        stream.append(ev)
        code = eng.check()
        assert code == 0, f"check_book code {code} after command {j}: {cmds[j]}"
        # only a mass cancel / end of session that finds nothing to end answers nothing
        assert len(ev) >= 1 or int(cmds[j]["kind"]) in (4, 5), f"no event for command {j}"
        assert (ev["cmd_seq"] == j + 1).all()
        assert np.array_equal(ev["seq"], np.arange(seq0 + 1, seq0 + 1 + len(ev)))
        assert set(ev["kind"].tolist()) <= {int(k) for k in EventKind}
        rej = ev["kind"] == EventKind.REJECTED
        if rej.any():
            # a refused command: one event, a reject reason, nothing else changed
            assert len(ev) == 1 and int(ev["reason"][0]) in REJECT_REASONS
            after = _state(eng)
            for a, b, name in zip(before, after, ("P", "L", "BM", "I", "H"), strict=True):
                assert np.array_equal(a, b), f"rejected command {j} changed {name}"
        else:
            assert set(ev["reason"].tolist()) <= OTHER_REASONS
        if int(cmds[j]["kind"]) not in (1, 2, 3, 4, 5):
            assert rej.all() and ev["reason"][0] == Reason.INVALID_COMMAND
        for inst in (1, 2):
            b = eng.bbo(inst)
            for lv in (b.bid, b.ask):
                assert lv is None or 0 < lv.qty <= 64 * MAX_ORDER_QTY
    # the batch path gives the same bytes and the same state
    again = MatchingEngine(CONFIG)
    ev_all = again.process(cmds)
    assert np.array_equal(np.concatenate(stream).view(np.uint8), ev_all.view(np.uint8))
    assert again.state_hash() == eng.state_hash() and again.check() == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=40))
def test_fuzzed_commands_never_break_the_engine(batch) -> None:
    _run(batch)


@pytest.mark.long
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=120))
def test_fuzzed_commands_never_break_the_engine_long(batch) -> None:
    _run(batch)
