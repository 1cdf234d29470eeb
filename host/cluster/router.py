"""Send each command to the shard of its symbol; request/reply over NATS, or in process.

A shard owns a contiguous range of the subscribed locates (:func:`partition`, from
:mod:`host.trading.shards`: the one partition the sharded backtest uses too). Submits go to
the shard of their instrument; cancels and replaces to the shard that received the order
(the router remembers order id -> shard); a mass cancel or end of session naming an
instrument to its shard, otherwise to every shard; an instrument kill switch to its shard,
the other scopes to every shard. Each shard gets its commands in the order they came, in one
request per batch; the shards of one batch run concurrently.

Transports: :class:`LocalTransport` (the :class:`host.cluster.shard.ShardCore` objects in this
process: the reference run) and :class:`NatsTransport` (``shard.<k>.cmd`` request/reply).
The NATS transport retries a request (same request id, same bytes) while no primary answers,
so a client rides through a failover: the new primary answers a request it already applied
from the replicated journal with the same reply, and applies one it had not received.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from dataclasses import dataclass, field

import numpy as np

from host.cluster.shard import (
    KILL,
    OK,
    OP_KILL,
    OP_MARKET,
    OP_MARKET_PNL,
    OP_ORDERS,
    ORDERS_DEFER,
    ORDERS_SYNC,
    frame,
    sign,
    unframe,
)
from host.trading.shards import partition, shard_of

DUP_DEPTH = 8  # host.trading.risk.checks.DUP_DEPTH (checked by the tests)

__all__ = ["partition", "LocalTransport", "NatsTransport", "Router", "ShardError"]


class ShardError(RuntimeError):
    """A shard refused a request (its message says why)."""


class LocalTransport:
    """Shards as objects in this process (no network; the reference for the NATS run)."""

    def __init__(self, cores: dict) -> None:
        self.cores = cores

    async def request(self, shard: int, data: bytes) -> bytes:
        return self.cores[shard].handle(data)


@dataclass
class NatsTransport:
    """Request/reply on ``shard.<k>.cmd``; retried until ``deadline_s`` while nobody answers.

    ``outages`` lists ``(shard, request id, seconds from the first failed attempt to the
    answer, time.monotonic() of the answer)`` for every request that needed a retry (a
    failover seen from the client).
    """

    nc: object
    timeout_s: float = 0.25
    deadline_s: float = 30.0
    outages: list = field(default_factory=list)

    async def request(self, shard: int, data: bytes) -> bytes:
        import nats.errors

        t_fail = None
        end = time.monotonic() + self.deadline_s
        while True:
            try:
                msg = await self.nc.request(f"shard.{shard}.cmd", data, timeout=self.timeout_s)
            except (TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError):
                now = time.monotonic()
                if t_fail is None:
                    t_fail = now
                if now > end:
                    raise ShardError(f"shard {shard}: no primary answered for "
                                     f"{self.deadline_s} s") from None
                await asyncio.sleep(0.01)
                continue
            if t_fail is not None:
                now = time.monotonic()
                self.outages.append((shard, unframe(data)[1], now - t_fail, now))
            return msg.data


class Router:
    """Split batches by shard and send them; merge the replies.

    Parameters
    ----------
    transport : LocalTransport or NatsTransport
    shards : list of list of int
        Locates of each shard (:func:`partition`).
    accounts : dict, optional
        ``{account: (max_orders_per_window, rate_window_ns, duplicate_window_ns)}``
        (:meth:`limits`): make the account-wide limits exact across shards (docs/cluster.md,
        "Account-wide limits"). Without it every shard keeps its own account state.
    key : bytes, optional
        Sign every request (the shards' ``--key-file``): only this router reaches them.
    """

    def __init__(self, transport, shards: list[list[int]], accounts: dict | None = None,
                 key: bytes | None = None) -> None:
        self.t = transport
        self.key = key
        self.shards = shards
        self.of_locate = shard_of(shards)
        self.of_order: dict[int, int] = {}
        self.req = [0] * len(shards)
        self.requests = 0
        self.acl = None if accounts is None else {int(a): tuple(int(x) for x in v)
                                                  for a, v in accounts.items()}
        self.split_batches = 0  # batches split where an account switched shards
        self.segments = 0
        if self.acl is not None:
            self.pnl: list[dict] = [{} for _ in shards]   # P&L per account, per shard
            self.rate = {a: [] for a in self.acl}  # forwarded submits/replaces: ts
            self.dup = {a: [] for a in self.acl}   # forwarded submits: ts, loc, side, px, qty
            self.ver = dict.fromkeys(self.acl, 0)
            self.sent: list[dict] = [{} for _ in shards]
            self.acct_of: dict[int, int] = {}

    @staticmethod
    def limits(risk_config) -> dict:
        """The ``accounts`` argument from a :class:`host.trading.risk.RiskConfig`."""
        return {a.account: (a.max_orders_per_window, a.rate_window_ns, a.duplicate_window_ns)
                for a in risk_config.accounts}

    async def call(self, shard: int, op: int, payload: bytes = b"") -> bytes:
        """One request to one shard (next request id); its reply payload."""
        self.req[shard] += 1
        self.requests += 1
        status, rid, out = unframe(await self.t.request(
            shard, sign(self.key, frame(op, self.req[shard], payload))))
        if status != OK or rid != self.req[shard]:
            raise ShardError(f"shard {shard}: {out.decode(errors='replace')}")
        return out

    async def broadcast(self, op: int, payloads) -> list[bytes]:
        """One request per shard (``payloads[k]``, ``None`` = skip), concurrently."""
        ks = [k for k, p in enumerate(payloads) if p is not None]
        res = await asyncio.gather(*(self.call(k, op, payloads[k]) for k in ks))
        out: list = [None] * len(self.shards)
        for k, r in zip(ks, res, strict=True):
            out[k] = r
        return out

    async def market_data(self, records: np.ndarray) -> None:
        """Card records to the shards of their locates (order kept within a shard)."""
        k = np.array([self.of_locate.get(int(x), -1) for x in records["locate"].tolist()],
                     np.int64)
        pay = []
        for s in range(len(self.shards)):
            sel = records[k == s]
            pay.append(sel.tobytes() if len(sel) else None)
        res = await self.broadcast(OP_MARKET if self.acl is None else OP_MARKET_PNL, pay)
        if self.acl is not None:
            for k, r in enumerate(res):
                if r is not None:
                    self.pnl[k] = json.loads(r)

    def _route(self, cmds: np.ndarray) -> np.ndarray:
        """Shard of each command (-1: every shard), vectorised; a batch that cancels or
        replaces an id it also submits goes through the exact command-by-command path."""
        n_sh = len(self.shards)
        if n_sh == 1:
            for oid in cmds["order_id"][cmds["kind"] == 1].tolist():
                self.of_order[oid] = 0
            return np.zeros(len(cmds), np.int64)
        kind = cmds["kind"]
        oid = cmds["order_id"]
        sub = kind == 1
        cr = (kind == 2) | (kind == 3)
        if np.isin(oid[cr], oid[sub]).any():
            return self._route_each(cmds)
        inst = cmds["instrument"].astype(np.int64)
        dest = np.full(len(cmds), -1, np.int64)
        dest[sub] = self._loc_shard(inst[sub])
        self.of_order.update(zip(oid[sub].tolist(), dest[sub].tolist(), strict=True))
        get = self.of_order.get
        dest[cr] = [get(o, 0) for o in oid[cr].tolist()]
        by_inst = (kind >= 4) & ((cmds["flags"] & 2) != 0)
        dest[by_inst] = self._loc_shard(inst[by_inst])
        return dest

    def _loc_shard(self, inst: np.ndarray) -> np.ndarray:
        if not hasattr(self, "_lmap"):
            self._lmap = np.zeros(1 << 16, np.int64)  # unknown instrument -> shard 0
            for loc, k in self.of_locate.items():
                self._lmap[loc] = k
        return self._lmap[np.clip(inst, 0, (1 << 16) - 1)]

    def _route_each(self, cmds: np.ndarray) -> np.ndarray:
        dest = np.full(len(cmds), -1, np.int64)  # -1: every shard
        for i, (kind, oid, inst, flags) in enumerate(zip(
                cmds["kind"].tolist(), cmds["order_id"].tolist(), cmds["instrument"].tolist(),
                cmds["flags"].tolist(), strict=True)):
            if kind == 1:
                d = self.of_locate.get(inst, 0)
                self.of_order[oid] = d
            elif kind in (2, 3):
                d = self.of_order.get(oid, 0)
            elif flags & 2:  # mass cancel / end session by instrument
                d = self.of_locate.get(inst, 0)
            else:
                d = -1
            dest[i] = d
        return dest

    async def process(self, cmds: np.ndarray, strategies: np.ndarray) -> np.ndarray:
        """A ``COMMAND_DTYPE`` batch through the shards; int64 deny reason per command.

        A command sent to every shard reports the first non-zero reason among them.
        """
        dest = self._route(cmds)
        if self.acl is not None:
            return await self._process_exact(cmds, strategies, dest)
        pay, idx = [], []
        for s in range(len(self.shards)):
            sel = np.nonzero((dest == s) | (dest == -1))[0]
            idx.append(sel)
            pay.append(struct.pack("<I", len(sel)) + cmds[sel].tobytes()
                       + np.ascontiguousarray(strategies[sel], np.int64).tobytes()
                       if len(sel) else None)
        res = await self.broadcast(OP_ORDERS, pay)
        reasons = np.zeros(len(cmds), np.int64)
        for s, sel in enumerate(idx):
            if res[s] is not None:
                r = np.frombuffer(res[s], np.int64)
                cur = reasons[sel]
                reasons[sel] = np.where(cur != 0, cur, r)
        return reasons

    async def kill_switch(self, engage: bool, scope: int, value: int, ts: int) -> None:
        """Engage/release a kill switch where it applies (instrument: its shard)."""
        from host.trading.risk import KillScope

        p = KILL.pack(int(engage), int(scope), int(value), int(ts))
        if KillScope(scope) is KillScope.INSTRUMENT:
            await self.call(self.of_locate[int(value)], OP_KILL, p)
        else:
            await self.broadcast(OP_KILL, [p] * len(self.shards))

    # ------------------------------------------------------------ account-wide limits, exact

    def _accounts(self, cmds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Account of each command (replaces: of their order) and the mask of the commands
        that enter the account's rate and duplicate windows when they pass."""
        kind = cmds["kind"]
        sub, rep = kind == 1, kind == 3
        acct = cmds["account"].astype(np.int64)
        self.acct_of.update(zip(cmds["order_id"][sub].tolist(), acct[sub].tolist(),
                                strict=True))
        if rep.any():
            get = self.acct_of.get
            acct[rep] = [get(o, -1) for o in cmds["order_id"][rep].tolist()]
        return acct, sub | rep

    def _segments(self, cmds, dest, acct, push) -> list[tuple[int, int]]:
        """Cut the batch where an account that could reach its rate limit (or fill its
        duplicate window) in this batch switches shards; one segment if none can."""
        n = len(cmds)
        if len(self.shards) == 1 or not n:
            return [(0, n)]
        tmin = int(cmds["ts"].min())
        danger = []
        for a in np.unique(acct[push]).tolist():
            if a not in self.acl:
                continue
            m = push & (acct == a)
            if len(np.unique(dest[m])) < 2:
                continue
            nr, win, dwin = self.acl[a]
            if nr > 0 and sum(t > tmin - win for t in self.rate[a]) + int(m.sum()) > nr:
                danger.append(a)
            elif dwin > 0 and (sum(e[0] > tmin - dwin for e in self.dup[a])
                               + int((m & (cmds["kind"] == 1)).sum())) > DUP_DEPTH:
                danger.append(a)
        if not danger:
            return [(0, n)]
        segs, lo, cur = [], 0, -1
        for i in np.nonzero(push & np.isin(acct, danger))[0].tolist():
            d = int(dest[i])
            if cur >= 0 and d != cur:
                segs.append((lo, i))
                lo = i
            cur = d
        segs.append((lo, n))
        return segs

    def _sync_for(self, s: int, tmin: int, pnl: dict) -> bytes:
        """What shard ``s`` must install before checking: the other shards' P&L and the
        account windows that changed since it last got them (entries that can still matter
        for commands at or after ``tmin`` only)."""
        ring, dup = {}, {}
        for a, (nr, win, dwin) in self.acl.items():
            if self.sent[s].get(a) == self.ver[a]:
                continue
            self.sent[s][a] = self.ver[a]
            if nr > 0:
                ring[a] = [t for t in self.rate[a] if t > tmin - win]
            if dwin > 0:
                dup[a] = [e for e in self.dup[a] if e[0] > tmin - dwin]
        return json.dumps({"pnl": pnl, "ring": ring, "dup": dup}).encode()

    def _record(self, cmds, acct, push, reasons) -> None:
        """The windows of the accounts, in global command order, after a part of a batch."""
        ok = np.nonzero(push & (reasons == 0))[0]
        for ts, a, k, inst, side, px, qty in zip(
                cmds["ts"][ok].tolist(), acct[ok].tolist(),
                cmds["kind"][ok].tolist(), cmds["instrument"][ok].tolist(),
                cmds["side"][ok].tolist(), cmds["price"][ok].tolist(),
                cmds["qty"][ok].tolist(), strict=True):
            lim = self.acl.get(a)
            if lim is None:
                continue
            if lim[0] > 0:
                r = self.rate[a]
                r.append(ts)
                if len(r) > lim[0]:
                    del r[0]
            if k == 1:
                d = self.dup[a]
                d.append([ts, inst, side, px, qty])
                if len(d) > DUP_DEPTH:
                    del d[0]
            self.ver[a] += 1

    async def _process_exact(self, cmds, strategies, dest) -> np.ndarray:
        acct, push = self._accounts(cmds)
        segs = self._segments(cmds, dest, acct, push)
        n_sh = len(self.shards)
        self.segments += len(segs)
        self.split_batches += len(segs) > 1
        sels, last = [], [-1] * n_sh
        for si, (lo, hi) in enumerate(segs):
            d = dest[lo:hi]
            sels.append([np.nonzero((d == s) | (d == -1))[0] + lo for s in range(n_sh)])
            for s in range(n_sh):
                if len(sels[-1][s]):
                    last[s] = si
        tmin = int(cmds["ts"].min()) if len(cmds) else 0
        # the other shards' P&L at the start of the batch (the single-process engine checks
        # a whole batch against the P&L before its fills)
        accts = [str(a) for a in self.acl]
        pnl = [{a: sum(self.pnl[j].get(a, 0) for j in range(n_sh) if j != s) for a in accts}
               for s in range(n_sh)]
        strat = np.ascontiguousarray(strategies, np.int64)
        reasons = np.zeros(len(cmds), np.int64)
        for si, (lo, hi) in enumerate(segs):
            pay = []
            for s in range(n_sh):
                sel = sels[si][s]
                if not len(sel):
                    pay.append(None)
                    continue
                flags = ORDERS_SYNC | (ORDERS_DEFER if si < last[s] else 0)
                sync = self._sync_for(s, tmin, pnl[s])
                pay.append(struct.pack("<I", len(sel)) + cmds[sel].tobytes()
                           + strat[sel].tobytes() + struct.pack("<II", flags, len(sync)) + sync)
            res = await self.broadcast(OP_ORDERS, pay)
            for s in range(n_sh):
                if res[s] is None:
                    continue
                sel = sels[si][s]
                nb = 8 * len(sel)
                r = np.frombuffer(res[s][:nb], np.int64)
                cur = reasons[sel]
                reasons[sel] = np.where(cur != 0, cur, r)
                self.pnl[s] = json.loads(res[s][nb:])
            self._record(cmds[lo:hi], acct[lo:hi], push[lo:hi], reasons[lo:hi])
        return reasons
