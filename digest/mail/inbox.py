"""Where replies to the list wait: a Maildir folder, an IMAP folder (imaplib), or one
message piped by the MTA. Each source yields (name, bytes) for every message not yet
processed, and marks one processed (Maildir: moved to cur/ with the Seen flag; IMAP:
\\Seen) only when told, after its effect was committed. Nothing is ever deleted.
"""

from __future__ import annotations

import imaplib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from digest.errors import DigestError

__all__ = ["ImapInbox", "Inbox", "InboxError", "MaildirInbox", "OneMessage"]

IMAP_TIMEOUT_S = 60
MAX_MESSAGE_BYTES = 10_000_000  # a reply bigger than this is not read


class InboxError(DigestError):
    """A source of replies that cannot be read."""


class Inbox(Protocol):
    def messages(self) -> Iterator[tuple[str, bytes]]: ...

    def done(self, name: str) -> None: ...


class OneMessage:
    """One message, e.g. piped by the MTA on standard input."""

    def __init__(self, data: bytes, name: str = "stdin") -> None:
        self.data, self.name = data, name

    def messages(self) -> Iterator[tuple[str, bytes]]:
        yield self.name, self.data

    def done(self, name: str) -> None:
        pass


class MaildirInbox:
    """The messages of a Maildir not yet Seen: those in new/, and those in cur/
    without the S flag."""

    def __init__(self, path: Path) -> None:
        self.path = path
        missing = [d for d in ("new", "cur") if not (path / d).is_dir()]
        if missing:
            raise InboxError(
                f"{path}: not a Maildir (no {' or '.join(d + '/' for d in missing)})",
                hint="give the folder that holds cur/, new/ and tmp/",
            )

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for sub in ("new", "cur"):
            try:
                names = sorted(os.listdir(self.path / sub))
            except OSError as exc:
                raise InboxError(f"{self.path / sub}: cannot list it: {exc.strerror}") from None
            for name in names:
                if name.startswith(".") or (sub == "cur" and "S" in _flags(name)):
                    continue
                path = self.path / sub / name
                try:
                    if path.stat().st_size > MAX_MESSAGE_BYTES:
                        continue
                    data = path.read_bytes()
                except OSError:
                    continue  # taken by another reader meanwhile
                yield f"{sub}/{name}", data

    def done(self, name: str) -> None:
        sub, _, base = name.partition("/")
        stem = base.partition(":")[0]
        flags = "".join(sorted(set(_flags(base)) | {"S"}))
        target = self.path / "cur" / f"{stem}:2,{flags}"
        try:
            os.replace(self.path / sub / base, target)
        except OSError as exc:
            raise InboxError(f"{self.path / name}: cannot mark it seen: {exc.strerror}") from None


def _flags(name: str) -> str:
    _, sep, info = name.partition(":2,")
    return info if sep else ""


class ImapInbox:
    """The unseen messages of an IMAP folder: ``imap[s]://user[:password]@host[:port]
    [/folder]`` (folder: INBOX unless given; the password may come from elsewhere)."""

    def __init__(self, url: str, password: str = "") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
            raise InboxError(
                f"--imap {_shown(url)}: expected imap://user@host[:port][/folder] (or imaps://)"
            )
        self.shown = _shown(url)
        self.secure = parts.scheme == "imaps"
        self.host = parts.hostname
        try:
            self.port = parts.port or (993 if self.secure else 143)
        except ValueError:
            raise InboxError(f"--imap {self.shown}: the port is not a number") from None
        self.user = unquote(parts.username)
        self.password = unquote(parts.password) if parts.password else password
        self.folder = unquote(parts.path.lstrip("/")) or "INBOX"
        self.conn: imaplib.IMAP4 | None = None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        try:
            with self._connect() as conn:
                self.conn = conn
                _ok(conn.select(_quoted(self.folder)), f"select {self.folder}")
                found = _ok(conn.uid("SEARCH", "UNSEEN"), "search")
                for uid in (found[0] or b"").split():
                    data = self._fetch(conn, uid.decode())
                    if data is not None:
                        yield f"{self.folder}/{uid.decode()}", data
                conn.close()
        except (imaplib.IMAP4.error, OSError) as exc:
            raise InboxError(f"--imap {self.shown}: {exc}") from None
        finally:
            self.conn = None

    def _connect(self) -> imaplib.IMAP4:
        cls = imaplib.IMAP4_SSL if self.secure else imaplib.IMAP4
        conn = cls(self.host, self.port, timeout=IMAP_TIMEOUT_S)
        if not self.password:
            raise InboxError(
                f"--imap {self.shown}: no password",
                hint="set $DIGEST_IMAP_PASSWORD (better than putting it in the URL)",
            )
        conn.login(self.user, self.password)
        return conn

    def _fetch(self, conn: imaplib.IMAP4, uid: str) -> bytes | None:
        parts = _ok(conn.uid("FETCH", uid, "(BODY.PEEK[])"), f"fetch {uid}")
        for part in parts:
            if isinstance(part, tuple) and len(part[1]) <= MAX_MESSAGE_BYTES:
                return bytes(part[1])
        return None

    def done(self, name: str) -> None:
        assert self.conn is not None, "done() while reading messages()"
        uid = name.rpartition("/")[2]
        _ok(self.conn.uid("STORE", uid, "+FLAGS", "(\\Seen)"), f"mark {uid} seen")


def _ok(answer: tuple[str, list[Any]], what: str) -> list[Any]:
    status, data = answer
    if status != "OK":
        raise imaplib.IMAP4.error(f"{what} failed: {data!r}")
    return data


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shown(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"(//[^/:@]*):[^@/]*@", r"\1:***@", url)
