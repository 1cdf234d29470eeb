"""Arguments shared by every command: one grammar for choosing symbols.

``--symbols`` takes symbols (``AAPL``) or stock locate codes (``13``), separated by commas,
spaces, or both, in one or several words: ``--symbols AAPL,MSFT 13`` is ``AAPL``, ``MSFT`` and
locate 13 for ``bbo``, ``stats``, ``replay`` and ``session`` alike. Names are ITCH 5.0 stock
symbols (up to 8 printable ASCII characters, upper-cased here as the feed spells them);
numbers are locate codes in the range of the ITCH ``stock_locate`` field. Anything else is a
usage error (exit 2) before any input is read.
"""

from __future__ import annotations

import argparse

from host.feed.record_map import LOCATE_MAX, RECORD_WIDTHS

__all__ = ["LOCATE_MAX", "SYMBOL_MAX_LEN", "parse_symbols", "add_symbols_argument"]

SYMBOL_MAX_LEN = RECORD_WIDTHS["stock"] // 8
"""Longest stock symbol (the ITCH ``stock`` field, in characters)."""


def parse_symbols(text: str) -> list[str | int]:
    """One ``--symbols`` word -> symbols (``str``) and locate codes (``int``).

    Raises
    ------
    argparse.ArgumentTypeError
        A locate code out of range, a symbol too long or not printable ASCII, or no item.
    """
    out: list[str | int] = []
    for item in text.replace(",", " ").split():
        if item.isdigit():
            loc = int(item)
            if loc > LOCATE_MAX:
                raise argparse.ArgumentTypeError(
                    f"locate code {item} is out of range (0..{LOCATE_MAX})"
                )
            out.append(loc)
        elif len(item) > SYMBOL_MAX_LEN:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not a stock symbol (at most {SYMBOL_MAX_LEN} characters)"
            )
        elif not (item.isascii() and item.isprintable()):
            raise argparse.ArgumentTypeError(f"{item!r} is not a stock symbol (ASCII only)")
        else:
            out.append(item.upper())
    if not out:
        raise argparse.ArgumentTypeError("no symbol given")
    return out


class _Extend(argparse.Action):
    """Flatten every word's list into one list, keeping the order and dropping repeats."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = list(getattr(namespace, self.dest, None) or [])
        for chunk in values:
            for v in chunk:
                if v not in seen:
                    seen.append(v)
        setattr(namespace, self.dest, seen)


def add_symbols_argument(p: argparse.ArgumentParser, *, default_help: str) -> None:
    """Add ``--symbols`` with the one grammar of this module; ``default_help`` says what is
    chosen without it."""
    p.add_argument(
        "--symbols",
        nargs="+",
        type=parse_symbols,
        action=_Extend,
        metavar="SYM",
        help="symbols or stock locate codes, separated by commas or spaces "
        f"(e.g. AAPL,MSFT 13); default: {default_help}",
    )


def split_symbols(items) -> tuple[list[int], list[str]]:
    """``parse_symbols`` output -> (locate codes, symbol names)."""
    items = items or []
    return [x for x in items if isinstance(x, int)], [x for x in items if isinstance(x, str)]
