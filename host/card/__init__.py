"""Host driver for the card (see docs/driver.md)."""
