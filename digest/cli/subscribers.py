"""`digest subscribers add|remove|list|import|export` and `digest unsubscribe TOKEN`:
thin commands over subscribers.SubscriberBook (`list` and `unsubscribe` first through
the driver alone: app/subscriber_glance.py, so that they start at once). Errors come
back as one line (the main group turns DigestError into a ClickException)."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest.fsutil import atomic_write
from digest.state.states import SubscriberStatus

if TYPE_CHECKING:
    from digest.app import App
    from digest.app.subscribing import SubscriberBook
    from digest.mail.subscribers import ImportReport

STATUSES = tuple(s.value for s in SubscriberStatus)


def book(obj: Any, *, read_only: bool = False, app: App | None = None) -> SubscriberBook:
    """The subscriber list of the app the main group's object builds (`read_only`: the
    state is not created when it does not exist yet)."""
    from digest.app import subscribing

    return subscribing.book(app or obj.app(), read_only=read_only)


@click.group("subscribers")
def subscribers() -> None:
    """Manage who receives the digest: add, remove, list, import and export (CSV).

    Addresses are validated (no network look-up) and folded: case and surrounding
    spaces do not make a second subscriber. Each subscriber can choose topics (names or
    slugs from `digest areas`, ";"-separated); a topic takes its papers and those of
    every topic under it, and a digest with none of them sends them no message.
    """


WATCH_HELP = (
    'Phrases to watch, ";"-separated: a paper naming one opens their e-mail ("For you"), '
    'even outside their topics; "" clears. Default: unchanged.'
)
MUTE_HELP = 'Phrases to mute, ";"-separated: a paper naming one never reaches them; "" clears.'


@subscribers.command("add")
@click.argument("address")
@click.option("--name", default=None, help="The subscriber's name (used in the To header).")
@click.option(
    "--topics",
    "--themes",
    "themes",
    default=None,
    metavar="A;B",
    help='Topic names or slugs, ";"-separated; "" for every topic. Default: unchanged. '
    "(--themes: the old spelling, still accepted.)",
)
@click.option(
    "--resubscribe",
    is_flag=True,
    help="Make an unsubscribed or bounced address active again (they asked to come back).",
)
@click.option("--watch", default=None, metavar="A;B", help=WATCH_HELP)
@click.option("--mute", default=None, metavar="A;B", help=MUTE_HELP)
@click.pass_obj
def add(
    obj: Any,
    address: str,
    name: str | None,
    themes: str | None,
    resubscribe: bool,
    watch: str | None,
    mute: str | None,
) -> None:
    """Add a subscriber, or update the name and topics of an existing one.

    Someone who unsubscribed stays unsubscribed unless --resubscribe is given.
    """
    the_book = book(obj)
    outcome = the_book.add(
        address, name=name, themes=themes, resubscribe=resubscribe, watch=watch, mute=mute
    )
    status = the_book.status_of(address) if outcome != "added" else "active"
    if outcome == "kept" or status not in (None, "active"):
        done = "" if outcome in ("kept", "unchanged") else f"{outcome}, "
        click.echo(
            f"{address.strip()}: {done}still {status or 'unsubscribed'}; use --resubscribe "
            "to make it active (only if they asked to come back)"
        )
    else:
        click.echo(f"{address.strip()}: {outcome}")


@subscribers.command("remove")
@click.argument("addresses", nargs=-1, required=True)
@click.pass_obj
def remove(obj: Any, addresses: tuple[str, ...]) -> None:
    """Forget subscribers and their delivery history (to stop mail but keep the
    record, use `digest unsubscribe` with their token). Exits 1 if one is unknown."""
    the_book = book(obj)
    unknown = [a for a in addresses if not the_book.remove(a)]
    for a in addresses:
        click.echo(f"{a.strip()}: {'not a subscriber' if a in unknown else 'removed'}")
    if unknown:
        raise click.ClickException(f"{len(unknown)} address(es) were not subscribers")


@subscribers.command("list")
@click.option(
    "--status", type=click.Choice(STATUSES), default=None, help="Only subscribers in this state."
)
@click.pass_obj
def list_(obj: Any, status: str | None) -> None:
    """List subscribers, one a line: address, status, topics (or "all"), name."""
    from digest.app import subscriber_glance

    app = obj.app()  # builds nothing: the list is read with the driver alone if it can be
    rows: Sequence[Any] | None = subscriber_glance.listing(app, status)
    if rows is None:  # the ordinary way
        rows = book(obj, read_only=True, app=app).list(status)
    for s in rows:
        themes = ";".join(s.themes) or "all"
        bounces = f" ({s.bounce_count} bounces)" if s.bounce_count else ""
        click.echo(f"{s.address}\t{s.status}{bounces}\t{themes}\t{s.name}".rstrip())
    click.echo(f"{len(rows)} subscriber(s)", err=True)


@subscribers.command("import")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--encoding",
    metavar="NAME",
    default=None,
    help="Read the file in this text encoding (e.g. windows-1252, windows-1250, utf-8) "
    "instead of finding it.",
)
@click.pass_obj
def import_(obj: Any, file: io.BufferedIOBase, encoding: str | None) -> None:
    """Import subscribers from a CSV file ("-" for standard input) with a header row
    naming the columns email,name,themes,status (only email is required; the topics
    column may be called themes or topics), or from a plain list of addresses, one a
    line. An unknown topic rejects its row, as `add` does, naming the closest topic.

    The encoding is found from the file (UTF-8; UTF-16 or UTF-32 with a BOM as Excel
    writes them; else Windows-1252 unless the text is in another script) and printed;
    name another with --encoding. The delimiter is found too (comma, semicolon, tab
    or bar). A bad row is reported with its line number and the good rows still go in;
    the command then exits 1. Unsubscribed addresses are never reactivated.
    """
    subscribers = book(obj)  # the settings are checked before anything else
    name = Path(str(getattr(file, "name", "-"))).name
    from digest.mail.csvfile import read_table

    table = read_table(file.read(), name, encoding)
    delimiter = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "bar"}.get(
        table.delimiter, repr(table.delimiter)
    )
    click.echo(
        f"read {table.rows} row(s) of {name} as {table.encoding}, {delimiter}-separated",
        err=True,
    )
    report = subscribers.import_csv(io.StringIO(table.text, newline=""))
    print_import(report)
    if report.errors:
        raise click.ClickException(
            f"{len(report.errors)} row(s) rejected (listed above); the other rows were imported"
        )


def print_import(report: ImportReport) -> None:
    for line, note in report.notes:
        click.echo(f"line {line}: {note}", err=True)
    for line, problem in report.errors:
        click.echo(f"line {line}: {problem}", err=True)
    click.echo(f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged")


@subscribers.command("export")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file (atomically) instead of standard output.",
)
@click.pass_obj
def export(obj: Any, out_path: Path | None) -> None:
    """Write every subscriber as CSV: email,name,themes,status (themes: their topics;
    tokens are not exported). The file imports back as it is."""
    buffer = io.StringIO()
    n = book(obj, read_only=True).export_csv(buffer)
    if out_path is None:
        sys.stdout.write(buffer.getvalue())
    else:
        atomic_write(out_path, buffer.getvalue(), mode=0o600)  # addresses: the owner's only
        click.echo(f"wrote {n} subscriber(s) to {out_path}", err=True)


@click.command("unsubscribe")
@click.argument("token")
@click.pass_obj
def unsubscribe(obj: Any, token: str) -> None:
    """Unsubscribe the subscriber whose unsubscribe link carries TOKEN, at once.

    Running it again changes nothing. Their pending messages are not sent. A token made
    before tokens stopped beginning with "-" needs `--` before it:

    \b
        digest unsubscribe -- TOKEN
    """
    from digest.app import subscriber_glance

    app = obj.app()
    result: Any = subscriber_glance.unsubscribe(app, token)
    if result is None:  # the ordinary way
        result = book(obj, app=app).unsubscribe(token)
    if result is None or result.address is None:
        raise click.ClickException("no subscriber has this unsubscribe token")
    state = "was already unsubscribed" if result.already else "unsubscribed"
    click.echo(f"{result.address}: {state}")
