"""The console in Debian's Chromium, headless, driven by Selenium (``/usr/bin/chromedriver``).

A real uvicorn server runs the replay in market time; the browser loads the page, sees the
values move, refuses an action without the token, and with it engages the kill switch, after
which no new order reaches the venue.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from .conftest import TOKEN, free_port, serve

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("chromedriver") is None,
    reason="Debian chromium and chromium-driver are not installed (make setup installs them)")


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """A served console replaying a small market (~100 s of wall time; stopped earlier)."""
    from host.cli import main
    from host.console.app import create_app
    from host.console.live import LiveConfig, LiveSession
    from host.console.metrics import ConsoleMetrics

    d = tmp_path_factory.mktemp("browser")
    src = d / "m.itch"
    assert main(["generate", "--messages", "8000", "--symbols", "4", "--seed", "5",
                 "--out", str(src)]) == 0
    m = ConsoleMetrics()
    live = LiveSession(LiveConfig(input=str(src), out_dir=str(d / "j"), speed=600, chunk=8),
                       metrics=m)
    app = create_app(live, token=TOKEN, metrics=m, hz=20)
    with serve(app, free_port()) as url:
        yield url, live


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
              "--window-size=1400,1000",
              f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()


def _text(drv, id_):
    return drv.find_element("id", id_).text


def _wait(pred, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_page_loads_and_values_move(console, browser):
    url, live = console
    browser.get(url + "/")
    assert browser.title == "itchfpga console"
    _wait(lambda: _text(browser, "conn") == "live", what="the WebSocket")
    r0 = _wait(lambda: int(_text(browser, "records") or 0), what="a first record")
    _wait(lambda: int(_text(browser, "records")) > r0, what="the record count to move")
    assert _text(browser, "auth-state") == "read-only"
    books = browser.find_elements("css selector", ".book")
    assert len(books) == len(live.locates)
    _wait(lambda: float(_text(browser, "ups")) > 0, what="the update rate")  # after 1 s
    assert _text(browser, "server-drops").isdigit() and _text(browser, "page-drops").isdigit()


def test_action_without_the_token_is_refused(console, browser):
    url, live = console
    browser.find_element("id", "kill-all").click()
    _wait(lambda: "refused (401)" in _text(browser, "action-result"), what="a refusal")
    assert not live.kill_switches()["all"]
    # the same from outside the page: no token, no action
    req = urllib.request.Request(url + "/api/kill", method="POST",
                                 data=json.dumps({"scope": "all", "engage": True}).encode(),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 401


def test_kill_switch_from_the_page_stops_new_orders(console, browser):
    url, live = console
    assert not live.finished, "the replay ended before the kill-switch test"
    browser.find_element("id", "token").send_keys(TOKEN)
    browser.find_element("id", "token-use").click()
    _wait(lambda: _text(browser, "auth-state") == "actions enabled", what="the token")
    browser.find_element("id", "kill-all").click()
    _wait(lambda: "done: engage kill switch all" in _text(browser, "action-result"),
          what="the kill switch")
    _wait(lambda: "ALL" in _text(browser, "kill-state"), what="the kill state on the page")
    acc = int(_text(browser, "accepted"))
    sub = int(_text(browser, "submitted"))
    _wait(lambda: int(_text(browser, "submitted")) > sub + 20,
          what=f"more orders submitted ({sub}, {live.submitted}, {live.pos}/{live.n_records})")
    assert int(_text(browser, "accepted")) == acc == live.accepted
    assert live.risk.denied_counts()["KILL_SWITCH"] > 20
    denied = browser.find_element("id", "denied").text
    assert "KILL_SWITCH" in denied
    browser.find_element("id", "release-all").click()
    _wait(lambda: _text(browser, "kill-state") == "none", what="the release")


def _sim_card_built() -> str | None:
    """None when the simulated card's library is cached; else why not (never builds)."""
    from host.card.sim import ModelNotBuilt, card_library

    try:
        card_library(allow_build=False)
    except ModelNotBuilt as e:
        return f"the simulated card is not built (it takes minutes; not built here): {e}"
    return None


def test_card_latency_shown_with_the_simulated_card(browser, tmp_path):
    """``serve --card sim``: the page shows the record stamp latency the card replay
    measured (:func:`host.card.report.latency_by_type` of the same replay)."""
    why = _sim_card_built()
    if why:
        pytest.skip(why)
    from host.card.replay import open_sim_card, replay_through_card
    from host.card.report import latency_by_type
    from host.cli import main
    from host.console.app import create_app
    from host.console.live import LiveConfig, LiveSession

    src = tmp_path / "m.itch"
    assert main(["generate", "--messages", "3000", "--symbols", "3", "--seed", "5",
                 "--out", str(src)]) == 0
    live = LiveSession(LiveConfig(input=str(src), out_dir=str(tmp_path / "j"), card="sim",
                                  speed=0, chunk=64, clock_hz=250e6))  # serve --clock-mhz 250
    lat = live.card_latency
    assert lat["clk_hz"] == 250_000_000 and lat["ns_note"] == "" and lat["nominal_hz"] > 0
    assert lat is not None and lat["n"] > 0 and 0 < lat["min"] <= lat["p50"] <= lat["max"]
    # the reference: the card replay's own measurement, run again
    from host.feed.capture import load_feed

    card = open_sim_card(allow_build=False)
    try:
        rp = replay_through_card(card, load_feed(str(src)), live.locates, latency=True)
    finally:
        card.close()
    ref = np.concatenate(list(latency_by_type(rp).values()))
    assert (lat["n"], lat["min"], lat["max"]) == (len(ref), int(ref.min()), int(ref.max()))
    assert lat["p50"] == int(np.percentile(ref, 50, method="lower"))
    app = create_app(live, token=TOKEN, hz=20)
    with serve(app, free_port()) as url:
        browser.get(url + "/")
        _wait(lambda: _text(browser, "conn") == "live", what="the WebSocket")
        text = _wait(lambda: "p50" in _text(browser, "card-latency") and
                     _text(browser, "card-latency"), what="the card latency")
        assert f"{lat['n']} records" in text
        assert f"p50 {lat['p50']} ({lat['p50'] * 4:.1f} ns)" in text  # 4 ns a cycle at 250 MHz
        assert f"max {lat['max']} ({lat['max'] * 4:.1f} ns)" in text and "not shown" not in text
        assert browser.find_element("id", "card-latency-types").text.count("\n") >= 1
    live.stop()
