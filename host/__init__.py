"""Host side: reference model (ITCH/MoldUDP64/pcap codec, L3 book), card driver, matching,
risk and journal. ``python -m host --help`` lists the commands."""
