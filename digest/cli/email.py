"""``digest send-test``: the real next issue to a few addresses, marked "[TEST]"."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from ..models import DeliveryStatus
from ..pipeline import Pipeline
from .app import ConfigOption, app, open_config, report_problems, say, warn


@app.command("send-test")
def send_test(
    name: Annotated[str, typer.Argument(help="The newsletter, as named in schedules.yaml.")],
    to: Annotated[
        list[str],
        typer.Option("--to", help="An address to send the test to; repeat for several."),
    ],
    config: ConfigOption = None,
) -> None:
    """Send the next issue to the given addresses with "[TEST]" in the subject.

    Goes through the newsletter's backend; records nothing and marks nothing sent.
    """
    cfg, store = open_config(config)
    result = asyncio.run(Pipeline(cfg, store).send_test(name, to))
    report_problems(result.built.sources, result.built.problems)
    for problem in result.problems:
        warn(f"skipped {problem}")
    if result.issue_number is None:
        say(f"Nothing to send for '{name}': no new articles since the last issue.")
        return
    sent = [d for d in result.deliveries if d.status is DeliveryStatus.SENT]
    for delivery in result.deliveries:
        if delivery.status is not DeliveryStatus.SENT:
            warn(f"{delivery.recipient}: {delivery.error}")
    say(
        f"Test of issue #{result.issue_number} of '{name}' sent to {len(sent)} of "
        f"{len(to)} address(es); nothing was recorded as sent."
    )
    if len(sent) < len(to):
        raise typer.Exit(1)
