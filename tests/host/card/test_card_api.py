"""The Card API against the real AXI4-Lite register slave (hw.axil) in a stand-in top.

The stand-in (tests/host/card/standin.py) wires a few register inputs to checkable logic; the
end-to-end tests with the real top level are in test_card_e2e.py.
"""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest

from host.card import Card, CardError, CardMismatch
from host.card.sim import SimTransport
from hw.emit import to_verilog
from hw.regs import REGMAP_VERSION, U250_PARAMS, BuildParams
from tests.host.card.standin import RegStandinTop, StandinTop


def _transport(top):
    return SimTransport(verilog=to_verilog(top, name="top"), idle_cycles=32)


@pytest.fixture(scope="module")
def small_params():
    return BuildParams(slots=4)


@pytest.fixture
def card(small_params):
    c = Card(_transport(RegStandinTop(small_params)))
    yield c
    c.close()


def test_identify(card, small_params):
    assert card.info.params == small_params
    assert card.info.version[0] == REGMAP_VERSION[0]
    assert card.slots == 4


def test_expected_params_mismatch(small_params):
    with pytest.raises(CardMismatch, match=rf"slots=4 \(expected {U250_PARAMS.slots}\)"):
        Card(_transport(RegStandinTop(small_params)), expect=U250_PARAMS)


def test_wrong_magic():
    with pytest.raises(CardMismatch, match="ID_MAGIC"):
        Card(_transport(StandinTop()))


def test_configure_reads_back(card):
    card.configure(udp_port=30001, ip_dst="239.1.2.3", session="ABCDEFGHIJ")
    assert card.read("CONFIG_UDP_PORT") == 30001
    assert card.read("CONFIG_IP_DST") == int(ipaddress.IPv4Address("239.1.2.3"))
    assert card.read("CONFIG_SESSION_0") == int.from_bytes(b"ABCD", "little")
    assert card.read("CONFIG_SESSION_1") == int.from_bytes(b"EFGH", "little")
    assert card.read("CONFIG_SESSION_2") == int.from_bytes(b"IJ", "little") | 1 << 31
    assert card.field("CTRL", "enable") == 1
    card.configure(session_filter=False, enable=False)
    assert card.read("CONFIG_SESSION_2") == int.from_bytes(b"IJ", "little")
    assert card.field("CTRL", "enable") == 0
    with pytest.raises(ValueError, match="10 bytes"):
        card.configure(session="short")
    with pytest.raises(ValueError, match="does not fit"):
        card.write("CONFIG_UDP_PORT", udp_port=1 << 16)
    with pytest.raises(CardError, match="not writable"):
        card.write("ID_MAGIC", 1)


def test_subscriptions(card):
    directory = {"AAPL": 13, "MSFT": 20}
    subs = card.subscribe([5, 7], symbols=["aapl"], directory=directory)
    assert subs == {5: 0, 7: 1, 13: 2}
    assert card.subscribe([7]) == subs  # idempotent: no second write
    assert card.counters(["records"])["records"] == 3
    card.subscribe(symbols=["MSFT"], directory=directory)
    with pytest.raises(CardError, match="no free book slot"):
        card.subscribe([99])
    assert card.unsubscribe([7]) == {5: 0, 13: 2, 20: 3}
    assert card.counters(["ignored"])["ignored"] == 1
    assert card.subscribe([99])[99] == 1  # the freed slot is reused
    assert card.read("CONFIG_SUB_LOCATE") == 99
    assert card.read("CONFIG_SUB_SLOT") == 1 | 1 << 24 | 1 << 31  # slot 1, tick 100, valid
    with pytest.raises(KeyError, match="stock directory"):
        card.subscribe(symbols=["NOPE"], directory=directory)
    with pytest.raises(ValueError, match="16 bits"):
        card.subscribe([1 << 16])


def test_counters_status_sticky(card):
    frames = [bytes(70)] * 10
    card.send(frames, errors=[0, 1] * 5)
    card.run()
    c = card.counters()
    assert c["frames"] == 10 and c["drop_error"] == 5
    assert set(c) >= {"messages", "msg_a", "msg_hh", "bbo_updates", "bbo_records"}
    assert card.status()["seen_drop"] == 1
    card.clear_sticky("seen_drop")
    assert card.status()["seen_drop"] == 0
    raw, cyc = card.read_raw()
    np.testing.assert_array_equal(raw[:, 0], np.arange(10))
    assert len(cyc) == 10


def test_clear_stale(card):
    card.subscribe([42])
    card.clear_stale(locate=42)
    assert card.read("CLEAR_SLOT") == 0
    card.clear_stale()
    with pytest.raises(KeyError):
        card.clear_stale(locate=43)
    with pytest.raises(ValueError):
        card.clear_stale(slot=4)
