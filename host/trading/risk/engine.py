"""The risk engine: the only path from order sources to the matching engine.

:class:`RiskEngine` owns the venue (a :class:`host.trading.matching.MatchingEngine` or a
:class:`host.trading.journal.JournaledEngine`) privately: order sources get the risk engine (or its
:meth:`RiskEngine.gateway`), never the venue. Every command goes through the compiled
pre-trade checks (:mod:`host.trading.risk.checks`); a denied one becomes an :class:`OrderDenied`
event (journaled in the risk journal) and never reaches the venue. Every venue event flows back
through the post-trade kernel (open orders, positions, P&L), and every card BBO record through
:meth:`RiskEngine.on_market_data` (reference prices, stale flags, marks).

Two entry points share one state:

* :meth:`RiskEngine.submit` -- one command object in, a list of event objects out;
* :meth:`RiskEngine.process` -- a ``COMMAND_DTYPE`` array in, checked and matched in compiled
  calls (:class:`BatchResult` out). Within a batch the checks run before the batch is matched:
  position limits stay exact (open orders are reserved at check time), the loss-limit check sees
  the P&L as of the start of the batch.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from host.trading.matching.types import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    CancelOrder,
    Command,
    CommandKind,
    EventFlag,
    EventKind,
    MassCancel,
    MassCancelFlag,
    OrderFilled,
    OrderType,
    Side,
    TimeInForce,
    decode_events,
    encode_commands,
)
from host.trading.risk import checks as K
from host.trading.risk.config import RiskConfig
from host.trading.risk.journal import RiskJournal
from host.trading.risk.positions import AccountSummary, Position, account_view, position_view
from host.trading.risk.types import (
    CircuitBreakerTripped,
    DenyReason,
    KillScope,
    KillSwitchEngaged,
    KillSwitchReleased,
    OrderDenied,
    PositionChanged,
    ReferenceRestored,
    ReferenceStale,
    RiskEvent,
    RiskEventKind,
    StopCanceled,
    StopHeld,
    StopReleased,
    TradingState,
    TradingStateChanged,
)

__all__ = ["RiskEngine", "BatchResult", "OrderGateway"]

_STATE = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}
_COLLAR = {"none": K.COLLAR_NONE, "bps": K.COLLAR_BPS, "ticks": K.COLLAR_TICKS}


@dataclass
class BatchResult:
    """Outcome of :meth:`RiskEngine.process`.

    Attributes
    ----------
    reasons : numpy.ndarray
        ``int64`` :class:`DenyReason` per input command (0 = forwarded).
    events : numpy.ndarray
        ``EVENT_DTYPE`` events of the venue for the forwarded commands (plus the cancels of a
        circuit breaker that tripped in the batch).
    risk_events : list of RiskEvent
        Circuit breakers and stale/restored references raised by the batch (denials are in
        ``reasons``, not repeated here).
    """

    reasons: np.ndarray
    events: np.ndarray
    risk_events: list

    @property
    def denied(self) -> int:
        return int(np.count_nonzero(self.reasons))


def _key(order_id: int) -> np.int64:
    """An order id (uint64) as the int64 key of the open-order table."""
    return np.int64(np.uint64(order_id).astype(np.int64))


def _venue_commands(venue) -> int:
    """Commands the venue (or the engine behind a JournaledEngine) has applied."""
    return int(getattr(getattr(venue, "engine", venue), "command_seq", 0))


def _validated(commands, strategies) -> tuple[np.ndarray, np.ndarray | None]:
    """Check the array arguments of :meth:`RiskEngine.process` before they reach numba.

    The kernels index ``strategies`` by command row without bounds checks (they are compiled
    with ``boundscheck`` off for speed), so a short array would be read past its end.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray or None)
        ``commands`` as a C-contiguous 1-D ``COMMAND_DTYPE`` array and ``strategies`` as a
        C-contiguous ``int64`` array of the same length (None if not given).

    Raises
    ------
    ValueError
        Not an array, wrong dtype, not 1-D, or lengths that differ.
    """
    if not isinstance(commands, np.ndarray) or commands.dtype != COMMAND_DTYPE:
        raise ValueError("commands must be a numpy array of COMMAND_DTYPE, got "
                         f"{getattr(commands, 'dtype', type(commands).__name__)}")
    if commands.ndim != 1:
        raise ValueError(f"commands must be 1-D, got shape {commands.shape}")
    c = np.ascontiguousarray(commands)
    if strategies is None:
        return c, None
    if not isinstance(strategies, np.ndarray):
        raise ValueError("strategies must be a numpy integer array, got "
                         f"{type(strategies).__name__}")
    if strategies.dtype.kind not in "iu" or (strategies.dtype.kind == "u"
                                              and strategies.dtype.itemsize == 8):
        # uint64 does not convert to int64 losslessly: refuse it with the floats
        raise ValueError(f"strategies must be a signed integer array (or uint8..uint32), "
                         f"got {strategies.dtype}")
    if strategies.ndim != 1 or len(strategies) != len(c):
        raise ValueError(f"strategies must be 1-D with one entry per command ({len(c)}), "
                         f"got shape {strategies.shape}")
    return c, np.ascontiguousarray(strategies, np.int64)


class OrderGateway:
    """What an order source is given: submit and process through risk, for its accounts only.

    Built by :meth:`RiskEngine.gateway`. It holds two functions and the accounts it may act
    for, nothing else: the functions reach the risk engine through a weak reference, so no
    attribute chain (``__slots__``, ``__dict__``, bound methods, closures) leads from a gateway
    to the risk engine or its venue, and a gateway does not keep the risk engine alive. The
    principal the functions carry is read-only (built on ``bytes``). Instances are immutable.

    Attributes
    ----------
    submit : callable
        ``submit(cmd, *, strategy=None) -> list`` (:meth:`RiskEngine.submit` as this sender).
    process : callable
        ``process(commands, strategies=None) -> BatchResult`` (:meth:`RiskEngine.process` as
        this sender).
    accounts : tuple of int
        The accounts this gateway may act for.
    """

    __slots__ = ("submit", "process", "accounts")

    def __init__(self, submit, process, accounts: tuple[int, ...]) -> None:
        object.__setattr__(self, "submit", submit)
        object.__setattr__(self, "process", process)
        object.__setattr__(self, "accounts", accounts)

    def __setattr__(self, name, value):
        raise AttributeError("OrderGateway is immutable")

    def __delattr__(self, name):
        raise AttributeError("OrderGateway is immutable")

    def __repr__(self) -> str:
        return f"OrderGateway(accounts={self.accounts})"


def _live(ref) -> RiskEngine:
    risk = ref()
    if risk is None:
        raise RuntimeError("the risk engine of this gateway is gone")
    return risk


_RECOVERING = object()  # passed by RiskEngine.recover: the venue may hold state


class RiskEngine:
    """Pre-trade risk checks in front of a venue, post-trade positions behind it.

    The risk engine is the operator's object: it may act for every account (its
    :meth:`submit`/:meth:`process` may cancel any order and end the session), and it holds
    the kill switches and trading states. Order sources get :meth:`gateway` handles instead,
    bound to their accounts.

    Parameters
    ----------
    config : RiskConfig
    venue : object
        ``process(COMMAND_DTYPE array) -> EVENT_DTYPE array`` (MatchingEngine or
        JournaledEngine), fresh: a venue that already applied commands is refused (its orders
        and positions would be invisible to the checks); use :meth:`recover`. The risk engine
        is its only caller.
    journal : RiskJournal, optional
        Where denials and risk events are journaled.
    clock : callable, optional
        ``() -> int`` ns for commands with ``ts == 0``; default :func:`time.time_ns`.

    Raises
    ------
    ValueError
        The venue is not fresh.
    """

    def __init__(self, config: RiskConfig, venue, *, journal: RiskJournal | None = None,
                 clock: Callable[[], int] = time.time_ns, _mode=None) -> None:
        if _mode is not _RECOVERING and _venue_commands(venue):
            raise ValueError(
                f"the venue already applied {_venue_commands(venue)} commands: a fresh risk "
                "engine would not see its open orders and positions; use RiskEngine.recover")
        self.config = config
        self._venue = venue
        self.journal = journal
        self.clock = clock
        self.forwarding = False  # True only while the venue is being called by the risk engine
        self._copy_kw: dict = {}
        self._build(config)
        self.denied_by_reason = np.zeros(len(DenyReason), np.int64)
        self.forwarded = 0
        self.fills = 0
        self.risk_events: list[RiskEvent] = []
        self._nostrat = np.zeros(0, np.int64)
        # stops held by the risk layer: order id -> (COMMAND_DTYPE row, strategy)
        self._held: dict[int, tuple[np.void, int]] = {}
        self._alerts: list[RiskEvent] = []  # risk events not yet returned to a caller
        na = self.A.shape[0]
        every = np.zeros(na, bool)
        every[: len(config.accounts)] = True
        # the risk engine's own principals: plain arrays (it is the operator's object)
        self._operator = K.principal(K.ROLE_OPERATOR, every, self._owned, frozen=False)
        self._internal = K.principal(K.ROLE_INTERNAL, every, self._owned, frozen=False)

    @classmethod
    def recover(cls, config: RiskConfig, venue, *, venue_journal, risk_journal=None,
                journal: RiskJournal | None = None,
                clock: Callable[[], int] = time.time_ns) -> RiskEngine:
        """A risk engine for a venue recovered from its journal, with its state rebuilt.

        Parameters
        ----------
        config : RiskConfig
        venue : object
            The recovered venue (e.g. from :meth:`host.trading.journal.JournaledEngine.open`),
            in the state ``venue_journal`` describes.
        venue_journal : path
            The venue's journal: every fill it holds is replayed through the post-trade
            kernel (positions, cost, realized P&L), the last fill price of each instrument is
            its mark until the card quotes again.
        risk_journal : path, optional
            The risk journal of the previous run: kill switches, trading states, tripped
            circuit breakers, held stops and the strategy of orders not on their account's
            default are replayed in order.
        journal : RiskJournal, optional
            Where this risk engine journals (typically the same file, reopened).
        clock : callable, optional

        Returns
        -------
        RiskEngine
            Open orders (reserved against the position limits) are the venue's live orders
            plus the held stops; the rate and duplicate windows start empty, the card
            reference starts empty (limit orders are denied ``NO_REFERENCE_PRICE`` until the
            card quotes, under ``require_reference``).
        """
        from host.trading.journal import read_journal

        r = cls(config, venue, journal=journal, clock=clock, _mode=_RECOVERING)
        ev = np.ascontiguousarray(read_journal(venue_journal).events)
        # positions: replay the fills with the breakers off (marks during the replay are fill
        # prices, not the card's; the trips that happened are in the risk journal)
        brk = r.A[:, K.A_BREAKER].copy()
        r.A[:, K.A_BREAKER] = 0
        if len(ev):
            r.fills = K.apply_events(ev.view(np.int64).reshape(-1, 15), r.G, r.A, r.N, r.P,
                                     r.H, r.AMAP, r.NMAP)
        r.A[:, K.A_BREAKER] = brk
        fills = ev[ev["kind"] == EventKind.FILLED]
        for inst, px in zip(fills["instrument"].tolist(), fills["last_px"].tolist(),
                            strict=True):
            if 0 <= inst < len(r.NMAP) and r.NMAP[inst] >= 0:
                r.N[r.NMAP[inst], K.N_MARK] = px
        q = r.P[:, :, K.P_QTY]
        u = np.where((q != 0) & (r.N[None, :, K.N_MARK] > 0),
                     q * r.N[None, :, K.N_MARK] - r.P[:, :, K.P_COST], 0)
        r.P[:, :, K.P_UNREAL] = u
        r.A[:, K.A_UNREAL] = u.sum(axis=1)
        strategies: dict[int, int] = {}
        if risk_journal is not None:
            r._replay_risk_journal(read_journal(risk_journal), strategies)
        # open orders: the venue's live orders, then the held stops
        eng = getattr(venue, "engine", venue)
        for o in eng.open_orders():
            if not (0 <= o.account < len(r.AMAP) and r.AMAP[o.account] >= 0
                    and 0 <= o.instrument < len(r.NMAP) and r.NMAP[o.instrument] >= 0):
                # every live order must be in the open-order table: cancels of ids it does not
                # hold are sent on to be rejected, which is only safe if nothing is missing
                raise ValueError(f"the venue holds order {o.order_id} of account {o.account} "
                                 f"/ instrument {o.instrument}, which the configuration does "
                                 "not know")
            a = int(r.AMAP[o.account])
            r._reopen(o.order_id, a, int(r.NMAP[o.instrument]), o.side, o.price,
                      o.displayed_qty + o.hidden_qty, o.cum_qty,
                      strategies.get(o.order_id, int(r.A[a, K.A_STRAT])), held=False)
        for oid, (row, s) in r._held.items():
            a = int(r.AMAP[int(row["account"])])
            r._reopen(oid, a, int(r.NMAP[int(row["instrument"])]), int(row["side"]),
                      int(row["price"]), int(row["qty"]), 0, s, held=True)
        return r

    def _reopen(self, oid, a, i, side, px, leaves, cum, s, *, held) -> None:
        """Insert a recovered open order into the open-order table and reserve it."""
        H = self.H
        j = K.h_insert(H, self.G, _key(oid))
        H[j, K.H_ACCT], H[j, K.H_INST], H[j, K.H_SIDE], H[j, K.H_PX] = a, i, side, px
        H[j, K.H_LEAVES], H[j, K.H_CUM], H[j, K.H_STRAT] = leaves, cum, s
        H[j, K.H_PEND], H[j, K.H_HELD] = 0, int(held)
        self.G[K.G_NHELD] += int(held)
        self.P[a, i, K.P_OPEN_BUY if side == Side.BUY else K.P_OPEN_SELL] += leaves

    def _replay_risk_journal(self, rj, strategies: dict) -> None:
        """Kill switches, trading states, breakers, held stops and strategy assignments of a
        risk journal, in journal order."""
        cmds = iter(rj.commands)  # one command per DENIED / STOP_HELD event, same order
        for e in rj.events:
            kind = int(e["kind"])
            if kind in (RiskEventKind.DENIED, RiskEventKind.STOP_HELD):
                c = next(cmds)
                if kind == RiskEventKind.STOP_HELD:
                    self._held[int(c["order_id"])] = (c.copy(), int(e["contra_account"]))
            elif kind in (RiskEventKind.STOP_RELEASED, RiskEventKind.STOP_CANCELED):
                self._held.pop(int(e["order_id"]), None)
            elif kind == RiskEventKind.STRATEGY_ASSIGNED:
                strategies[int(e["order_id"])] = int(e["contra_account"])
            elif kind in (RiskEventKind.KILL_SWITCH_ENGAGED, RiskEventKind.KILL_SWITCH_RELEASED):
                try:
                    arr, col, *_ = self._scope(KillScope(int(e["reason"])), int(e["order_id"]))
                except KeyError:
                    continue  # an id this configuration no longer has
                arr[col] = int(kind == RiskEventKind.KILL_SWITCH_ENGAGED)
            elif kind == RiskEventKind.TRADING_STATE_CHANGED:
                st, acct, inst = int(e["reason"]), int(e["account"]), int(e["instrument"])
                # the journal writes 0 for "not given": account 0 / instrument 0 read as the
                # system state (documented limitation)
                if acct and 0 <= acct < len(self.AMAP) and self.AMAP[acct] >= 0:
                    a = self.AMAP[acct]
                    self.A[a, K.A_STATE] = st
                    if st == TradingState.ACTIVE:
                        self.A[a, K.A_TRIPPED] = 0
                elif inst and self.NMAP[inst] >= 0:
                    self.N[self.NMAP[inst], K.N_STATE] = st
                elif not acct and not inst:
                    self.G[K.G_STATE] = st
            elif kind == RiskEventKind.CIRCUIT_BREAKER_TRIPPED:
                acct = int(e["account"])
                if 0 <= acct < len(self.AMAP) and self.AMAP[acct] >= 0:
                    self.A[self.AMAP[acct], K.A_TRIPPED] = 1
                    self.A[self.AMAP[acct], K.A_STATE] = TradingState.HALTED

    # ------------------------------------------------------------------ state arrays

    def _build(self, cfg: RiskConfig) -> None:
        accts = cfg.accounts
        insts = cfg.instruments
        na, ni = max(len(accts), 1), max(len(insts), 1)
        self.G = np.zeros(K.G_NF, np.int64)
        self.A = np.zeros((na, K.A_NF), np.int64)
        self.N = np.zeros((ni, K.N_NF), np.int64)
        self.P = np.zeros((na, ni, K.P_NF), np.int64)
        self.SK = np.zeros(cfg.n_strategies, np.int64)
        self._owned = np.zeros((na, cfg.n_strategies), bool)
        width = max([a.max_orders_per_window for a in accts] + [1])
        self.RING = np.zeros((na, width), np.int64)
        self.DUP = np.zeros((na, K.DUP_DEPTH, 5), np.int64)
        hcap = 1 << max(4, (2 * cfg.max_open_orders - 1).bit_length())
        self.H = np.zeros((hcap, K.H_NF), np.int64)
        self.AMAP = np.full(max([a.account for a in accts] + [0]) + 1, -1, np.int64)
        self.NMAP = np.full(1 << 16, -1, np.int64)
        G = self.G
        G[K.G_STATE] = _STATE[cfg.state]
        G[K.G_DENY_STALE] = int(cfg.deny_on_stale)
        G[K.G_REQ_REF] = int(cfg.require_reference)
        G[K.G_GAP_ALL] = int(cfg.stale_gap_all)
        G[K.G_RECOVER] = cfg.stale_recovery_updates
        G[K.G_HMASK] = hcap - 1
        G[K.G_CAP] = cfg.max_open_orders
        restricted = set(cfg.restricted)
        for i, ic in enumerate(insts):
            n = self.N[i]
            n[K.N_ID] = ic.instrument
            n[K.N_STATE] = _STATE[ic.state]
            n[K.N_RESTRICTED] = int(ic.restricted or ic.instrument in restricted)
            n[K.N_TICK] = ic.tick
            col = ic.collar or cfg.collar
            n[K.N_COLLAR_MODE] = _COLLAR[col.mode]
            n[K.N_COLLAR_VAL] = col.value
            self.NMAP[ic.instrument] = i
        for a, ac in enumerate(accts):
            r = self.A[a]
            r[K.A_ID] = ac.account
            r[K.A_STATE] = _STATE[ac.state]
            r[K.A_MAX_QTY] = ac.max_order_qty
            r[K.A_MAX_NOTIONAL] = ac.max_order_notional
            r[K.A_RATE_N] = ac.max_orders_per_window
            r[K.A_RATE_WIN] = ac.rate_window_ns
            r[K.A_DUP_WIN] = ac.duplicate_window_ns
            r[K.A_LOSS_LIMIT] = ac.daily_loss_limit
            r[K.A_BREAKER] = ac.breaker_loss
            r[K.A_STRAT] = ac.strategy
            self._owned[a, list(ac.owned_strategies)] = True
            self.AMAP[ac.account] = a
            self.P[a, :, K.P_LIMIT] = ac.max_position
            for inst, lim in ac.position_limits.items():
                if self.NMAP[inst] >= 0:
                    self.P[a, self.NMAP[inst], K.P_LIMIT] = lim
        if not accts:
            self.A[:, K.A_ID] = -1
        if not insts:
            self.N[:, K.N_ID] = -1

    def _a(self, account: int) -> int:
        if not 0 <= account < len(self.AMAP) or self.AMAP[account] < 0:
            raise KeyError(f"unknown account {account}")
        return int(self.AMAP[account])

    def _i(self, instrument: int) -> int:
        if not 0 <= instrument < len(self.NMAP) or self.NMAP[instrument] < 0:
            raise KeyError(f"unknown instrument {instrument}")
        return int(self.NMAP[instrument])

    # ------------------------------------------------------------------ venue path

    def _forward(self, cmds: np.ndarray) -> np.ndarray:
        """The one place the venue is called: apply ``cmds``, run the post-trade kernel,
        release the held stops the venue's trades triggered."""
        self.forwarding = True
        try:
            ev = self._venue.process(cmds, **self._copy_kw)
        finally:
            self.forwarding = False
        self.forwarded += len(cmds)
        if len(ev):
            self.fills += K.apply_events(ev.view(np.int64).reshape(-1, 15), self.G, self.A,
                                         self.N, self.P, self.H, self.AMAP, self.NMAP)
            if self._held:
                ev = self._release_triggered(ev)
        return ev

    def _release_triggered(self, ev: np.ndarray) -> np.ndarray:
        """Stops triggered by the taker fills in ``ev`` (the matching engine's rule: a buy stop
        when a trade prints at or above its stop price, a sell stop at or below) leave the
        hold and are checked as new orders at the time of the trade; those that pass are
        forwarded (their own trades may trigger more)."""
        f = ev[(ev["kind"] == EventKind.FILLED) & ((ev["flags"] & EventFlag.MAKER) == 0)]
        if not len(f):
            return ev
        hi: dict[int, int] = {}
        lo: dict[int, int] = {}
        at: dict[int, int] = {}
        for inst, px, ts in zip(f["instrument"].tolist(), f["last_px"].tolist(),
                                f["ts"].tolist(), strict=True):
            hi[inst] = max(hi.get(inst, px), px)
            lo[inst] = min(lo.get(inst, px), px)
            at[inst] = ts
        go = []
        for oid, (row, _) in self._held.items():
            inst = int(row["instrument"])
            if inst in hi:
                stop = int(row["stop_price"])
                if (hi[inst] >= stop) if row["side"] == Side.BUY else (lo[inst] <= stop):
                    go.append(oid)
        if not go:
            return ev
        rows = np.zeros(len(go), COMMAND_DTYPE)
        strat = np.zeros(len(go), np.int64)
        for x, oid in enumerate(go):
            row, s = self._held.pop(oid)
            K.drop_order(self.H, self.G, self.P, K.h_find(self.H, self.G, _key(oid)))
            r = row.copy()
            r["ts"] = at[int(row["instrument"])]
            r["stop_price"] = 0
            if row["order_type"] == OrderType.STOP:
                r["order_type"] = OrderType.MARKET
                r["price"] = 0
            else:
                r["order_type"] = OrderType.LIMIT
            rows[x] = r
            strat[x] = s
        ev = ev.copy()  # the next venue call may reuse the engine's event buffer
        kw, self._copy_kw = self._copy_kw, {}
        try:
            reasons, more = self._run(rows, strat, self._internal)
        finally:
            self._copy_kw = kw
        for r, reason in zip(rows, reasons.tolist(), strict=True):
            if reason == 0:
                e = StopReleased(int(r["ts"]), int(r["order_id"]), int(r["account"]),
                                 int(r["instrument"]))
                self._alert(e, RiskEventKind.STOP_RELEASED, account=e.account,
                            instrument=e.instrument, value=e.order_id)
            else:  # journaled as a denial by _run; told to the caller as an alert
                self._alerts.append(self._denied(r, reason, count=False))
        return np.concatenate([ev, more]) if len(more) else ev

    def _alert(self, e: RiskEvent, kind: RiskEventKind, **kw) -> None:
        self.risk_events.append(e)
        self._alerts.append(e)
        if self.journal is not None:
            self.journal.append_event(kind, e.ts, **kw)

    def _drain(self) -> list:
        out, self._alerts = self._alerts, []
        return out

    def _cancel_held(self, ts: int, *, account=None, instrument=None, strategy=None,
                     day_only: bool = False) -> int:
        """Cancel the held stops in scope (None = any); returns how many."""
        n = 0
        for oid, (row, s) in list(self._held.items()):
            if (account is not None and int(row["account"]) != account) or (
                    instrument is not None and int(row["instrument"]) != instrument) or (
                    strategy is not None and s != strategy) or (
                    day_only and row["tif"] != TimeInForce.DAY):
                continue
            del self._held[oid]
            K.drop_order(self.H, self.G, self.P, K.h_find(self.H, self.G, _key(oid)))
            e = StopCanceled(ts, oid, int(row["account"]), int(row["instrument"]))
            self._alert(e, RiskEventKind.STOP_CANCELED, account=e.account,
                        instrument=e.instrument, value=oid)
            n += 1
        return n

    def _after(self, ts: int, prev_tripped: np.ndarray, out_events: list) -> list:
        """Handle circuit breakers that tripped since ``prev_tripped``; returns venue events."""
        venue_events = []
        new = np.nonzero(self.A[:, K.A_TRIPPED] & ~prev_tripped)[0]
        for a in new:
            acct = int(self.A[a, K.A_ID])
            ev = self._forward(encode_commands([MassCancel(account=acct, ts=ts)]))
            venue_events.append(ev)
            n = int(np.count_nonzero(ev["kind"] == EventKind.CANCELED))
            n += self._cancel_held(ts, account=acct)
            pnl = int(self.A[a, K.A_REALIZED] + self.A[a, K.A_UNREAL])
            e = CircuitBreakerTripped(ts, acct, pnl, int(self.A[a, K.A_BREAKER]), n)
            out_events.append(e)
            self.risk_events.append(e)
            if self.journal is not None:
                self.journal.append_event(RiskEventKind.CIRCUIT_BREAKER_TRIPPED, ts,
                                          account=acct, pnl=pnl, threshold=e.threshold, count=n)
        return venue_events

    # ------------------------------------------------------------------ commands

    def _run(self, c: np.ndarray, S: np.ndarray | None, principal) -> tuple:
        """Check ``c`` (contiguous ``COMMAND_DTYPE``, validated) as ``principal``; journal the
        denials, hold/cancel held stops, forward the rest. Returns ``(reasons, venue events)``.
        """
        PR, PS = principal
        C = c.view(np.int64).reshape(-1, 8)
        m = C.shape[0]
        reasons = np.empty(m, np.int64)
        out = np.empty((m, 8), np.int64)
        hold = np.empty(m, np.int64)
        n, nh = K.check_batch(C, self._nostrat if S is None else S, self.G, self.A, self.N,
                              self.P, self.SK, self.RING, self.DUP, self.H, self.AMAP,
                              self.NMAP, PR, PS, reasons, out, hold)
        if n + nh < m:
            self.denied_by_reason += np.bincount(reasons, minlength=len(DenyReason))[
                : len(DenyReason)]
            self.denied_by_reason[0] = 0
            if self.journal is not None:
                bad = reasons != 0
                self.journal.append_denied(c[bad], reasons[bad].astype(np.uint8))
        if nh:
            self._hold(c, S, hold[:nh])
        fwd = out[:n].view(COMMAND_DTYPE).reshape(-1)
        if S is not None and self.journal is not None and n:
            self._journal_strategies(c, S, reasons)
        ev = self._forward(fwd) if n else np.zeros(0, EVENT_DTYPE)
        if n and self._held:
            kinds = fwd["kind"]
            for r in fwd[kinds >= CommandKind.MASS_CANCEL]:
                by = int(r["flags"])
                inst = int(r["instrument"]) if by & MassCancelFlag.BY_INSTRUMENT else None
                if r["kind"] == CommandKind.MASS_CANCEL:
                    acct = int(r["account"]) if by & MassCancelFlag.BY_ACCOUNT else None
                    self._cancel_held(int(r["ts"]), account=acct, instrument=inst)
                elif r["kind"] == CommandKind.END_SESSION:
                    self._cancel_held(int(r["ts"]), instrument=inst, day_only=True)
        return reasons, ev

    def _hold(self, c: np.ndarray, S, hold: np.ndarray) -> None:
        """Enter (code 1) or cancel (code 2) held stops, in command order."""
        for h in hold.tolist():
            k, code = h >> 2, h & 3
            r = c[k]
            oid = int(r["order_id"])
            if code == 1:
                acct = int(r["account"])
                s = int(S[k]) if S is not None and S[k] >= 0 else \
                    int(self.A[self.AMAP[acct], K.A_STRAT])
                self._held[oid] = (r.copy(), s)
                e = StopHeld(int(r["ts"]), oid, acct, int(r["instrument"]), int(r["side"]),
                             int(r["qty"]), int(r["stop_price"]), s)
                self.risk_events.append(e)
                self._alerts.append(e)
                if self.journal is not None:
                    self.journal.append_held(c[k:k + 1], np.array([s], np.uint32))
            else:
                row, _ = self._held.pop(oid)
                e = StopCanceled(int(r["ts"]), oid, int(row["account"]), int(row["instrument"]))
                self._alert(e, RiskEventKind.STOP_CANCELED, account=e.account,
                            instrument=e.instrument, value=oid)

    def _journal_strategies(self, c, S, reasons) -> None:
        """STRATEGY_ASSIGNED rows for forwarded submits not on their account's default."""
        sub = (reasons == 0) & (c["kind"] == CommandKind.SUBMIT) & (S >= 0)
        if not sub.any():
            return
        rows = self.AMAP[np.minimum(c["account"].astype(np.int64), len(self.AMAP) - 1)]
        sub &= S != self.A[np.maximum(rows, 0), K.A_STRAT]
        if sub.any():
            self.journal.append_assigned(c[sub], S[sub].astype(np.uint32))

    def submit(self, cmd: Command, *, strategy: int | None = None) -> list:
        """Check one command as the operator; forward it if it passes.

        Parameters
        ----------
        cmd : Command
            ``ts == 0`` is stamped with the clock.
        strategy : int, optional
            Strategy of a new order (default: the account's); it must be bound to the
            account (:attr:`AccountConfig.strategies`).

        Returns
        -------
        list
            ``[OrderDenied]``; or the venue's events followed by :class:`PositionChanged` per
            fill of a known account and the risk events the command caused
            (:class:`StopHeld`, :class:`StopCanceled`, :class:`StopReleased`, an
            :class:`OrderDenied` of a stop denied at its trigger,
            :class:`CircuitBreakerTripped`).
        """
        return self._submit(cmd, strategy, self._operator)

    def _submit(self, cmd: Command, strategy, principal) -> list:
        one = encode_commands([cmd])
        if cmd.ts == 0:
            one[0]["ts"] = self.clock()
        ts = int(one[0]["ts"])
        S = None if strategy is None else np.array([int(strategy)], np.int64)
        prev = self.A[:, K.A_TRIPPED].copy()
        reasons, ev = self._run(one, S, principal)
        r = int(reasons[0])
        if r:
            if self.journal is not None:
                self.journal.commit()
            return [self._denied(one[0], r, count=False)]
        out: list = list(decode_events(ev))
        for e in list(out):
            if isinstance(e, OrderFilled) and 0 <= e.account < len(self.AMAP) \
                    and self.AMAP[e.account] >= 0 and self.NMAP[e.instrument] >= 0:
                p = self.position(e.account, e.instrument)
                out.append(PositionChanged(e.ts, e.account, e.instrument, p.qty, p.avg_px,
                                           p.realized, p.unrealized))
        alerts: list = self._drain()
        for vev in self._after(ts, prev, alerts):
            out.extend(decode_events(vev))
        out.extend(alerts)
        out.extend(self._drain())
        if self.journal is not None:
            self.journal.commit()
        return out

    def _denied(self, c, r: int, *, count: bool = True) -> OrderDenied:
        acct, inst, side = int(c["account"]), int(c["instrument"]), int(c["side"])
        # the live order's account/instrument/side, but not to a sender who may not see them
        if c["kind"] in (CommandKind.REPLACE, CommandKind.CANCEL) and r not in (
                DenyReason.NOT_AUTHORIZED, DenyReason.STRATEGY_NOT_PERMITTED):
            j = K.h_find(self.H, self.G, _key(int(c["order_id"])))
            if j >= 0:
                h = self.H[j]
                acct, inst = int(self.A[h[K.H_ACCT], K.A_ID]), int(self.N[h[K.H_INST], K.N_ID])
                side = int(h[K.H_SIDE])
        if count:
            self.denied_by_reason[r] += 1
        return OrderDenied(int(c["ts"]), int(c["order_id"]), acct, inst, side, int(c["qty"]),
                           int(c["price"]), int(c["kind"]), DenyReason(r))

    def process(self, commands: np.ndarray, strategies: np.ndarray | None = None, *,
                copy: bool = True) -> BatchResult:
        """Check a ``COMMAND_DTYPE`` batch as the operator in one compiled call, forward what
        passes.

        Parameters
        ----------
        commands : numpy.ndarray
            1-D ``COMMAND_DTYPE`` rows, each with its timestamp.
        strategies : numpy.ndarray, optional
            Integer strategy per command (-1 = the account's default), same length.
        copy : bool
            False: with a plain :class:`~host.trading.matching.MatchingEngine` venue,
            ``BatchResult.events`` is a view of the engine's event buffer, valid until the next
            call (saves a copy in hot loops).

        Raises
        ------
        ValueError
            Array arguments of the wrong dtype, shape or length.
        """
        return self._process(commands, strategies, self._operator, copy)

    def _process(self, commands, strategies, principal, copy: bool) -> BatchResult:
        c, S = _validated(commands, strategies)
        self._copy_kw = {} if copy or not hasattr(self._venue, "snapshot") or hasattr(
            self._venue, "writer") else {"copy": False}
        prev = self.A[:, K.A_TRIPPED].copy()
        try:
            reasons, ev = self._run(c, S, principal)
        finally:
            self._copy_kw = {}
        revs: list = self._drain()
        ts = int(c["ts"][-1]) if len(c) else 0
        extra = self._after(ts, prev, revs)
        if extra:
            ev = np.concatenate([ev, *extra])
        revs.extend(self._drain())
        if self.journal is not None:
            self.journal.commit()
        return BatchResult(reasons, ev, revs)

    def gateway(self, accounts) -> OrderGateway:
        """The narrow handle to give an order source acting for ``accounts``.

        Parameters
        ----------
        accounts : int or iterable of int
            Configured accounts the source may act for: it may submit for them (with their
            bound strategies), cancel and replace their orders, and mass cancel naming one of
            them. It may not end the session.

        Raises
        ------
        KeyError
            An account that is not configured.
        """
        accts = (int(accounts),) if isinstance(accounts, int | np.integer) else tuple(
            int(a) for a in accounts)
        mask = np.zeros(self.A.shape[0], bool)
        for a in accts:
            mask[self._a(a)] = True
        principal = K.principal(K.ROLE_ACCOUNT, mask, self._owned)
        ref = weakref.ref(self)

        def submit(cmd: Command, *, strategy: int | None = None) -> list:
            return _live(ref)._submit(cmd, strategy, K.thawed(principal))

        def process(commands: np.ndarray, strategies: np.ndarray | None = None) -> BatchResult:
            return _live(ref)._process(commands, strategies, K.thawed(principal), True)

        submit.__doc__ = RiskEngine.submit.__doc__
        process.__doc__ = RiskEngine.process.__doc__
        return OrderGateway(submit, process, accts)

    def held_stops(self) -> list[int]:
        """Order ids of the stops held by the risk layer (entered, not yet triggered)."""
        return list(self._held)

    # ------------------------------------------------------------------ market data

    def on_market_data(self, records: np.ndarray) -> list:
        """Apply card BBO records (:data:`hw.bbo_record.DTYPE`, in card order).

        Returns :class:`ReferenceStale` / :class:`ReferenceRestored` for instruments whose
        stale flag changed over the batch, :class:`CircuitBreakerTripped` for accounts whose
        marked-to-market loss passed their threshold (their orders are canceled, held stops
        with a :class:`StopCanceled` each).
        """
        if len(records) == 0:
            return []
        stale0 = self.N[:, K.N_STALE].copy()
        prev = self.A[:, K.A_TRIPPED].copy()
        K.apply_marks(records["locate"].astype(np.int64), records["flags"].astype(np.int64),
                      records["bid_px"].astype(np.int64), records["ask_px"].astype(np.int64),
                      self.G, self.A, self.N, self.P, self.NMAP)
        ts = int(records["ts_event"][-1])
        out: list = []
        for i in np.nonzero(stale0 != self.N[:, K.N_STALE])[0]:
            inst = int(self.N[i, K.N_ID])
            if self.N[i, K.N_STALE]:
                e, kind = ReferenceStale(ts, inst), RiskEventKind.REFERENCE_STALE
            else:
                e, kind = ReferenceRestored(ts, inst), RiskEventKind.REFERENCE_RESTORED
            out.append(e)
            self.risk_events.append(e)
            if self.journal is not None:
                self.journal.append_event(kind, ts, instrument=inst)
        self._after(ts, prev, out)
        out.extend(self._drain())  # held stops a circuit breaker canceled
        if self.journal is not None and out:
            self.journal.commit()
        return out

    def mark_reference_valid(self, instrument: int) -> None:
        """Operator override: treat ``instrument``'s card book as valid (e.g. after a
        snapshot rebuilt it)."""
        i = self._i(instrument)
        self.N[i, K.N_STALE] = 0
        self.N[i, K.N_RECOVER_CNT] = 0

    def reference(self, instrument: int) -> tuple[int, int, bool]:
        """``(bid, ask, stale)`` of the card BBO as the risk engine holds it (0 = empty)."""
        i = self._i(instrument)
        return int(self.N[i, K.N_BID]), int(self.N[i, K.N_ASK]), bool(self.N[i, K.N_STALE])

    # ------------------------------------------------------------------ controls

    def _scope(self, scope: KillScope, value: int):
        scope = KillScope(scope)
        if scope is KillScope.ALL:
            return self.G, K.G_KILL, -1, 0, MassCancel()
        if scope is KillScope.ACCOUNT:
            return self.A[self._a(value)], K.A_KILL, K.H_ACCT, self._a(value), \
                MassCancel(account=value)
        if scope is KillScope.INSTRUMENT:
            return self.N[self._i(value)], K.N_KILL, K.H_INST, self._i(value), \
                MassCancel(instrument=value)
        if not 0 <= value < len(self.SK):
            raise KeyError(f"unknown strategy {value}")
        return self.SK, value, K.H_STRAT, value, None

    def engage_kill_switch(self, scope: KillScope, value: int = 0, *, ts: int = 0) -> list:
        """Cancel every open order in scope and block new ones until released.

        ``value`` is the account, strategy or instrument id (ignored for ``ALL``). Returns the
        venue's cancel events followed by :class:`StopCanceled` for held stops in scope and
        :class:`KillSwitchEngaged`.
        """
        ts = ts or self.clock()
        arr, col, hcol, hval, mass = self._scope(scope, value)
        arr[col] = 1
        scope = KillScope(scope)
        n_held = self._cancel_held(
            ts, account=value if scope is KillScope.ACCOUNT else None,
            instrument=value if scope is KillScope.INSTRUMENT else None,
            strategy=value if scope is KillScope.STRATEGY else None)
        if mass is not None:
            cmds = encode_commands([MassCancel(mass.account, mass.instrument, ts)])
        else:  # strategy: the venue does not know strategies, cancel order by order
            ids = np.empty(int(self.G[K.G_LIVE]) + 1, np.int64)
            n = K.open_orders_where(self.H, hcol, hval, ids)
            cmds = encode_commands([CancelOrder(int(np.int64(x).astype(np.uint64)), ts)
                                    for x in ids[:n]])
        ev = self._forward(cmds) if len(cmds) else np.zeros(0, EVENT_DTYPE)
        n_canc = int(np.count_nonzero(ev["kind"] == EventKind.CANCELED)) + n_held
        e = KillSwitchEngaged(ts, scope, int(value), n_canc)
        self.risk_events.append(e)
        if self.journal is not None:
            self.journal.append_event(RiskEventKind.KILL_SWITCH_ENGAGED, ts, scope=int(scope),
                                      value=int(value), count=n_canc)
            self.journal.commit()
        return [*decode_events(ev), *self._drain(), e]

    def release_kill_switch(self, scope: KillScope, value: int = 0, *, ts: int = 0) -> list:
        """Re-enable trading in scope (the switch only; trading states are separate)."""
        ts = ts or self.clock()
        arr, col, *_ = self._scope(scope, value)
        arr[col] = 0
        e = KillSwitchReleased(ts, KillScope(scope), int(value))
        self.risk_events.append(e)
        if self.journal is not None:
            self.journal.append_event(RiskEventKind.KILL_SWITCH_RELEASED, ts, scope=int(scope),
                                      value=int(value))
            self.journal.commit()
        return [e]

    def set_trading_state(self, state: TradingState, *, account: int | None = None,
                          instrument: int | None = None, ts: int = 0) -> list:
        """Set the state of an account, an instrument, or (neither given) the system.

        Setting an account back to ACTIVE also re-arms its circuit breaker.
        """
        if account is not None and instrument is not None:
            raise ValueError("give an account or an instrument, not both")
        state = TradingState(state)
        ts = ts or self.clock()
        if account is not None:
            a = self._a(account)
            self.A[a, K.A_STATE] = state
            if state is TradingState.ACTIVE:
                self.A[a, K.A_TRIPPED] = 0
        elif instrument is not None:
            self.N[self._i(instrument), K.N_STATE] = state
        else:
            self.G[K.G_STATE] = state
        e = TradingStateChanged(ts, account, instrument, state)
        self.risk_events.append(e)
        if self.journal is not None:
            self.journal.append_event(RiskEventKind.TRADING_STATE_CHANGED, ts,
                                      account=account or 0, instrument=instrument or 0,
                                      state=int(state))
            self.journal.commit()
        return [e]

    # ------------------------------------------------------------------ views

    def position(self, account: int, instrument: int) -> Position:
        """:class:`Position` of ``account`` in ``instrument``."""
        return position_view(self.A, self.N, self.P, self._a(account), self._i(instrument))

    def positions(self) -> list[Position]:
        """Every non-flat position, or with open orders."""
        out = []
        for a in range(len(self.config.accounts)):
            for i in range(len(self.config.instruments)):
                p = self.P[a, i]
                if p[K.P_QTY] or p[K.P_REAL] or p[K.P_OPEN_BUY] or p[K.P_OPEN_SELL]:
                    out.append(position_view(self.A, self.N, self.P, a, i))
        return out

    def account(self, account: int) -> AccountSummary:
        """:class:`AccountSummary` of ``account``."""
        return account_view(self.A, self.N, self.P, self._a(account))

    @property
    def open_orders(self) -> int:
        """Orders forwarded and not finished (the open-order table's size)."""
        return int(self.G[K.G_LIVE])

    def denied_counts(self) -> dict[str, int]:
        """``{reason name: count}`` of every denial so far."""
        return {DenyReason(r).name: int(n) for r, n in enumerate(self.denied_by_reason) if n}
