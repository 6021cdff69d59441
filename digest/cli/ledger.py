"""The ledger's housekeeping: ``digest ledger prune``."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import parse_duration
from ..errors import ConfigError
from ..store import ledger
from .app import ConfigOption, app, open_config, say

ledger_app = typer.Typer(help="Look after the delivery ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("prune")
def prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Prune issues sent longer ago than this (e.g. 180d).",
            show_default=False,
        ),
    ],
    config: ConfigOption = None,
) -> None:
    """Delete the per-recipient rows of issues sent before --older-than, keeping their
    counts (``history`` still shows them). Unfinished issues are never pruned."""
    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise ConfigError(f"--older-than: {exc}.") from None
    _, store = open_config(config)
    pruned = ledger.prune(store, age)
    say(
        f"Pruned {pruned.rows} ledger row(s) of {pruned.issues} issue(s) sent more than {older_than} ago."
    )
