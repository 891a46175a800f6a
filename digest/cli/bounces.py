"""`digest bounces`: read the mail sent back to the list (bounces, unsubscribe requests
by mail) from a Maildir, an IMAP folder or a pipe from the MTA; a thin command over
App.process_replies."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.app import App
    from digest.mail.inbox import Inbox

EX_TEMPFAIL = 75  # sysexits.h: the MTA keeps a piped message and tries again later
PIPED_MAX_BYTES = 10_000_000


@click.command("bounces")
@click.argument("source", required=False, metavar="[-]")
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    help="A Maildir folder of replies; the messages not yet seen are read, then marked seen.",
)
@click.option(
    "--imap",
    metavar="URL",
    help="imap[s]://user@host[:port][/folder] (default folder INBOX); the password from "
    "$DIGEST_IMAP_PASSWORD. Unseen messages are read, then marked seen.",
)
@click.option(
    "--recipient",
    multiple=True,
    metavar="ADDRESS",
    help="With -: the envelope recipient the MTA gives (Postfix pipe: ${original_recipient}).",
)
@click.pass_obj
def bounces(
    obj: Any, source: str | None, maildir: Path | None, imap: str | None, recipient: tuple[str, ...]
) -> None:
    """Apply the mail sent back to the list: hard bounces and unsubscribe requests.

    Reads a Maildir (--maildir PATH), an IMAP folder (--imap URL), or one message on
    standard input (-, for an MTA's pipe). A delivery report (DSN) whose Action is
    failed with a 5.x.x Status marks the subscriber bounced; a temporary one (4.x.x)
    is ignored. A message whose Subject is "unsubscribe TOKEN" (the List-Unsubscribe
    mailto link) unsubscribes. The subscriber is found by the VERP address (email.bounce_address),
    the returned Message-ID or the unsubscribe token, never by an address alone.
    Running it again on the same messages changes nothing. One line per message.

    \b
    Postfix, master.cf:  digest-bounces unix - n n - - pipe
        flags=q user=digest argv=digest bounces --recipient ${original_recipient} -
    """
    from digest.config import IMAP_PASSWORD_ENV
    from digest.mail.inbox import ImapInbox, MaildirInbox

    app = obj.app()  # the settings are checked before anything else
    chosen = [x for x in (source, maildir, imap) if x]
    if len(chosen) != 1 or (source is not None and source != "-"):
        raise click.UsageError("give exactly one of --maildir PATH, --imap URL or -")
    inbox: Inbox
    if maildir is not None:
        inbox = MaildirInbox(maildir)
    elif imap is not None:
        inbox = ImapInbox(imap, os.environ.get(IMAP_PASSWORD_ENV, ""))
    else:
        _piped(app, recipient)
        return
    _run(app, inbox, ())


def _run(app: App, inbox: Inbox, recipients: tuple[str, ...]) -> None:
    from digest.app import delivering

    counts: dict[str, int] = {}
    for name, outcome in delivering.process_replies(app, inbox, recipients):
        click.echo(f"{name}: {outcome.line}")
        counts[outcome.action] = counts.get(outcome.action, 0) + 1
    if not counts:
        click.echo("no new messages")


def _piped(app: App, recipients: tuple[str, ...]) -> None:
    """One message from the MTA: a failure to apply it exits 75 (EX_TEMPFAIL), so the
    MTA keeps it and tries again; a message that is not ours is still a success."""
    data = sys.stdin.buffer.read(PIPED_MAX_BYTES + 1)
    if len(data) > PIPED_MAX_BYTES:
        click.echo("stdin: bigger than a reply to the list can be: ignored")
        return
    from digest.mail.inbox import OneMessage

    try:
        _run(app, OneMessage(data), recipients)
    except DigestError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)
