"""Test-wide settings."""

import os

# itchfeed silently switches to its C++ backend (itchcpp) when that is installed; the decoding
# cross-check wants the independent pure-Python decoder, so pin it here before any import.
os.environ.setdefault("ITCH_NO_CPP", "1")
