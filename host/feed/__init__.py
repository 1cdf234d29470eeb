"""Feed floor: the market data itself, with no card and no trading.

The ITCH 5.0 / MoldUDP64 protocol table (:mod:`host.feed.spec`) and what is derived from it:
the per-message codec (:mod:`~host.feed.itch`), MoldUDP64 packets and sequencing
(:mod:`~host.feed.moldudp`), Ethernet/IPv4/UDP frames and pcap (:mod:`~host.feed.net`),
NASDAQ binary files (:mod:`~host.feed.files`), the numba bulk parser (:mod:`~host.feed.bulk`),
the reference L3 book (:mod:`~host.feed.book`, :mod:`~host.feed.fastbook`), the seeded sample
generator (:mod:`~host.feed.generator`) and capture loading (:mod:`~host.feed.capture`).

Modules here import only other feed modules and :mod:`host.errors`; the gateware (``hw/``)
imports from this floor and nothing above it.
"""
