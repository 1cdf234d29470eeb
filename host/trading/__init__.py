"""Trading floor: what the card feeds.

:mod:`~host.trading.matching` (a price-time matching engine, numba core),
:mod:`~host.trading.risk` (pre-trade risk: the only path from order sources to the venue),
:mod:`~host.trading.journal` (the audit journal with crash recovery) and
:mod:`~host.trading.session` (an end-to-end session: card records -> risk -> matching ->
journal). Modules here import the floors below (:mod:`host.card`, :mod:`host.feed`, the record
format of :mod:`hw.bbo_record`) and :mod:`host.errors`, never the command line.
"""
