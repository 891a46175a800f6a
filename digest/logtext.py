"""Text that reaches a log or a terminal: one line per event, whatever it quotes.

Log messages quote text from outside — dump file names, parser warnings, a relay's
reply, an address — and any of it may hold a line break (a forged log line), an escape
sequence (``ESC[2J`` clears a terminal, OSC sets its title) or a bidi control. One
function escapes it all, :func:`digest.errors.printable`; :class:`OneLine` applies it to
every record a handler writes, so each logger is covered once logging is set up with
:func:`escape_handlers`. Commands use the same function for what they print.

Escaping, not flattening: a log keeps every character, written as ``\n`` or ``\x1b``,
so the file named with a line break can still be found by its name. Text placed
where a line break would break the format (a header, a server's answer quoted in a
message) is flattened instead, by :func:`digest.text.one_line`.
"""

from __future__ import annotations

import logging

from digest.errors import printable

__all__ = ["OneLine", "escape_handlers"]


class OneLine(logging.Filter):
    """A handler filter: the record's message (format and arguments merged) with every
    unprintable character escaped, so one event is one line. A traceback (exc_info) is
    left to the formatter: it is ours, not outside text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = printable(message)
        if escaped != message or record.args:
            record.msg, record.args = escaped, None
        return True


def escape_handlers(logger: logging.Logger | None = None) -> None:
    """Give each handler of ``logger`` (default: the root logger) the OneLine filter,
    once; call it right after the handlers are set up."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, OneLine) for f in handler.filters):
            handler.addFilter(OneLine())
