"""The text cleaning: a dump's bytes as text with one kind of line break.

A BOM goes; invalid UTF-8 bytes become U+FFFD, stray control bytes and bidirectional
controls are removed, each kind reported once as a warning ``"file:line: problem"``.
A file that is empty, UTF-16 or mostly control or invalid bytes raises DumpError:
it is not a dump.
"""

from __future__ import annotations

import re

from digest.errors import DumpError

__all__ = ["decode"]

_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")
_INVALID_RE = re.compile(r"[\udc80-\udcff]+")
# Bidirectional controls (embeddings, overrides, isolates, marks): in a title they can make
# text display in another order than it is stored ("gnp.exe"), so no output gets them.
_BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]+")
_MAX_CONTROL_SHARE = 0.10
_MAX_INVALID_SHARE = 0.30
_BINARY_HINT = "a dump must be UTF-8 text saved from the papers page"


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _replace_runs(text: str, pattern: re.Pattern[str], replacement: str) -> tuple[str, int, int]:
    """(new text, characters replaced, line of the first one); linear in ``len(text)``."""
    first = pattern.search(text)
    if first is None:
        return text, 0, 0
    count = sum(match.end() - match.start() for match in pattern.finditer(text, first.start()))
    return pattern.sub(replacement, text), count, _line_of(text, first.start())


def _check_binary(data: bytes, name: str) -> None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DumpError(name, "looks like UTF-16 text", hint="save the dump as UTF-8")
    share = (len(data) - len(data.translate(None, _CONTROL_BYTES))) / len(data)
    if share >= _MAX_CONTROL_SHARE:
        raise DumpError(name, f"looks binary ({share:.0%} control bytes)", hint=_BINARY_HINT)


def decode(data: bytes, name: str, warnings: list[str]) -> str:
    """The text of ``data`` with one kind of line break; bad bytes replaced and reported."""
    if not data:
        raise DumpError(name, "empty file", hint="was it saved before the copy finished?")
    _check_binary(data, name)
    text = data.decode("utf-8", "surrogateescape").replace("\ufeff", "")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, invalid, line = _replace_runs(text, _INVALID_RE, "\ufffd")
    if invalid / len(data) >= _MAX_INVALID_SHARE:
        share = invalid / len(data)
        raise DumpError(name, f"looks binary ({share:.0%} bytes not UTF-8)", hint=_BINARY_HINT)
    if invalid:
        warnings.append(
            f"{name}:{line}: replaced {invalid} invalid UTF-8 byte(s) with U+FFFD "
            f"(first on line {line})"
        )
    text, controls, line = _replace_runs(text, _CONTROL_RE, "")
    if controls:
        warnings.append(f"{name}:{line}: removed {controls} control byte(s) (first on line {line})")
    text, bidi, line = _replace_runs(text, _BIDI_RE, "")
    if bidi:
        warnings.append(
            f"{name}:{line}: removed {bidi} bidirectional control character(s) "
            f"(first on line {line})"
        )
    if not text.strip():
        raise DumpError(name, "empty file (only blank lines)")
    return text
