"""One shard: risk + matching + journals for a range of symbols, primary or hot standby.

:class:`ShardCore` is the deterministic state machine: a request (bytes) in, a reply (bytes)
out, the same replies and the same journals for the same requests. It holds a
:class:`host.trading.risk.RiskEngine` in front of a
:class:`host.trading.journal.JournaledEngine` (venue journal) with a
:class:`host.trading.risk.RiskJournal`, exactly as :func:`host.trading.session.run_session`
builds them, for the instruments of the shard only.

:func:`serve` runs one replica of a shard in its own process (``python -m
host.cluster.shard``). Every request a primary accepts is first appended to the shard's
*replicated input journal*, the JetStream stream ``SHARDLOG_<k>`` (subject ``shardlog.<k>``,
stream sequence = request id), then applied, then answered: a reply means the request is in
the stream. A hot standby applies the same stream as it grows (its own journals, its own
engine, in step) and takes over when the primary's heartbeat stops. See ``docs/cluster.md``.

SETUP keys: ``shard``, ``locates``, ``instruments`` (``[id, tick, min_price, max_price]``
each), ``max_orders``, ``config`` (a risk TOML path, default the session's built-in
configuration), ``accounts`` (the gateway's), ``open_accounts`` (benches: accounts 1..n with
wide limits instead of a configuration).

Request frame: 16-byte header ``<B7xQ`` (op, request id) + payload; reply frame: ``<B7xQ``
(status 0 ok / 1 error, request id) + payload. Ops: :data:`OP_SETUP` (JSON), :data:`OP_MARKET`
(:data:`hw.bbo_record.DTYPE` records), :data:`OP_ORDERS` (u32 n, n ``COMMAND_DTYPE`` rows,
n int64 strategies; reply: n int64 deny reasons), :data:`OP_KILL` (``<BBxxxxxxqq``: engage,
scope, value, ts), :data:`OP_FINISH` (close journals; reply: JSON summary with the journal
digests).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from pathlib import Path

import numpy as np

__all__ = ["OP_SETUP", "OP_MARKET", "OP_ORDERS", "OP_KILL", "OP_FINISH", "OP_EPOCH",
           "OP_MARKET_PNL", "ORDERS_DEFER", "ORDERS_SYNC", "sign", "verify",
           "ShardCore", "frame", "unframe", "journal_digest", "serve", "warm_up", "log_stream",
           "main"]

OP_SETUP, OP_MARKET, OP_ORDERS, OP_KILL, OP_FINISH = 1, 2, 3, 4, 5
OP_MARKET_PNL = 6
"""As :data:`OP_MARKET`; the reply is the shard's P&L per account (JSON ``{account: pnl}``)."""
ORDERS_DEFER, ORDERS_SYNC = 1, 2
"""Flags of an :data:`OP_ORDERS` trailer: check only, forward with the next non-deferred
request of the batch (a batch split where an account's orders switch shards); the request
carries account state of the other shards and the reply the shard's P&L per account."""
OP_EPOCH = 9
"""Stream entry of a replica becoming primary (fencing); not a request, never applied."""
HEADER = struct.Struct("<B7xQ")
KILL = struct.Struct("<BBxxxxxxqq")
OK, ERROR = 0, 1


MAC_SIZE = 16


def sign(key: bytes | None, data: bytes) -> bytes:
    """``data`` + its 16-byte HMAC-SHA256 under ``key`` (unchanged without a key)."""
    if not key:
        return data
    import hmac

    return data + hmac.new(key, data, "sha256").digest()[:MAC_SIZE]


def verify(key: bytes | None, data: bytes) -> bytes | None:
    """The frame of a signed ``data`` if its MAC is right, else None (``data`` itself
    without a key)."""
    if not key:
        return data
    import hmac

    body, mac = data[:-MAC_SIZE], data[-MAC_SIZE:]
    if len(data) <= MAC_SIZE or not hmac.compare_digest(
            mac, hmac.new(key, body, "sha256").digest()[:MAC_SIZE]):
        return None
    return body


def frame(op: int, req_id: int, payload: bytes = b"") -> bytes:
    """A request (or reply: ``op`` = status) frame."""
    return HEADER.pack(op, req_id) + payload


def unframe(data: bytes) -> tuple[int, int, bytes]:
    """``(op or status, request id, payload)`` of a frame."""
    if len(data) < HEADER.size:
        raise ValueError("short frame")
    op, rid = HEADER.unpack_from(data)
    return op, rid, data[HEADER.size:]


def journal_digest(path) -> str:
    """blake2b of a journal's command and event payloads (not of its wall/monotonic stamps,
    which differ between two processes writing the same records)."""
    from host.trading.journal import read_journal

    j = read_journal(path)
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(j.commands).tobytes())
    h.update(np.ascontiguousarray(j.events).tobytes())
    return h.hexdigest()


def log_stream(shard: int) -> tuple[str, str]:
    """``(stream, subject)`` of a shard's replicated input journal."""
    return f"SHARDLOG_{shard}", f"shardlog.{shard}"


class ShardCore:
    """The deterministic part of a shard (no I/O but its two journals).

    Parameters
    ----------
    out_dir : path
        Where this replica writes ``venue.journal`` and ``risk.journal``.
    """

    def __init__(self, out_dir) -> None:
        self.out = Path(out_dir)
        self.applied = 0           # last request id applied
        self.last_reply = b""      # its reply (a retried request gets it again)
        self.risk = None
        self.venue = None
        self.rjournal = None
        self.finished: dict | None = None
        self.shard = -1
        self._pend: list = []      # deferred checks of the current batch (ORDERS_DEFER)

    # -- request dispatch
    def handle(self, data: bytes) -> bytes:
        """Apply one request frame in order; the reply frame.

        A request id equal to the last applied one returns the same reply again (a client
        retrying through a failover never applies a command twice); any other id than the
        next is refused.
        """
        try:
            op, rid, payload = unframe(data)
        except ValueError as e:
            return frame(ERROR, 0, str(e).encode())
        if rid == self.applied and rid:
            return self.last_reply
        if rid != self.applied + 1:
            return frame(ERROR, rid, f"request {rid} out of order (applied {self.applied})"
                         .encode())
        try:
            out = self._apply(op, payload)
            reply = frame(OK, rid, out)
        except Exception as e:  # a bad request is answered, never kills the shard
            reply = frame(ERROR, rid, f"{type(e).__name__}: {e}".encode())
        self.applied = rid
        self.last_reply = reply
        return reply

    def _apply(self, op: int, p: bytes) -> bytes:
        if op == OP_SETUP:
            return self._setup(json.loads(p))
        if self.risk is None or self.finished is not None:
            raise RuntimeError("shard not set up" if self.risk is None else "shard finished")
        if op != OP_ORDERS and self._pend:
            self._commit()  # a batch left deferred (a client gone): forward it first
        if op in (OP_MARKET, OP_MARKET_PNL):
            from hw import bbo_record

            self.risk.on_market_data(np.frombuffer(p, bbo_record.DTYPE))
            return json.dumps(self._pnl()).encode() if op == OP_MARKET_PNL else b""
        if op == OP_ORDERS:
            from host.trading.matching import COMMAND_DTYPE

            (n,) = struct.unpack_from("<I", p)
            cmds = np.frombuffer(p, COMMAND_DTYPE, n, 4).copy()
            off = 4 + n * COMMAND_DTYPE.itemsize
            strat = np.frombuffer(p, np.int64, n, off).copy()
            off += 8 * n
            flags, sync = 0, None
            if len(p) > off:  # trailer: flags, account state of the other shards
                flags, ln = struct.unpack_from("<II", p, off)
                sync = json.loads(p[off + 8:off + 8 + ln]) if ln else None
            if sync:
                self._sync(sync)
            if flags & ORDERS_DEFER or self._pend:
                reasons = self._check(cmds, strat)
                if not flags & ORDERS_DEFER:
                    self._commit()
            else:
                reasons = self.gateway.process(cmds, strat).reasons
            out = np.ascontiguousarray(reasons, np.int64).tobytes()
            return out + json.dumps(self._pnl()).encode() if flags & ORDERS_SYNC else out
        if op == OP_KILL:
            from host.trading.risk import KillScope

            engage, scope, value, ts = KILL.unpack(p)
            f = self.risk.engage_kill_switch if engage else self.risk.release_kill_switch
            f(KillScope(scope), value, ts=ts)
            return b""
        if op == OP_FINISH:
            return json.dumps(self._finish()).encode()
        raise ValueError(f"unknown op {op}")

    def _setup(self, s: dict) -> bytes:
        from host.trading.journal import DurabilityPolicy, JournalConfig, JournaledEngine
        from host.trading.journal.journal import ACK_SUFFIX
        from host.trading.matching import EngineConfig, InstrumentConfig
        from host.trading.risk import RiskEngine, RiskJournal, load_config
        from host.trading.session import default_risk_config

        if self.risk is not None:
            raise RuntimeError("shard already set up")
        self.shard = int(s["shard"])
        locs = [int(x) for x in s["locates"]]
        inst = tuple(InstrumentConfig(int(i), tick=int(t), min_price=int(lo), max_price=int(hi))
                     for i, t, lo, hi in s["instruments"])
        ticks = {int(i): int(t) for i, t, _, _ in s["instruments"]}
        ecfg = EngineConfig(instruments=inst, max_orders=int(s["max_orders"]))
        if s.get("open_accounts"):  # benches: n accounts with wide limits (bench_risk's)
            from host.trading.risk import AccountConfig, RiskConfig

            n = int(s["open_accounts"])
            base = RiskConfig(accounts=tuple(
                AccountConfig(a, max_position=10**9, max_orders_per_window=1_000_000)
                for a in range(1, n + 1)), max_open_orders=1 << 18)
            s["accounts"] = list(range(1, n + 1))
        else:
            base = load_config(s["config"]) if s.get("config") else default_risk_config()
        rcfg = base.with_instruments(locs, ticks)
        self.out.mkdir(parents=True, exist_ok=True)
        vj, rj = self.out / "venue.journal", self.out / "risk.journal"
        for q in (vj, rj):
            for f in (q, q.with_name(q.name + ACK_SUFFIX)):
                if f.exists():
                    f.unlink()
        jc = JournalConfig(policy=DurabilityPolicy.FSYNC_INTERVAL, fsync_interval_ns=50_000_000)
        self.venue, _ = JournaledEngine.open(vj, config=ecfg, journal_config=jc)
        self.rjournal = RiskJournal(rj, jc)
        self.risk = RiskEngine(rcfg, self.venue, journal=self.rjournal)
        self.gateway = self.risk.gateway(self.gateway_accounts(s))
        self.locates = locs
        self.rcfg = rcfg
        from host.trading.risk import checks as K

        mask = np.zeros(self.risk.A.shape[0], bool)
        for a in self.gateway_accounts(s):
            mask[self.risk._a(a)] = True
        self._principal = K.principal(K.ROLE_ACCOUNT, mask, self.risk._owned)
        self._loss = {a.account: int(a.daily_loss_limit) for a in rcfg.accounts}
        return b""

    @staticmethod
    def gateway_accounts(s: dict) -> tuple:
        from host.trading.session import BURST, LOSER, LP, MAKER, TAKER

        return tuple(s.get("accounts") or (LP, MAKER, TAKER, BURST, LOSER))

    # -- account-wide limits across shards (docs/cluster.md, "Account-wide limits")
    def _pnl(self) -> dict:
        """Realized + unrealized P&L of every account on this shard's instruments."""
        from host.trading.risk import checks as K

        A = self.risk.A
        return {str(a.account): int(A[self.risk._a(a.account), K.A_REALIZED]
                                    + A[self.risk._a(a.account), K.A_UNREAL])
                for a in self.rcfg.accounts}

    def _sync(self, sync: dict) -> None:
        """Install the account state the router merged from every shard: the other shards'
        P&L (``pnl``: the daily loss check sees the account's total), the account's last
        forwarded orders in global order (``ring``: timestamps, the message-rate window;
        ``dup``: ``[ts, locate, side, price, qty]``, the duplicate window, whose depth also
        counts other instruments' orders)."""
        from host.trading.risk import checks as K

        r = self.risk
        A, NMAP = r.A, r.NMAP
        for acct, f in sync.get("pnl", {}).items():
            A[r._a(int(acct)), K.A_LOSS_LIMIT] = self._loss[int(acct)] + int(f)
        for acct, ts in sync.get("ring", {}).items():
            a = r._a(int(acct))
            n = int(A[a, K.A_RATE_N])
            if n <= 0:
                continue
            t = ts[-n:]
            r.RING[a, :] = 0
            r.RING[a, :len(t)] = t
            A[a, K.A_RING_HEAD] = len(t) % n
            A[a, K.A_RING_CNT] = len(t)
        for acct, ents in sync.get("dup", {}).items():
            a = r._a(int(acct))
            e = ents[-K.DUP_DEPTH:]
            r.DUP[a] = 0
            for d, (ts, loc, side, px, qty) in enumerate(e):
                i = int(NMAP[loc]) if 0 <= loc < len(NMAP) else -1
                r.DUP[a, d] = (ts, i, side, px, qty)  # another shard's instrument: -1
            A[a, K.A_DUP_HEAD] = len(e) % K.DUP_DEPTH

    def _check(self, cmds: np.ndarray, strat: np.ndarray) -> np.ndarray:
        """The risk checks of ``RiskEngine.process`` without forwarding (kept for
        :meth:`_commit`): check, then forward, exactly as one ``process`` call of the whole
        batch would, with other shards' account state installed between the parts."""
        from host.trading.risk import checks as K
        from host.trading.risk.engine import _validated

        r = self.risk
        c, S = _validated(cmds, strat)
        PR, PS = K.thawed(self._principal)
        C = c.view(np.int64).reshape(-1, 8)
        m = C.shape[0]
        reasons = np.empty(m, np.int64)
        out = np.empty((m, 8), np.int64)
        hold = np.empty(m, np.int64)
        n, nh = K.check_batch(C, r._nostrat if S is None else S, r.G, r.A, r.N, r.P, r.SK,
                              r.RING, r.DUP, r.H, r.AMAP, r.NMAP, PR, PS, reasons, out, hold)
        self._pend.append((c, S, reasons, out[:n].copy(), hold[:nh].copy()))
        return reasons

    def _commit(self) -> None:
        """Forward what the deferred checks passed (``RiskEngine._run``'s second half and
        ``_process``'s post-trade part, over the concatenated batch)."""
        from host.trading.matching.types import COMMAND_DTYPE, CommandKind, MassCancelFlag
        from host.trading.risk import DenyReason
        from host.trading.risk import checks as K

        r = self.risk
        parts, self._pend = self._pend, []
        off, holds = 0, []
        for c, _, _, _, h in parts:
            holds.append(h + (off << 2))
            off += len(c)
        c = np.concatenate([x[0] for x in parts])
        S = None if parts[0][1] is None else np.concatenate([x[1] for x in parts])
        reasons = np.concatenate([x[2] for x in parts])
        out = np.concatenate([x[3] for x in parts])
        hold = np.concatenate(holds)
        prev = r.A[:, K.A_TRIPPED].copy()
        if (reasons != 0).any():
            r.denied_by_reason += np.bincount(reasons, minlength=len(DenyReason))[
                : len(DenyReason)]
            r.denied_by_reason[0] = 0
            if r.journal is not None:
                bad = reasons != 0
                r.journal.append_denied(c[bad], reasons[bad].astype(np.uint8))
        if len(hold):
            r._hold(c, S, hold)
        fwd = np.ascontiguousarray(out).view(COMMAND_DTYPE).reshape(-1)
        if S is not None and r.journal is not None and len(fwd):
            r._journal_strategies(c, S, reasons)
        r._copy_kw = {}
        ev = r._forward(fwd) if len(fwd) else None
        if len(fwd) and r._held:
            for row in fwd[fwd["kind"] >= CommandKind.MASS_CANCEL]:
                by = int(row["flags"])
                inst = int(row["instrument"]) if by & MassCancelFlag.BY_INSTRUMENT else None
                if row["kind"] == CommandKind.MASS_CANCEL:
                    acct = int(row["account"]) if by & MassCancelFlag.BY_ACCOUNT else None
                    r._cancel_held(int(row["ts"]), account=acct, instrument=inst)
                elif row["kind"] == CommandKind.END_SESSION:
                    r._cancel_held(int(row["ts"]), instrument=inst, day_only=True)
        del ev
        revs: list = r._drain()
        r._after(int(c["ts"][-1]) if len(c) else 0, prev, revs)
        r._drain()
        if r.journal is not None:
            r.journal.commit()

    def _finish(self) -> dict:
        from host.trading.journal import read_journal
        from host.trading.matching import EventKind

        self.venue.close()
        self.rjournal.close()
        vj, rj = self.out / "venue.journal", self.out / "risk.journal"
        ev = read_journal(vj).events
        risk_events: dict[str, int] = {}
        for e in self.risk.risk_events:
            k = type(e).__name__
            risk_events[k] = risk_events.get(k, 0) + 1
        accounts = {}
        for a in self.rcfg.accounts:
            s = self.risk.account(a.account)
            accounts[a.account] = {
                "state": s.state.name, "realized": int(s.realized),
                "unrealized": int(s.unrealized), "exposure": int(s.exposure),
                "positions": {loc: int(self.risk.position(a.account, loc).qty)
                              for loc in self.locates}}
        self.finished = {
            "shard": self.shard, "locates": self.locates, "forwarded": int(self.risk.forwarded),
            "denied": self.risk.denied_counts(), "risk_events": risk_events,
            "trades": int(np.count_nonzero((ev["kind"] == EventKind.FILLED)
                                           & ((ev["flags"] & 4) == 0))),
            "accounts": accounts, "venue_digest": journal_digest(vj),
            "risk_digest": journal_digest(rj), "venue_journal": str(vj),
            "risk_journal": str(rj), "requests": self.applied + 1}
        return self.finished

    def close(self) -> None:
        """Close the journals if the shard was not finished (a replica stopping)."""
        if self.risk is not None and self.finished is None:
            self.venue.close()
            self.rjournal.close()


# ---------------------------------------------------------------- one replica, one process


class _Checked(ShardCore):
    def handle(self, data: bytes) -> bytes:
        out = super().handle(data)
        if unframe(out)[0] != OK:
            raise RuntimeError(f"warm-up request failed: {unframe(out)[2]!r}")
        return out


def warm_up() -> None:
    """Load every compiled kernel a shard uses (numba's on-disk cache) before serving: a
    replica that blocks for seconds on its first request would miss its heartbeats."""
    import tempfile

    from host.trading.matching import COMMAND_DTYPE
    from hw import bbo_record

    with tempfile.TemporaryDirectory() as d:
        c = _Checked(d)
        c.handle(frame(OP_SETUP, 1, json.dumps({
            "shard": 0, "locates": [1], "max_orders": 1024,
            "instruments": [[1, 100, 100, 2_000_000]]}).encode()))
        r = np.zeros(2, bbo_record.DTYPE)
        r["locate"], r["bid_px"], r["ask_px"], r["flags"] = 1, 100_000, 100_200, 6
        c.handle(frame(OP_MARKET, 2, r.tobytes()))
        cmd = np.zeros(2, COMMAND_DTYPE)
        cmd["kind"], cmd["order_id"], cmd["instrument"], cmd["account"] = 1, [7, 8], 1, 1
        cmd["side"], cmd["qty"], cmd["price"] = [1, 2], 100, 100_100
        cmd["order_type"], cmd["tif"], cmd["ts"] = 1, 1, [1, 2]
        c.handle(frame(OP_ORDERS, 3, struct.pack("<I", 2) + cmd.tobytes()
                       + np.ones(2, np.int64).tobytes()))
        c.handle(frame(OP_KILL, 4, KILL.pack(1, 3, 1, 3)))  # instrument kill switch, release
        c.handle(frame(OP_KILL, 5, KILL.pack(0, 3, 1, 4)))
        c.handle(frame(OP_FINISH, 6))


async def serve(url: str, shard: int, out_dir, *, role: str = "primary",
                heartbeat_s: float = 0.05, takeover_s: float = 0.5, replicas: int = 1,
                alone_takeover: bool = False, key: bytes | None = None, log=print) -> int:
    """Run one replica of ``shard`` until SIGTERM/SIGINT (returns 0) or fenced (returns 3).

    Parameters
    ----------
    url : str
        NATS server.
    role : {"primary", "standby"}
        Both first apply the replicated input journal from its start. A primary then serves
        ``shard.<k>.cmd``; a standby keeps applying the stream and takes over when no primary
        heartbeat (``cluster.hb.<k>``) came for ``takeover_s`` after it had seen one.
    replicas : int
        JetStream replicas of the shard's log stream when this replica creates it (3 on a
        three-server NATS cluster: the log survives the loss of one server).
    alone_takeover : bool
        A standby that has heard no primary at all for ``takeover_s`` after catching up takes
        over (the supervisor restarts dead replicas as standbys with this: a shard whose only
        replica died must come back). Fencing still holds if a primary was merely silent.
    key : bytes, optional
        Requests must carry an HMAC under this key (:func:`sign`; the router's, ``cluster
        up`` writes ``DIR/cluster.key``): an unsigned or forged request is refused before it
        reaches the log, and a log entry that is not signed (published to the log subject
        around the primary) is skipped by every replica. Without a key anyone who may
        publish on the NATS server reaches the shards.

    Notes
    -----
    Fencing: a replica becoming primary first appends an *epoch* entry (:data:`OP_EPOCH`) to
    the stream with ``Nats-Expected-Last-Sequence`` = the last entry it applied (retrying
    after applying whatever a still-running old primary appended meanwhile). From then on
    the old primary's appends fail their expected-sequence check, so it steps down (exit
    status 3) without answering: only one replica's replies ever correspond to the stream.
    Requests are applied in a worker thread so heartbeats keep flowing during a long batch.
    """
    import asyncio
    import signal

    import nats.errors
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
    from nats.js.errors import APIError

    core = ShardCore(out_dir)
    stream, subject = log_stream(shard)
    from host.cluster.client import connect

    nc = await connect(url, keep_trying=True)
    js = nc.jetstream(timeout=5)
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=[subject],
                                         storage=StorageType.FILE, duplicate_window=120.0,
                                         num_replicas=replicas))
    except APIError:
        pass  # exists (another replica made it)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    state = {"role": "catchup", "last_primary": 0.0, "seen_primary": False, "fenced": False,
             "takeover_s": None, "log_seq": 0, "checking": False, "inflight": False}
    me = os.getpid()

    async def on_hb(msg):
        try:
            hb = json.loads(msg.data)
        except ValueError:
            return
        if hb.get("role") == "primary" and hb.get("pid") != me:
            state["last_primary"] = time.monotonic()
            state["seen_primary"] = True
            if state["role"] == "primary" and not state["checking"]:
                # another replica says it is primary: if it appended past us, we were fenced
                # (e.g. this process was paused longer than the takeover time)
                state["checking"] = True
                asyncio.get_running_loop().create_task(check_fenced())

    async def check_fenced():
        try:
            if state["inflight"]:
                return
            last = (await js.stream_info(stream)).state.last_seq
            if not state["inflight"] and last > state["log_seq"]:
                log(f"shard {shard}: fenced (the log is at {last}, this replica at "
                    f"{state['log_seq']}); stepping down")
                state["fenced"] = True
                stop.set()
        except Exception:  # no answer now: the next foreign heartbeat checks again
            pass
        finally:
            state["checking"] = False

    await nc.subscribe(f"cluster.hb.{shard}", cb=on_hb)

    async def heartbeat():
        while not stop.is_set():
            try:
                await nc.publish(f"cluster.hb.{shard}", json.dumps({
                    "shard": shard, "role": state["role"], "pid": me, "applied": core.applied,
                    "log_seq": state["log_seq"], "takeover_s": state["takeover_s"],
                    "dir": str(out_dir)}).encode())
            except Exception:  # reconnecting: the next beat goes out
                pass
            await asyncio.sleep(heartbeat_s)

    hb_task = asyncio.create_task(heartbeat())
    async def subscribe():
        # an ephemeral pull consumer from the next entry this replica needs (recreated if the
        # server dropped it, e.g. after a server restart)
        return await js.pull_subscribe(subject, stream=stream, config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=state["log_seq"] + 1,
            ack_policy=AckPolicy.NONE, inactive_threshold=3600.0))

    subs = [await subscribe()]

    async def apply_entry(seq: int, data: bytes) -> None:
        if seq != state["log_seq"] + 1:
            raise RuntimeError(f"shard {shard}: log jumped from {state['log_seq']} to {seq}")
        state["log_seq"] = seq
        if data[:1] != bytes([OP_EPOCH]):
            body = verify(key, data)
            if body is None:  # not the router's: skipped by every replica alike
                state["forged"] = state.get("forged", 0) + 1
                log(f"shard {shard}: log entry {seq} not signed by the router; skipped")
                return
            await asyncio.to_thread(core.handle, body)

    async def follow(timeout: float) -> int:
        """Apply what the stream holds past the last applied entry; entries applied."""
        try:
            msgs = await subs[0].fetch(256, timeout=timeout)
        except (TimeoutError, nats.errors.TimeoutError):
            return 0  # nothing new
        except Exception:  # the consumer is gone (server restart): a new one, from here on
            try:
                await subs[0].unsubscribe()
            except Exception:
                pass
            try:
                subs[0] = await subscribe()
            except Exception:
                await asyncio.sleep(0.1)
            return 0
        n = 0
        for m in msgs:
            seq = m.metadata.sequence.stream
            if seq > state["log_seq"]:
                await apply_entry(seq, m.data)
                n += 1
        return n

    async def drain() -> None:
        while True:
            last = (await js.stream_info(stream)).state.last_seq
            if state["log_seq"] >= last:
                return
            await follow(0.2)

    await drain()
    if role == "standby":
        state["role"] = "standby"
        log(f"shard {shard}: standby, applied {core.applied}")
        t_ready = time.monotonic()
        while not stop.is_set():
            await follow(0.05)
            if state["seen_primary"] and time.monotonic() - state["last_primary"] > takeover_s:
                break
            if (alone_takeover and not state["seen_primary"]
                    and time.monotonic() - t_ready > takeover_s):
                log(f"shard {shard}: no primary heard for {takeover_s:.3f} s; taking over")
                break
        else:
            return await _shutdown(nc, core, hb_task, subs[0], 0)
    t0 = state["last_primary"] if state["seen_primary"] else time.monotonic()
    while True:  # fence: our epoch entry must directly follow what we applied
        await drain()
        try:
            ack = await js.publish(subject, frame(OP_EPOCH, 0, str(me).encode()), headers={
                "Nats-Expected-Last-Sequence": str(state["log_seq"])})
        except APIError:
            continue  # the old primary appended meanwhile: apply it, try again
        await apply_entry(ack.seq, frame(OP_EPOCH, 0))
        break
    if state["seen_primary"]:
        state["takeover_s"] = time.monotonic() - t0
    state["role"] = "primary"
    await subs[0].unsubscribe()
    log(f"shard {shard}: primary, applied {core.applied}"
        + (f", took over {state['takeover_s']:.3f} s after the last primary heartbeat"
           if state["takeover_s"] is not None else ""))

    async def on_cmd(msg):
        data = msg.data
        body = verify(key, data)
        try:
            _, rid, _ = unframe(data if body is None else body)
        except ValueError:
            await msg.respond(frame(ERROR, 0, b"short frame"))
            return
        if body is None:
            await msg.respond(frame(ERROR, rid, b"request not signed by the router's key"))
            return
        if state["fenced"]:
            return
        if rid == core.applied + 1:
            state["inflight"] = True
            try:  # the request goes into the replicated journal before it is applied
                ack = await js.publish(subject, data, headers={
                    "Nats-Expected-Last-Sequence": str(state["log_seq"])})
            except Exception as e:
                # another replica appended (it took over: wrong last sequence), or the append's
                # fate is unknown (timeout): this replica can no longer vouch that its state
                # is the log's, so it must not answer again; a standby takes over from the log
                log(f"shard {shard}: fenced or log append failed ({type(e).__name__}: {e}); "
                    "stepping down")
                state["fenced"] = True
                stop.set()
                return
            finally:
                state["inflight"] = False
            state["log_seq"] = ack.seq
        await msg.respond(await asyncio.to_thread(core.handle, body))

    await nc.subscribe(f"shard.{shard}.cmd", queue="primary", cb=on_cmd)
    await stop.wait()
    return await _shutdown(nc, core, hb_task, None, 3 if state["fenced"] else 0)


async def _shutdown(nc, core, hb_task, sub, code: int) -> int:
    import asyncio

    hb_task.cancel()
    try:
        if sub is not None:
            await sub.unsubscribe()
        await asyncio.wait_for(nc.close(), 2)
    except BaseException:  # the server may be gone already
        pass
    core.close()
    return code


def main(argv=None) -> int:
    """``python -m host.cluster.shard --nats URL --shard K --dir DIR [--role standby]``."""
    import argparse
    import asyncio

    p = argparse.ArgumentParser(prog="python -m host.cluster.shard")
    p.add_argument("--nats", required=True)
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--dir", required=True, help="this replica's journal folder")
    p.add_argument("--role", choices=("primary", "standby"), default="primary")
    p.add_argument("--heartbeat-ms", type=float, default=50)
    p.add_argument("--takeover-ms", type=float, default=500)
    p.add_argument("--replicas", type=int, default=1,
                   help="JetStream replicas of the shard's log (3 on a 3-server cluster)")
    p.add_argument("--no-warm-up", action="store_true")
    p.add_argument("--key-file", help="requests must be signed with this key (the router's)")
    p.add_argument("--alone-takeover", action="store_true",
                   help="a standby that hears no primary at all takes over (restarts)")
    a = p.parse_args(argv)
    if not a.no_warm_up:
        warm_up()
    return asyncio.run(serve(a.nats, a.shard, a.dir, role=a.role,
                             heartbeat_s=a.heartbeat_ms / 1000, takeover_s=a.takeover_ms / 1000,
                             replicas=a.replicas, alone_takeover=a.alone_takeover,
                             key=Path(a.key_file).read_bytes() if a.key_file else None,
                             log=lambda s: print(s, flush=True)))


if __name__ == "__main__":
    raise SystemExit(main())
