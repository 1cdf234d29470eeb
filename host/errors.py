"""The user-facing error type: every floor of host/ may raise it, the command line prints it.

A :class:`UserError` is a problem with the user's input or setup (a missing file, an unknown
format, a bad option value), not a bug: ``python -m host`` prints its message as one line on
stderr and exits with status 1, never a traceback.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A user-facing error: printed as one line, exit status 1."""
