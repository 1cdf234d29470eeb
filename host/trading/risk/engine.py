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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from host.trading.matching.types import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    CancelOrder,
    Command,
    CommandKind,
    EventKind,
    MassCancel,
    OrderFilled,
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
    """What an order source is given: submit and cancel through risk, nothing else."""

    __slots__ = ("_risk",)

    def __init__(self, risk: RiskEngine) -> None:
        self._risk = risk

    def submit(self, cmd: Command, *, strategy: int | None = None) -> list:
        """:meth:`RiskEngine.submit`."""
        return self._risk.submit(cmd, strategy=strategy)

    def process(self, commands: np.ndarray, strategies: np.ndarray | None = None) -> BatchResult:
        """:meth:`RiskEngine.process`."""
        return self._risk.process(commands, strategies)


class RiskEngine:
    """Pre-trade risk checks in front of a venue, post-trade positions behind it.

    Parameters
    ----------
    config : RiskConfig
    venue : object
        ``process(COMMAND_DTYPE array) -> EVENT_DTYPE array`` (MatchingEngine or
        JournaledEngine). The risk engine is its only caller.
    journal : RiskJournal, optional
        Where denials and risk events are journaled.
    clock : callable, optional
        ``() -> int`` ns for commands with ``ts == 0``; default :func:`time.time_ns`.
    """

    def __init__(self, config: RiskConfig, venue, *, journal: RiskJournal | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
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
        self._one = np.zeros(1, COMMAND_DTYPE)
        self._reason = np.zeros(1, np.int64)
        self._out1 = np.zeros((1, 8), np.int64)
        self._nostrat = np.zeros(0, np.int64)

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
        """The one place the venue is called: apply ``cmds``, run the post-trade kernel."""
        self.forwarding = True
        try:
            ev = self._venue.process(cmds, **self._copy_kw)
        finally:
            self.forwarding = False
        self.forwarded += len(cmds)
        if len(ev):
            self.fills += K.apply_events(ev.view(np.int64).reshape(-1, 15), self.G, self.A,
                                         self.N, self.P, self.H, self.AMAP, self.NMAP)
        return ev

    def _after(self, ts: int, prev_tripped: np.ndarray, out_events: list) -> list:
        """Handle circuit breakers that tripped since ``prev_tripped``; returns venue events."""
        venue_events = []
        new = np.nonzero(self.A[:, K.A_TRIPPED] & ~prev_tripped)[0]
        for a in new:
            acct = int(self.A[a, K.A_ID])
            ev = self._forward(encode_commands([MassCancel(account=acct, ts=ts)]))
            venue_events.append(ev)
            n = int(np.count_nonzero(ev["kind"] == EventKind.CANCELED))
            pnl = int(self.A[a, K.A_REALIZED] + self.A[a, K.A_UNREAL])
            e = CircuitBreakerTripped(ts, acct, pnl, int(self.A[a, K.A_BREAKER]), n)
            out_events.append(e)
            self.risk_events.append(e)
            if self.journal is not None:
                self.journal.append_event(RiskEventKind.CIRCUIT_BREAKER_TRIPPED, ts,
                                          account=acct, pnl=pnl, threshold=e.threshold, count=n)
        return venue_events

    # ------------------------------------------------------------------ commands

    def submit(self, cmd: Command, *, strategy: int | None = None) -> list:
        """Check one command; forward it if it passes.

        Parameters
        ----------
        cmd : Command
            ``ts == 0`` is stamped with the clock.
        strategy : int, optional
            Strategy of a new order (default: the account's).

        Returns
        -------
        list
            ``[OrderDenied]``, or the venue's events followed by :class:`PositionChanged` per
            fill of a known account and :class:`CircuitBreakerTripped` alerts.
        """
        one = self._one
        one[0] = encode_commands([cmd])[0]
        if cmd.ts == 0:
            one[0]["ts"] = self.clock()
        ts = int(one[0]["ts"])
        row = one.view(np.int64).reshape(1, 8)
        prev = self.A[:, K.A_TRIPPED].copy()
        r = K.check_command(row, 0, -1 if strategy is None else int(strategy), self.G, self.A,
                            self.N, self.P, self.SK, self.RING, self.DUP, self.H, self.AMAP,
                            self.NMAP)
        if r:
            d = self._denied(one, r)
            if self.journal is not None:
                self.journal.append_denied(one, np.array([r], np.uint8))
                self.journal.commit()
            return [d]
        ev = self._forward(one)
        out: list = list(decode_events(ev))
        for e in list(out):
            if isinstance(e, OrderFilled) and 0 <= e.account < len(self.AMAP) \
                    and self.AMAP[e.account] >= 0 and self.NMAP[e.instrument] >= 0:
                p = self.position(e.account, e.instrument)
                out.append(PositionChanged(e.ts, e.account, e.instrument, p.qty, p.avg_px,
                                           p.realized, p.unrealized))
        alerts: list = []
        for vev in self._after(ts, prev, alerts):
            out.extend(decode_events(vev))
        out.extend(alerts)
        if self.journal is not None:
            self.journal.commit()
        return out

    def _denied(self, one: np.ndarray, r: int) -> OrderDenied:
        c = one[0]
        acct, inst, side = int(c["account"]), int(c["instrument"]), int(c["side"])
        if c["kind"] == CommandKind.REPLACE:
            j = K.h_find(self.H, self.G, np.int64(np.uint64(c["order_id"]).astype(np.int64)))
            if j >= 0:
                h = self.H[j]
                acct, inst = int(self.A[h[K.H_ACCT], K.A_ID]), int(self.N[h[K.H_INST], K.N_ID])
                side = int(h[K.H_SIDE])
        self.denied_by_reason[r] += 1
        return OrderDenied(int(c["ts"]), int(c["order_id"]), acct, inst, side, int(c["qty"]),
                           int(c["price"]), int(c["kind"]), DenyReason(r))

    def process(self, commands: np.ndarray, strategies: np.ndarray | None = None, *,
                copy: bool = True) -> BatchResult:
        """Check a ``COMMAND_DTYPE`` batch in one compiled call, forward what passes.

        Parameters
        ----------
        commands : numpy.ndarray
            ``COMMAND_DTYPE`` rows, each with its timestamp.
        strategies : numpy.ndarray, optional
            ``int64`` strategy per command (-1 = the account's default).
        copy : bool
            False: with a plain :class:`~host.trading.matching.MatchingEngine` venue,
            ``BatchResult.events`` is a view of the engine's event buffer, valid until the next
            call (saves a copy in hot loops).
        """
        c, S = _validated(commands, strategies)
        self._copy_kw = {} if copy or not hasattr(self._venue, "snapshot") or hasattr(
            self._venue, "writer") else {"copy": False}
        C = c.view(np.int64).reshape(-1, 8)
        m = C.shape[0]
        reasons = np.zeros(m, np.int64)
        out = np.empty((m, 8), np.int64)
        if S is None:
            S = self._nostrat
        prev = self.A[:, K.A_TRIPPED].copy()
        n = K.check_batch(C, S, self.G, self.A, self.N, self.P, self.SK, self.RING, self.DUP,
                          self.H, self.AMAP, self.NMAP, reasons, out)
        if n < m:
            self.denied_by_reason += np.bincount(reasons, minlength=len(DenyReason))[
                : len(DenyReason)]
            self.denied_by_reason[0] = 0
            if self.journal is not None:
                bad = reasons != 0
                self.journal.append_denied(c[bad], reasons[bad].astype(np.uint8))
        ev = self._forward(out[:n].view(COMMAND_DTYPE).reshape(-1)) if n else \
            np.zeros(0, EVENT_DTYPE)
        revs: list = []
        ts = int(C[m - 1, 0]) if m else 0
        extra = self._after(ts, prev, revs)
        if extra:
            ev = np.concatenate([ev, *extra])
        self._copy_kw = {}
        if self.journal is not None:
            self.journal.commit()
        return BatchResult(reasons, ev, revs)

    def gateway(self) -> OrderGateway:
        """The narrow handle to give an order source."""
        return OrderGateway(self)

    # ------------------------------------------------------------------ market data

    def on_market_data(self, records: np.ndarray) -> list:
        """Apply card BBO records (:data:`hw.bbo_record.DTYPE`, in card order).

        Returns :class:`ReferenceStale` / :class:`ReferenceRestored` for instruments whose
        stale flag changed over the batch, :class:`CircuitBreakerTripped` for accounts whose
        marked-to-market loss passed their threshold (their orders are canceled).
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
        venue's cancel events followed by :class:`KillSwitchEngaged`.
        """
        ts = ts or self.clock()
        arr, col, hcol, hval, mass = self._scope(scope, value)
        arr[col] = 1
        if mass is not None:
            cmds = encode_commands([MassCancel(mass.account, mass.instrument, ts)])
        else:  # strategy: the venue does not know strategies, cancel order by order
            ids = np.empty(int(self.G[K.G_LIVE]) + 1, np.int64)
            n = K.open_orders_where(self.H, hcol, hval, ids)
            cmds = encode_commands([CancelOrder(int(np.int64(x).astype(np.uint64)), ts)
                                    for x in ids[:n]])
        ev = self._forward(cmds) if len(cmds) else np.zeros(0, EVENT_DTYPE)
        n_canc = int(np.count_nonzero(ev["kind"] == EventKind.CANCELED))
        e = KillSwitchEngaged(ts, KillScope(scope), int(value), n_canc)
        self.risk_events.append(e)
        if self.journal is not None:
            self.journal.append_event(RiskEventKind.KILL_SWITCH_ENGAGED, ts, scope=int(scope),
                                      value=int(value), count=n_canc)
            self.journal.commit()
        return [*decode_events(ev), e]

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
