"""Board platforms and card wrappers (Alveo U250)."""
