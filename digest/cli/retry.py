"""``digest retry NAME``: send the failed deliveries of the last issue again."""

from __future__ import annotations

from typing import Annotated

import typer

from ..store import ledger
from .app import ConfigOption, app, open_config, say
from .core import run


@app.command()
def retry(
    name: Annotated[str, typer.Argument(help="The newsletter, as named in schedules.yaml.")],
    config: ConfigOption = None,
) -> None:
    """Send the last issue again to the subscribers whose delivery failed, once you
    fixed the cause (a full mailbox emptied, a content rule met). Hard-bounced,
    unsubscribed and suppressed addresses are not retried; nobody gets it twice."""
    cfg, store = open_config(config)
    cfg.newsletter(name)  # an unknown newsletter is a ConfigError
    retried = ledger.requeue_failed(store, name)
    if retried is None:
        say(f"'{name}' has sent no issue yet: nothing to retry.")
        return
    number, rows = retried
    if not rows:
        say(f"Issue #{number} of '{name}' has no failed delivery that may be retried.")
        return
    say(
        f"Issue #{number} of '{name}': {rows} failed deliver{'y' if rows == 1 else 'ies'} queued again."
    )
    run(name, dry_run=False, config=config)
