"""Where the commands write: the two consoles, and how outside text and paths are shown
(one module that every command module shares, so none imports another)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from digest.errors import printable

__all__ = ["err", "out", "safe", "shown"]

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def safe(text: str) -> str:
    """Text from outside (file names, dump text, server replies) for one line of output:
    unprintable characters escaped, no rich markup."""
    return escape(printable(text))


def shown(path: str | Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
