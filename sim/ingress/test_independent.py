"""The bench oracle :mod:`sim.ingress.independent` against ``host.feed.record_map`` (no
simulator): the two agree on every type, and a wrong map entry (the two order references of
``U`` swapped, as a mutant) is caught."""

from __future__ import annotations

import numpy as np
import pytest

from host.feed import itch, record_map
from host.feed.spec import MESSAGES
from hw.layouts import record_layout_fields
from sim.ingress.independent import independent_record
from sim.ingress.stimulus import every_type_messages

WIDTHS = record_layout_fields()


def _mismatches(msgs):
    bad = []
    for k, msg in enumerate(msgs):
        exp = record_map.expected_record(itch.decode(msg), seq=k, gap=k % 3 == 0)
        got = independent_record(msg, k, k % 3 == 0, WIDTHS)
        if got != exp:
            bad.append((chr(msg[0]), {f: (exp[f], got[f]) for f in exp if exp[f] != got[f]}))
    return bad


def test_every_type_agrees():
    msgs = every_type_messages(np.random.default_rng(1), per_type=20)
    assert {chr(m[0]) for m in msgs} == set(MESSAGES)
    assert _mismatches(msgs) == []


def test_rejects_what_the_decoder_drops():
    a = itch.encode("A", order_reference_number=5)
    assert independent_record(b"", 1, False, WIDTHS) is None
    assert independent_record(b"\x01" + bytes(40), 1, False, WIDTHS) is None
    assert independent_record(a[:-1], 1, False, WIDTHS) is None
    assert independent_record(a + b"xx", 1, False, WIDTHS)["order_ref"] == 5


def test_u_refs_swapped_mutant_is_caught(monkeypatch):
    mutant = {k: dict(v) for k, v in record_map.RECORD_MAP.items()}
    mutant["order_ref"]["U"], mutant["new_order_ref"]["U"] = (
        mutant["new_order_ref"]["U"],
        mutant["order_ref"]["U"],
    )
    monkeypatch.setattr(record_map, "RECORD_MAP", mutant)
    u = itch.encode("U", original_order_reference_number=7, new_order_reference_number=9)
    bad = _mismatches([u])
    assert bad == [("U", {"order_ref": (9, 7), "new_order_ref": (7, 9)})]


@pytest.mark.parametrize("t", sorted(MESSAGES))
def test_header_fields_every_type(t):
    msg = itch.encode(t, stock_locate=0x1234, tracking_number=0x5678, timestamp=0x0102030405)
    rec = independent_record(msg, 3, True, WIDTHS)
    assert (rec["msg_type"], rec["stock_locate"], rec["tracking_number"]) == (
        ord(t),
        0x1234,
        0x5678,
    )
    assert (rec["timestamp"], rec["seq"], rec["gap"]) == (0x0102030405, 3, 1)
