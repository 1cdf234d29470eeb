"""Gateware (Amaranth HDL 0.5): ingress, ITCH decoder, order table and book, top level,
registers, synthesis driver and the Alveo platform."""
