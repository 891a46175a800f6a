"""The exceptions the core raises; the CLI turns each into one line and an exit code."""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` safe to show on one line of a log or a terminal: characters that are not
    printable (line breaks, escape sequences, bidi controls) are written as Python
    escapes (``\\n``, ``\\x1b``, ``\\u202e``); everything else is left as it is."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def quoted(text: str) -> str:
    """``text`` in quotes with every unprintable character escaped (``repr``)."""
    return repr(text)


class DigestError(Exception):
    """Base of every error `digest` reports to a user.

    ``str(err)`` is the one line shown; ``hint`` says what to do next.
    """

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class ConfigError(DigestError):
    """A setting is missing, of the wrong type, or out of range."""


class DumpError(DigestError):
    """A dump file cannot be read: carries the file, the line and the problem."""

    def __init__(self, path: str, problem: str, *, line: int | None = None, hint: str = "") -> None:
        shown = printable(path)  # a file name cannot start a line of its own
        where = f"{shown}:{line}" if line is not None else shown
        super().__init__(f"{where}: {problem}", hint=hint)
        self.path = path
        self.line = line
        self.problem = problem


class TemplateError(DigestError):
    """A template is missing or does not render."""


class DeliveryError(DigestError):
    """Mail could not be delivered (the transport failed as a whole)."""


class StateError(DigestError):
    """The state database cannot be opened or is in an unexpected shape."""


class StateUnwritable(StateError):
    """The state cannot be written (a full disk, a read-only folder); reading it may
    still work, so `digest status` falls back to a read-only view."""


class StorageError(DigestError):
    """A file cannot be written or read (a full disk, a read-only folder, no permission):
    carries the path."""

    def __init__(self, path: str, problem: str, *, hint: str = "") -> None:
        super().__init__(f"{path}: {problem}", hint=hint)
        self.path = path


class StateBusy(StateError):
    """Another process kept the state database locked longer than the busy timeout:
    nothing was changed, and the same call can simply be tried again."""
