"""Operator console: a live, paced trading session served to a browser, with metrics.

:mod:`host.console.live`
    :class:`LiveSession` -- card records -> risk -> matching engine at a chosen speed, with a
    reference depth book, operator actions (kill switches, clear stale) and a JSON snapshot.
:mod:`host.console.app`
    The Starlette application: page, WebSocket push (coalesced), actions behind a token,
    ``/metrics``.
:mod:`host.console.metrics`
    The Prometheus metric families (``docs/grafana/itchfpga.json`` reads them).

``python -m host serve`` is :mod:`host.cli.serve`; see ``docs/console.md``.
"""
