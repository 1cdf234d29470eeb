"""pytest entry of the bounded proofs (``docs/formal.md``): a quick subset in ``make test``,
everything (with every seeded bug) in ``make formal`` / ``make test-long``."""

from __future__ import annotations

import pytest

from sim.formal.harness import run_sby
from sim.formal.proofs import MUTANTS, PROOFS, build

QUICK_PROOFS = ("ethernet", "decoder", "moldudp_counters")
QUICK_MUTANTS = ("eth_ready_ignores_stall", "decoder_length_off_by_one",
                 "mold_missing_ignores_commit")
_BY_NAME = {mu.name: mu for mu in MUTANTS}


def _prove(name, mutant=None):
    top, depth = build(name, mutant)
    tag = f"test_{name}" if mutant is None else f"test_mutant_{mutant.name}"
    return run_sby(tag, top, depth=depth)


@pytest.mark.parametrize("name", QUICK_PROOFS)
def test_proof_quick(name):
    r = _prove(name)
    assert r.status == "PASS", r.log_tail


@pytest.mark.parametrize("mutant", QUICK_MUTANTS)
def test_seeded_bug_fails_quick(mutant):
    mu = _BY_NAME[mutant]
    r = _prove(mu.proof, mu)
    assert r.status == "FAIL", f"seeded bug {mutant} not caught:\n{r.log_tail}"


def test_ethernet_needs_static_config():
    """The documented precondition: the parser decides on ``config`` combinationally, so a
    configuration change while a deciding beat is stalled breaks the stream rules."""
    import importlib

    from sim.formal.proofs import EthernetProof

    top = EthernetProof(importlib.import_module("hw.ethernet"), static_config=False)
    r = run_sby("test_ethernet_config_free", top, depth=8)
    assert r.status == "FAIL", r.log_tail
    assert "out: valid dropped before ready" in r.failed, r.failed


def test_mutants_apply_to_the_current_source():
    """Every seeded bug still matches the production code exactly once (no silent no-op)."""
    from sim.formal.harness import load_mutant

    for mu in MUTANTS:
        assert mu.proof in PROOFS
        load_mutant(mu.module, mu.old, mu.new)


@pytest.mark.long
@pytest.mark.parametrize("name", [n for n in PROOFS if n not in QUICK_PROOFS])
def test_proof_long(name):
    r = _prove(name)
    assert r.status == "PASS", r.log_tail


@pytest.mark.long
@pytest.mark.parametrize("mutant", [mu.name for mu in MUTANTS if mu.name not in QUICK_MUTANTS])
def test_seeded_bug_fails_long(mutant):
    mu = _BY_NAME[mutant]
    r = _prove(mu.proof, mu)
    assert r.status == "FAIL", f"seeded bug {mutant} not caught:\n{r.log_tail}"
