"""Configuration: defaults, TOML loading, clear errors at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from host.trading.risk import AccountConfig, ConfigError, RiskConfig, config_from_dict, load_config
from host.trading.session import default_risk_config

ROOT = Path(__file__).resolve().parents[4]


def test_example_file_is_the_session_default():
    assert load_config(ROOT / "examples" / "risk.toml") == default_risk_config()


def test_defaults_documented_values():
    a = AccountConfig(7)
    assert (a.max_order_qty, a.max_position, a.breaker_loss_bps) == (10_000, 100_000, 200)
    assert a.breaker_loss == 10_000_000 * 10_000 * 200 // 10_000
    c = RiskConfig()
    assert (c.collar.mode, c.collar.value, c.deny_on_stale, c.stale_recovery_updates) == (
        "bps", 500, True, 3)


def test_with_instruments_adds_defaults_only_for_new_ids():
    c = config_from_dict({"instruments": [{"instrument": 5, "tick": 1}]})
    c2 = c.with_instruments([5, 6], {6: 25})
    assert [(i.instrument, i.tick) for i in c2.instruments] == [(5, 1), (6, 25)]


@pytest.mark.parametrize("text,match", [
    ("[risk]\nbogus = 1\n", r"unknown key\(s\) \['bogus'\]"),
    ("[risk]\n[[risk.accounts]]\naccount = 1\nmax_order_qty = -5\n",
     r"accounts\[0\].*max_order_qty must be >= 0"),
    ("[risk]\n[[risk.accounts]]\naccount = 1\nmax_order_qty = 1.5\n", "must be an integer"),
    ("[risk]\n[[risk.accounts]]\naccount = 1\n[[risk.accounts]]\naccount = 1\n",
     "duplicate account"),
    ("[risk]\ncollar = { mode = 'pct', value = 5 }\n", "collar.mode"),
    ("[risk]\ndeny_on_stale = 'yes'\n", "deny_on_stale"),
    ("[risk]\n[[risk.accounts]]\naccount = 1\nposition_limits = { AAPL = 5 }\n",
     "instrument ids"),
    ("[risk]\n[[risk.accounts]]\nmax_order_qty = 5\n", "account"),
    ("[riskk]\n", r"no \[risk\] table"),
    ("[risk\n", "invalid TOML"),
])
def test_bad_config_is_a_clear_error(tmp_path, text, match):
    p = tmp_path / "r.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(p)


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read"):
        load_config("/nonexistent/risk.toml")


def test_configs_are_frozen():
    a = AccountConfig(1)
    with pytest.raises(AttributeError):
        a.max_order_qty = 5
