"""Send each command to the shard of its symbol; request/reply over NATS, or in process.

A shard owns a contiguous range of the subscribed locates (:func:`partition`). Submits go to
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
import struct
import time
from dataclasses import dataclass, field

import numpy as np

from host.cluster.shard import KILL, OK, OP_KILL, OP_MARKET, OP_ORDERS, frame, unframe

__all__ = ["partition", "LocalTransport", "NatsTransport", "Router", "ShardError"]


class ShardError(RuntimeError):
    """A shard refused a request (its message says why)."""


def partition(locates, n: int) -> list[list[int]]:
    """Sorted locates in ``n`` contiguous ranges of (nearly) equal count."""
    locs = sorted(int(x) for x in locates)
    if n < 1:
        raise ValueError("at least one shard")
    if n > len(locs):
        raise ValueError(f"{n} shards for {len(locs)} instruments")
    bounds = [round(i * len(locs) / n) for i in range(n + 1)]
    return [locs[bounds[i]:bounds[i + 1]] for i in range(n)]


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
    """

    def __init__(self, transport, shards: list[list[int]]) -> None:
        self.t = transport
        self.shards = shards
        self.of_locate = {loc: k for k, locs in enumerate(shards) for loc in locs}
        self.of_order: dict[int, int] = {}
        self.req = [0] * len(shards)
        self.requests = 0

    async def call(self, shard: int, op: int, payload: bytes = b"") -> bytes:
        """One request to one shard (next request id); its reply payload."""
        self.req[shard] += 1
        self.requests += 1
        status, rid, out = unframe(await self.t.request(shard, frame(op, self.req[shard],
                                                                      payload)))
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
        await self.broadcast(OP_MARKET, pay)

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
