"""``digest subscribers ...``: import, export, add, remove, list and count subscribers,
and manage the global suppression list."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import SubscriberError
from ..subscribers import (
    STATUSES,
    list_subscribers,
    remove_subscriber,
    status_counts,
    subscriber_details,
)
from ..subscribers_csv import export_csv, import_csv
from ..subscriptions import (
    Status,
    add,
    lists_with_status,
    reactivate,
    suppress_address,
    unsuppress_address,
)
from .app import ConfigOption, app, open_config, out, say, warn

subscribers_app = typer.Typer(help="Manage subscriber lists.", no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")

ListArgument = Annotated[str, typer.Argument(metavar="LIST", help="The subscriber list.")]
StatusOption = Annotated[
    str, typer.Option(help="Status of new subscribers: active, or pending (double opt-in).")
]


def _counts_line(counts: dict[str, int]) -> str:
    parts = [f"{counts[s]} {s}" for s in STATUSES]
    return ", ".join(parts) + f"; {counts['suppressed']} suppressed, {counts['paused']} paused"


@subscribers_app.command("import")
def subscribers_import(
    list_name: Annotated[
        str, typer.Argument(metavar="LIST", help="The list to import into (created if new).")
    ],
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV (UTF-8) with an 'email' column and optional 'name'; other columns become attributes."
        ),
    ],
    status: StatusOption = "active",
    config: ConfigOption = None,
) -> None:
    """Import subscribers from a CSV file. Bad rows are reported and skipped."""
    _, store = open_config(config)
    report = import_csv(store, list_name, file, status=status)
    for problem in report.problems:
        warn(problem)
    say(
        f"Imported into '{list_name}': {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.kept_status} kept their status "
        "(an unsubscribe, bounce or complaint stands), "
        f"{len(report.problems)} row(s) skipped."
    )


@subscribers_app.command("export")
def subscribers_export(
    list_name: ListArgument,
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="CSV file to write (default: stdout).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Export a list as CSV (email, name, status, when and how it last changed, attributes)."""
    _, store = open_config(config)
    if output is None:
        count = export_csv(store, list_name, sys.stdout)
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as handle:
            count = export_csv(store, list_name, handle)
    except OSError as exc:
        raise SubscriberError(f"{output} cannot be written ({exc.strerror}).") from None
    say(f"Exported {count} subscriber(s) of '{list_name}' to {output}.")


@subscribers_app.command("add")
def subscribers_add(
    list_name: ListArgument,
    email: Annotated[str, typer.Argument(help="The address to add.")],
    name: Annotated[str, typer.Option(help="The subscriber's name.")] = "",
    status: StatusOption = "active",
    config: ConfigOption = None,
) -> None:
    """Add one subscriber (an unsubscribed or bounced one keeps that status)."""
    _, store = open_config(config)
    subscriber, created = add(store, list_name, email, name=name, status=status)
    if created:
        say(f"Added {subscriber.email} on '{list_name}' ({status}).")
        return
    now = subscriber_details(store, list_name, subscriber.email).status
    if now == status:
        say(f"{subscriber.email} was already on '{list_name}' and is {now}.")
        return
    hint = (
        f" If the bounce was not about the address: digest subscribers reactivate {subscriber.email}"
        if now == Status.BOUNCED
        else " Only the person can come back, through the confirmation link."
    )
    say(f"{subscriber.email} is on '{list_name}' and stays {now}; nothing changed.{hint}")


@subscribers_app.command("remove")
def subscribers_remove(
    list_name: ListArgument,
    email: Annotated[str, typer.Argument(help="The address to remove.")],
    forget: Annotated[
        bool,
        typer.Option(
            "--forget", help="Delete the subscriber and their history instead of unsubscribing."
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Unsubscribe an address from a list (or, with --forget, erase it)."""
    _, store = open_config(config)
    say(remove_subscriber(store, list_name, email, forget=forget))


@subscribers_app.command("list")
def subscribers_list(
    list_name: Annotated[str, typer.Argument(metavar="LIST", help="The list to show.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array of {email, name, status}.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """List the subscribers of a list with their status."""
    _, store = open_config(config)
    rows = list_subscribers(store, list_name)
    if as_json:
        print(
            json.dumps(
                [{"email": s.email, "name": s.name, "status": st} for s, st in rows],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    table = Table("email", "name", "status")
    for subscriber, status in rows:
        table.add_row(subscriber.email, subscriber.name, status)
    out.print(table)
    say(f"{len(rows)} subscriber(s): {_counts_line(status_counts(store, list_name))}.")


@subscribers_app.command("show")
def subscribers_show(
    list_name: ListArgument,
    email: Annotated[str, typer.Argument(help="The subscriber's address.")],
    config: ConfigOption = None,
) -> None:
    """One subscriber: status, attributes, preferences, suppression and every status
    change with when and where it came from."""
    _, store = open_config(config)
    d = subscriber_details(store, list_name, email)
    prefs = d.preferences
    say(f"{d.subscriber.email} ({d.subscriber.name or 'no name'}) on '{list_name}': {d.status}")
    say(
        f"  added: {d.created_at:%Y-%m-%d %H:%M} UTC; attributes: {json.dumps(d.attributes, ensure_ascii=False)}"
    )
    say(
        f"  sections: {', '.join(prefs.sections) if prefs.sections is not None else 'all'}; "
        f"paused until: {f'{prefs.paused_until:%Y-%m-%d}' if prefs.paused_until else 'not paused'}"
    )
    say(f"  suppressed: {d.suppressed or 'no'}; soft bounces: {d.soft_bounces}")
    table = Table("when (UTC)", "from", "to", "source", "detail")
    for e in d.history:
        table.add_row(
            f"{e.created_at:%Y-%m-%d %H:%M:%S}", e.previous or "-", e.status, e.source, e.detail
        )
    out.print(table)


@subscribers_app.command("counts")
def subscribers_counts(
    list_name: ListArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    config: ConfigOption = None,
) -> None:
    """How many subscribers a list has per status (and suppressed, paused)."""
    _, store = open_config(config)
    counts = status_counts(store, list_name)
    if as_json:
        print(json.dumps(counts))
        return
    say(f"'{list_name}': {_counts_line(counts)}.")


@subscribers_app.command("suppress")
def subscribers_suppress(
    email: Annotated[str, typer.Argument(help="The address never to send to again.")],
    config: ConfigOption = None,
) -> None:
    """Add an address to the global suppression list (it gets nothing from any list)."""
    _, store = open_config(config)
    new = suppress_address(store, email)
    say(f"{email} {'is now' if new else 'was already'} suppressed on every list.")


@subscribers_app.command("unsuppress")
def subscribers_unsuppress(
    email: Annotated[str, typer.Argument(help="The address to take off the suppression list.")],
    config: ConfigOption = None,
) -> None:
    """Take an address off the suppression list; its subscribers keep their status."""
    _, store = open_config(config)
    removed = unsuppress_address(store, email)
    say(f"{email} {'was taken off' if removed else 'was not on'} the suppression list.")
    bounced = lists_with_status(store, email, Status.BOUNCED)
    if bounced:
        say(
            f"It is still bounced on {', '.join(repr(n) for n in bounced)}: "
            f"digest subscribers reactivate {email} makes it active again."
        )


@subscribers_app.command("reactivate")
def subscribers_reactivate(
    email: Annotated[str, typer.Argument(help="The address a bounce made 'bounced'.")],
    list_name: Annotated[
        str | None, typer.Option("--list", help="Only on this list (default: every list).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Make a bounced address active again (and take it off the suppression list when a
    bounce put it there), recorded in its history: for bounces that were not about the
    address, such as a relay's policy refusal. Unsubscribed and complained addresses stay."""
    _, store = open_config(config)
    lists = reactivate(store, email, list_name)
    say(f"{email} is active again on {', '.join(repr(n) for n in lists)}.")
