"""Fixtures of the simulated-card tests: one Verilated card per module, hard-reset per test.

A module that needs another set-up (stalls, parameters) defines its own ``fresh`` or ``card``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def card():
    """The simulated U250 card (hw/top.py under Verilator; built once, cached under build/)."""
    pytest.importorskip("hw.top", reason="hw/top.py has not landed")
    from host.card.replay import open_sim_card

    c = open_sim_card()
    yield c
    c.close()


@pytest.fixture
def fresh(card):
    """``card`` after a hard reset (the ns clock and the cycle counter too)."""
    card.reset(hard=True)
    return card
