// itchfpga operator console: renders the snapshots pushed on /ws, sends the operator actions.
// Prices are ITCH Price(4) integers and money 1e-4 USD: formatted with integer arithmetic.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("console-token") || "";
let latest = null, rendered = 0, received = 0, pageDrops = 0, serverDrops = 0;
let rateCount = 0, rateT0 = performance.now();

function px(p) {  // Price(4) -> "123.4500"
  if (!p) return "-";
  const neg = p < 0; p = Math.abs(p);
  return (neg ? "-" : "") + Math.floor(p / 10000) + "." + String(p % 10000).padStart(4, "0");
}
function usd(m) {  // 1e-4 USD -> "1,234.56"
  const neg = m < 0; m = Math.abs(m);
  const cents = Math.floor(m / 100);
  return (neg ? "-" : "") + Math.floor(cents / 100).toLocaleString("en-US") + "." +
    String(cents % 100).padStart(2, "0");
}
function ts(ns) {  // ns since midnight -> HH:MM:SS.mmm
  if (!ns) return "-";
  const ms = Math.floor(ns / 1e6), s = Math.floor(ms / 1000);
  const p2 = (x) => String(x).padStart(2, "0");
  return p2(Math.floor(s / 3600)) + ":" + p2(Math.floor(s / 60) % 60) + ":" + p2(s % 60) +
    "." + String(ms % 1000).padStart(3, "0");
}
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function row(cells, tag = "td") {
  const tr = el("tr");
  for (const c of cells) tr.appendChild(c instanceof Node ? wrap(tag, c) : el(tag, String(c)));
  return tr;
}
function wrap(tag, node) { const e = el(tag); e.appendChild(node); return e; }
function fill(table, header, rows) {
  table.replaceChildren(row(header, "th"), ...rows.map((r) => row(r)));
}
function set(id, v) { const e = $(id); if (e.textContent !== String(v)) e.textContent = v; }

async function act(path, body) {
  const r = await fetch(path, {method: "POST", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json", "X-Console-Token": token}});
  let j = {};
  try { j = await r.json(); } catch (e) { j = {error: "no answer"}; }
  const out = $("action-result");
  out.textContent = r.ok ? ("done: " + j.action) : ("refused (" + r.status + "): " + j.error);
  out.className = "badge " + (r.ok ? "ok" : "bad");
  return r.status;
}
function killButton(label, scope, value, engage) {
  const b = el("button", label, engage ? "danger" : "");
  b.dataset.scope = scope; b.dataset.value = value;
  b.addEventListener("click", () => act("/api/kill", {scope, value, engage}));
  return b;
}
async function checkToken() {
  const r = await fetch("/api/auth", {headers: {"X-Console-Token": token}});
  const j = await r.json();
  const s = $("auth-state");
  s.textContent = j.actions ? "actions enabled" : "read-only";
  s.className = "badge " + (j.actions ? "ok" : "warn");
}

function renderBooks(books) {
  const box = $("books");
  box.replaceChildren(...books.map((b) => {
    const d = el("div", undefined, "book");
    d.id = "book-" + b.locate;
    const h = el("div");
    h.appendChild(el("b", b.symbol + " (" + b.locate + ")"));
    if (b.stale) h.appendChild(el("span", " stale", "badge bad"));
    if ((b.flags & 6) !== 6) h.appendChild(el("span", " one-sided", "badge warn"));
    if (b.flags & 16) h.appendChild(el("span", " book invalid", "badge bad"));
    d.appendChild(h);
    const bbo = el("div", undefined, "bbo");
    bbo.appendChild(el("span", b.bid_sz + " @ " + px(b.bid_px), "bid"));
    bbo.appendChild(el("span", "  |  "));
    bbo.appendChild(el("span", px(b.ask_px) + " x " + b.ask_sz, "ask"));
    bbo.classList.add("bbo-line");
    d.appendChild(bbo);
    const t = el("table", undefined, "ladder");
    const n = Math.max(b.bids.length, b.asks.length), rows = [];
    for (let i = 0; i < n; i++) {
      const bl = b.bids[i] || ["", "", ""], al = b.asks[i] || ["", "", ""];
      rows.push([bl[2], bl[1], bl[0] ? px(bl[0]) : "", al[0] ? px(al[0]) : "", al[1], al[2]]);
    }
    fill(t, ["#", "bid size", "bid", "ask", "ask size", "#"], rows);
    d.appendChild(t);
    const c = el("div");
    c.appendChild(killButton("kill " + b.symbol, "instrument", b.locate, true));
    c.appendChild(killButton("release", "instrument", b.locate, false));
    const cs = el("button", "clear stale");
    cs.addEventListener("click", () => act("/api/clear-stale", {instrument: b.locate}));
    c.appendChild(cs);
    d.appendChild(c);
    return d;
  }));
}

function renderLatency(lat) {
  const box = $("latency"), parts = [];
  const fmt = (s) => s >= 1e-3 ? (s * 1e3).toPrecision(2) + " ms" : (s * 1e6).toPrecision(2) + " us";
  for (const [name, label] of [["market_data", "risk marks per chunk"],
                               ["orders", "risk + venue per command"],
                               ["journal_commit", "journal commit"]]) {
    const h = lat[name], total = h.reduce((a, b) => a + b, 0), max = Math.max(1, ...h);
    parts.push(el("h3", label + " (" + total + " samples)"));
    const bars = el("div", undefined, "hist");
    h.forEach((v, i) => {
      const bar = el("div");
      bar.style.height = Math.round(58 * v / max) + "px";
      bar.title = (i < lat.edges.length ? "<= " + fmt(lat.edges[i]) : "> 1 s") + ": " + v;
      bars.appendChild(bar);
    });
    parts.push(bars, el("div", "1 us ... 1 s, 4 buckets per decade", "axis"));
  }
  box.replaceChildren(...parts);
}

function render(msg) {
  const s = msg.state;
  set("input", s.input); set("card", s.source); set("speed", s.speed);
  set("market-ts", ts(s.market_ts));
  set("records", s.records); set("n-records", s.n_records); set("messages", s.messages);
  $("progress").value = s.n_records ? s.records / s.n_records : 0;
  $("finished").hidden = !s.finished;
  set("server-drops", msg.dropped); set("page-drops", pageDrops);
  renderBooks(s.books);
  const r = s.risk;
  set("submitted", r.submitted); set("forwarded", r.forwarded);
  set("accepted", r.accepted);
  set("open-orders", r.open_orders); set("fills", r.fills);
  const k = r.kill, ks = [];
  if (k.all) ks.push("ALL");
  for (const sc of ["account", "strategy", "instrument"]) for (const v of k[sc]) ks.push(sc + " " + v);
  set("kill-state", ks.length ? ks.join(", ") : "none");
  $("kill-state").className = ks.length ? "badge bad" : "";
  set("stale", r.stale.length ? r.stale.join(", ") : "none");
  const so = s.store;
  if (so) {
    const st = Object.entries(so.written).sort();
    set("stored", (so.error ? "FAILED: " + so.error + "; " : "") + "run " + so.run + ": "
        + (st.length ? st.map((kv) => kv[0] + " " + kv[1]).join(", ") : "nothing yet")
        + " (" + so.batches + " batches, queue " + so.queue + ")");
    $("stored").className = so.error ? "badge bad" : "";
  } else {
    set("stored", "-");
  }
  fill($("denied"), ["reason", "count"],
       Object.entries(r.denied).sort((a, b) => b[1] - a[1]));
  const c = s.card;
  set("card-records", c.records); set("gap-records", c.gap_records);
  set("invalid-records", c.invalid_records);
  set("not-valid", c.not_valid.length ? c.not_valid.join(", ") : "none");
  set("live-orders", c.live_orders);
  set("stale-windows", c.stale_windows);
  fill($("stale-list"), ["symbol", "from", "to", "ended"], c.stale_list.map((w) => [
    (s.books.find((b) => b.locate === w[0]) || {symbol: w[0]}).symbol, ts(w[1]),
    w[2] === null ? "" : ts(w[2]), w[3]]));
  const L = c.latency;
  if (L) {
    const ns = (cy) => L.clk_hz ? " (" + (cy * 1e9 / L.clk_hz).toFixed(1) + " ns)" : "";
    set("card-latency", "cycles, " + L.n + " records: min " + L.min + ", p50 " + L.p50 + ns(L.p50)
        + ", p99 " + L.p99 + ns(L.p99) + ", max " + L.max + ns(L.max)
        + (L.clk_hz ? "" : " (ns not shown: the nominal " + (L.nominal_hz / 1e6).toFixed(0)
           + " MHz is not timing-closed; serve --clock-mhz F)"));
    fill($("card-latency-types"), ["type", "records", "p50 cycles", "max cycles"],
         Object.entries(L.by_type).map((kv) => [kv[0], ...kv[1]]));
  } else {
    set("card-latency", s.source === "model" ? "(reference model: no card clock)" : "-");
  }
  const counters = Object.entries(Object.assign({}, c.counters, c.book_anomalies));
  fill($("card-counters"), ["counter", "value"], counters.length ? counters :
       [[s.source === "model" ? "(reference model: no card registers)" : "(none)", ""]]);
  const accRows = s.accounts.map((a) => [a.account, a.name, a.state,
    a.breaker ? "TRIPPED" : "",
    a.kill ? "account" : (r.kill.strategy.includes(a.account) ? "strategy" : ""),
    a.positions.map((p) => p.instrument + ":" + (p.qty > 0 ? "+" : "") + p.qty).join(" ") || "flat",
    a.gross_position + " / " + a.max_position, usd(a.realized), usd(a.unrealized),
    usd(a.exposure), usd(Math.max(0, -(a.realized + a.unrealized))) + " / " + usd(a.daily_loss_limit),
    killButton("kill", "strategy", a.account, true), killButton("release", "strategy", a.account, false)]);
  fill($("accounts"), ["acct", "strategy", "state", "breaker", "kill", "positions",
    "position used / limit", "realized $", "unrealized $", "exposure $", "loss / limit $", "", ""],
    accRows);
  fill($("tape"), ["time", "symbol", "acct", "side", "price", "qty"],
       s.tape.map((t) => [ts(t[0]), (s.books.find((b) => b.locate === t[1]) || {symbol: t[1]}).symbol,
                          t[2], t[3], px(t[4]), t[5]]));
  renderLatency(s.latency);
  $("actions").replaceChildren(...s.actions.map(
    (a) => el("li", new Date(a[0] * 1000).toLocaleTimeString() + "  " + a[1])));
}

function frame() {  // render only the newest snapshot once per animation frame (coalescing)
  if (latest && latest.seq !== rendered) {
    render(latest);
    rendered = latest.seq;
  }
  requestAnimationFrame(frame);
}

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = () => { set("conn", "live"); $("conn").className = "badge ok"; };
  ws.onclose = () => {
    set("conn", "disconnected"); $("conn").className = "badge bad";
    setTimeout(connect, 1000);
  };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (latest && latest.seq !== rendered) pageDrops++;  // the previous one was never drawn
    latest = m; received++; rateCount++;
    const now = performance.now();
    if (now - rateT0 >= 1000) {
      set("ups", (rateCount * 1000 / (now - rateT0)).toFixed(1));
      rateCount = 0; rateT0 = now;
    }
  };
}

window.addEventListener("DOMContentLoaded", () => {
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get("token")) {  // the URL printed at start: #token=... (a fragment never reaches a server)
    token = h.get("token");
    sessionStorage.setItem("console-token", token);
    history.replaceState(null, "", location.pathname);
  }
  $("token").value = token;
  $("token-use").addEventListener("click", () => {
    token = $("token").value.trim();
    sessionStorage.setItem("console-token", token);
    checkToken();
  });
  $("kill-all").addEventListener("click", () => act("/api/kill", {scope: "all", value: 0, engage: true}));
  $("release-all").addEventListener("click", () => act("/api/kill", {scope: "all", value: 0, engage: false}));
  $("clear-stale-all").addEventListener("click", () => act("/api/clear-stale", {instrument: null}));
  checkToken();
  connect();
  requestAnimationFrame(frame);
});
