"""``digest subscribers ...``: import and list subscribers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..subscribers import import_csv, list_subscribers
from .app import ConfigOption, app, open_config, out, say, warn

subscribers_app = typer.Typer(help="Manage subscriber lists.", no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")


@subscribers_app.command("import")
def subscribers_import(
    list_name: Annotated[
        str, typer.Argument(metavar="LIST", help="The list to import into (created if new).")
    ],
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with an 'email' column and optional 'name'; other columns become attributes."
        ),
    ],
    status: Annotated[
        str, typer.Option(help="Status of new subscribers: active or pending.")
    ] = "active",
    config: ConfigOption = None,
) -> None:
    """Import subscribers from a CSV file. Bad rows are reported and skipped."""
    _, store = open_config(config)
    report = import_csv(store, list_name, file, status=status)
    for problem in report.problems:
        warn(problem)
    say(
        f"Imported into '{list_name}': {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.kept_status} kept their unsubscribed/bounced status, "
        f"{len(report.problems)} row(s) skipped."
    )


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
    say(f"{len(rows)} subscriber(s).")
