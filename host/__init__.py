"""Host side, in three floors, each importing only the floors below it:

:mod:`host.feed`
    the market data: ITCH 5.0 / MoldUDP64 spec table, codec, pcap, files, bulk parser,
    reference L3 book, sample generator, capture loading;
:mod:`host.card`
    the card: one driver API over the simulated (Verilator) and the real (XDMA) card, the
    ingress reference model, replay through the card and its report;
:mod:`host.trading`
    what the card feeds: matching engine, pre-trade risk, audit journal, trading session;

with the command line (:mod:`host.cli`) on top and :mod:`host.errors` (the user-facing error
type) beside them all. ``python -m host --help`` lists the commands.
"""
