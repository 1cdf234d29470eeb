"""The console server: page, state, WebSocket push, actions behind the token, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from host.console.app import MAX_BODY, Mailbox, create_app

from .conftest import TOKEN

AUTH = {"X-Console-Token": TOKEN}


def _steps(live, n):
    for _ in range(n):
        if not live.step():
            break


def test_page_and_assets_load_with_a_strict_policy(client):
    r = client.get("/")
    assert r.status_code == 200 and "itchfpga console" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    for name in ("console.js", "console.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/secret.txt").status_code == 404


def test_no_cors_headers_even_for_a_foreign_origin(client):
    r = client.get("/api/state", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    r = client.options("/api/kill", headers={"Origin": "http://evil.example",
                                             "Access-Control-Request-Method": "POST"})
    assert r.status_code == 405
    assert "access-control-allow-origin" not in r.headers


def test_a_foreign_host_name_is_refused(client):
    """DNS rebinding: a page whose own name now points at 127.0.0.1 sends its Host."""
    r = client.get("/api/state", headers={"Host": "evil.example:8000"})
    assert r.status_code == 400
    assert client.get("/api/state", headers={"Host": "localhost:8000"}).status_code == 200


def test_state_moves_as_the_replay_steps(client, live):
    s0 = client.get("/api/state").json()
    assert s0["records"] == 0 and len(s0["books"]) == len(live.locates)
    _steps(live, 20)
    s1 = client.get("/api/state").json()
    assert s1["records"] == live.pos > 0
    assert s1["risk"]["submitted"] == live.submitted > 0
    assert s1["messages"] > 0
    book = s1["books"][0]
    assert book["bids"] and book["asks"]  # reference depth, best first
    assert book["bids"][0][0] > book["asks"][0][0] or book["bids"][0][0] < book["asks"][0][0]
    assert [lv[0] for lv in book["bids"]] == sorted((lv[0] for lv in book["bids"]), reverse=True)
    assert [lv[0] for lv in book["asks"]] == sorted(lv[0] for lv in book["asks"])
    assert all(isinstance(lv[0], int) for lv in book["bids"])  # Price(4) integers


def test_action_without_or_with_a_wrong_token_is_refused(client, live):
    body = {"scope": "all", "value": 0, "engage": True}
    assert client.post("/api/kill", json=body).status_code == 401
    assert client.post("/api/kill", json=body,
                       headers={"X-Console-Token": TOKEN[:-1] + "x"}).status_code == 401
    assert client.post("/api/kill", json=body,
                       headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/api/clear-stale", json={}).status_code == 401
    assert not live.kill_switches()["all"]
    assert client.get("/api/auth").json() == {"actions": False}
    assert client.get("/api/auth", headers=AUTH).json() == {"actions": True}


def test_kill_switch_stops_new_orders_and_release_resumes(client, live):
    _steps(live, 10)
    r = client.post("/api/kill", json={"scope": "all", "value": 0, "engage": True},
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert live.kill_switches()["all"]
    acc, sub = live.accepted, live.submitted
    killed0 = live.risk.denied_counts().get("KILL_SWITCH", 0)
    _steps(live, 20)
    new = live.submitted - sub
    assert new > 0
    # every new order is denied by the switch; only cancels may still reach the venue
    assert live.risk.denied_counts()["KILL_SWITCH"] - killed0 == new
    assert live.accepted == acc  # nothing new reached the venue's book
    assert live.risk.open_orders == 0  # the switch canceled them, nothing new rests
    st = client.get("/api/state").json()
    assert st["risk"]["kill"]["all"] is True
    assert client.post("/api/kill", json={"scope": "all", "engage": False},
                       headers=AUTH).status_code == 200
    killed1 = live.risk.denied_counts()["KILL_SWITCH"]
    acc1 = live.accepted
    _steps(live, 20)
    assert live.risk.denied_counts()["KILL_SWITCH"] == killed1
    assert live.accepted > acc1


def test_strategy_and_instrument_switches(client, live):
    loc = live.locates[0]
    r = client.post("/api/kill", json={"scope": "instrument", "value": loc, "engage": True},
                    headers=AUTH)
    assert r.status_code == 200 and live.kill_switches()["instrument"] == [loc]
    r = client.post("/api/kill", json={"scope": "strategy", "value": 2, "engage": True},
                    headers=AUTH)
    assert r.status_code == 200 and live.kill_switches()["strategy"] == [2]
    assert client.get("/api/state").json()["actions"][0][1] == "engage kill switch strategy 2"


@pytest.mark.parametrize("body, why", [
    ({"scope": "everything", "value": 0, "engage": True}, "scope"),
    ({"scope": "account", "value": 99, "engage": True}, "unknown account"),
    ({"scope": "account", "value": "1", "engage": True}, "'value' must be int"),
    ({"scope": "account", "value": True, "engage": True}, "'value' must be int"),
    ({"scope": "account", "value": -1, "engage": True}, "out of range"),
    ({"scope": "all", "value": 0, "engage": 1}, "'engage' must be bool"),
    ({"scope": "all", "engage": True, "extra": 1}, "unknown field"),
    ({"value": 0, "engage": True}, "missing field 'scope'"),
    ([1, 2], "JSON object"),
])
def test_kill_bodies_are_validated(client, live, body, why):
    r = client.post("/api/kill", json=body, headers=AUTH)
    assert r.status_code == 400 and why in r.json()["error"]
    assert live.kill_switches() == {"all": False, "account": [], "strategy": [],
                                    "instrument": []}


def test_malformed_requests(client):
    h = {**AUTH, "Content-Type": "application/json"}
    assert client.post("/api/kill", content=b"{not json", headers=h).status_code == 400
    big = json.dumps({"scope": "all", "engage": True, "value": 0}).encode() + b" " * MAX_BODY
    assert client.post("/api/kill", content=big, headers=h).status_code == 413
    assert client.post("/api/kill", content=b"scope=all",
                       headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
                       ).status_code == 415
    assert client.get("/api/kill").status_code == 405
    r = client.post("/api/clear-stale", json={"instrument": 123456}, headers=AUTH)
    assert r.status_code == 400 and "unknown instrument" in r.json()["error"]


def test_cross_origin_action_is_refused_even_with_the_token(client, live):
    r = client.post("/api/kill", json={"scope": "all", "engage": True},
                    headers={**AUTH, "Origin": "http://evil.example"})
    assert r.status_code == 403 and not live.kill_switches()["all"]
    r = client.post("/api/kill", json={"scope": "all", "engage": True},
                    headers={**AUTH, "Origin": "http://127.0.0.1:8000"})
    assert r.status_code == 200


def test_clear_stale_marks_references_valid(client, live):
    loc = live.locates[0]
    from host.trading.risk import checks as K

    live.risk.N[live.risk._i(loc), K.N_STALE] = 1  # as after a sequence gap
    assert live.risk.reference(loc)[2]
    assert client.get("/api/state").json()["risk"]["stale"] == [loc]
    r = client.post("/api/clear-stale", json={"instrument": loc}, headers=AUTH)
    assert r.status_code == 200 and r.json()["cleared"] == [loc]
    assert not live.risk.reference(loc)[2]
    r = client.post("/api/clear-stale", json={"instrument": None}, headers=AUTH)
    assert r.status_code == 200 and r.json()["cleared"] == []


def test_websocket_pushes_snapshots(client, live):
    _steps(live, 5)
    with client.websocket_connect("/ws") as ws:
        a = json.loads(ws.receive_text())
        _steps(live, 5)
        b = json.loads(ws.receive_text())
        while b["state"]["records"] == a["state"]["records"]:
            b = json.loads(ws.receive_text())
    assert b["seq"] > a["seq"] and a["dropped"] >= 0
    assert b["state"]["records"] > a["state"]["records"]


def test_websocket_from_a_foreign_origin_is_refused(client):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/ws", headers={"Origin": "http://evil.example"}) as ws:
            ws.receive_text()


def test_mailbox_coalesces_and_counts_drops():
    m = Mailbox()
    assert not m.offer('{"dropped":0,"seq":1}')
    assert m.offer('{"dropped":0,"seq":2}')
    assert m.offer('{"dropped":0,"seq":3}')
    assert m.take() == '{"dropped":2,"seq":3}'
    assert m.take() is None
    assert not m.offer('{"dropped":0,"seq":4}')
    assert m.take() == '{"dropped":2,"seq":4}' and m.sent == 2


def test_short_token_and_bad_rate_are_refused(live):
    with pytest.raises(ValueError, match="16"):
        create_app(live, token="short")
    with pytest.raises(ValueError, match="hz"):
        create_app(live, token=TOKEN, hz=1000)


def test_depth_matches_the_reference_book(live):
    """The ladder is the reference L3 book at the last applied message."""
    from host.feed.book import L3Book, iter_indexed

    _steps(live, 30)
    ref = L3Book(live.locates)
    for i, msg in iter_indexed(live.feed.itch):
        if i >= live.msg_pos:
            break
        ref.apply(msg)
    snap = live.snapshot()
    for b in snap["books"]:
        assert [tuple(x) for x in b["bids"]] == ref.depth(b["locate"], "B", 5)
        assert [tuple(x) for x in b["asks"]] == ref.depth(b["locate"], "S", 5)
    assert np.all(live.msg_of[: live.pos] < live.msg_pos)


def test_scripted_session_plays_the_kill_plan(market, tmp_path):
    """``serve --session``: the kill switches of ``python -m host session`` at its chunks."""
    from host.console.live import LiveConfig, LiveSession

    s = LiveSession(LiveConfig(input=market, out_dir=str(tmp_path), speed=0, chunk=16,
                               scripted=True))
    try:
        plan = sorted(s.kill_plan.items())
        assert [(v[0], v[1]) for _, v in plan] == [(True, "instrument"), (False, "instrument"),
                                                   (True, "strategy"), (False, "strategy")]
        seen = []
        while s.step():
            seen.append(s.kill_switches())
        eng_i, rel_i, eng_s, rel_s = (k for k, _ in plan)
        assert seen[eng_i]["instrument"] == [s.locates[0]] and not seen[rel_i]["instrument"]
        assert seen[eng_s]["strategy"] == [2] and not seen[rel_s]["strategy"]
        assert [a[1] for a in s.actions][-1] == f"engage kill switch instrument {s.locates[0]} " \
            "(script)"
    finally:
        s.stop()


def test_stale_windows_after_a_sequence_gap(market, tmp_path):
    """A dropped packet makes references stale; the window closes by itself or by the
    operator's clear-stale, and the page's snapshot lists it."""
    from host.console.live import LiveConfig, LiveSession

    s = LiveSession(LiveConfig(input=market, out_dir=str(tmp_path), speed=0, chunk=16,
                               drop_packets=(20, 60)))
    try:
        assert s.feed.n_messages < 6000  # the dropped packets' messages are gone
        opened = None
        while s.step():
            if s.stale_open and opened is None:
                opened = dict(s.stale_open)
                snap = s.snapshot()
                assert snap["risk"]["stale"] == sorted(opened)
                assert [w[3] for w in snap["card"]["stale_list"]] == ["open"] * len(opened)
                r = s.clear_stale(None)
                assert sorted(r["cleared"]) == sorted(opened)
                assert not s.stale_open
                ended = {w[0]: w[3] for w in s.stale_closed}
                assert all(ended[loc] == "operator" for loc in opened)
        assert opened is not None and s.stale_windows >= len(opened)
        assert s.gap_records > 0
    finally:
        s.stop()
