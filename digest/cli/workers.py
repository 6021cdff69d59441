"""The fleet's commands: ``worker`` (a Celery worker of digest's app) and ``status``
(an issue's progress read from the ledger); ``run`` hands its send to the fleet when
schedules.yaml has ``workers:`` (``send_on_workers``)."""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer

from ..config import Config
from ..store import Store, ledger
from ..store.issues import StoredIssue, held_elsewhere
from ..store.runs import issue_history
from .app import ConfigOption, app, err, open_config, say, state


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-n", min=1, help="Tasks this worker runs at once.")
    ] = 1,
    config: ConfigOption = None,
) -> None:
    """Run a Celery worker that sends the issues `digest run` publishes (needs `workers:`)."""
    from ..workers import make_app

    cfg, store = open_config(config)
    store.close()  # migrated; each task opens its own
    # A name of its own per process (Celery's default, celery@host, is one per machine):
    # remote control (Flower, `celery inspect`) addresses each worker by it.
    name = f"digest-{os.getpid()}@%h"
    make_app(cfg).worker_main(
        ["worker", f"--concurrency={concurrency}", f"--hostname={name}", "--loglevel=INFO"]
    )


def _line(name: str, number: int, counts: dict[str, int]) -> str:
    total = sum(counts.values())
    queued = counts.get("queued", 0)
    return (
        f"Issue #{number} of '{name}': {total - queued}/{total} settled, "
        f"{counts.get('sent', 0)} sent, {counts.get('failed', 0)} failed, "
        f"{counts.get('skipped', 0)} skipped, {queued} queued."
    )


def send_on_workers(cfg: Config, store: Store, stored: StoredIssue, *, detach: bool) -> int:
    """Publish the issue's tasks and, unless ``detach``, show its progress from the
    ledger until every row is settled; the number of failed rows."""
    from ..workers import publish

    assert cfg.workers is not None
    tasks = publish(cfg, stored.id, store)
    say(
        f"Issue #{stored.number} of '{stored.newsletter}': {tasks} task(s) published to the workers."
    )
    if detach:
        say(f"'digest status {stored.newsletter}' shows its progress.")
        return 0
    last = 0.0
    settled, moved = -1, time.monotonic()
    while True:
        asked = time.monotonic()
        counts = ledger.counts(store, stored.id)
        # Counting a large issue's rows costs the database (half a second at 1,000,000):
        # it is asked at most a tenth of the time.
        pause = max(1.0, 10 * (time.monotonic() - asked))
        queued = counts.get("queued", 0)
        if not queued:
            break
        now = time.monotonic()
        if (done := sum(counts.values()) - queued) != settled:
            settled, moved = done, now
        elif now - moved >= cfg.workers.republish_after and _lost(cfg, store, stored):
            tasks = publish(cfg, stored.id, store)
            say(
                f"No row of issue #{stored.number} settled for {now - moved:.0f} s, no worker "
                f"holds one and the broker queue is empty: published {tasks} task(s) again "
                "(a restarted broker may have lost them)."
            )
            moved = now
        if not state.quiet and now - last >= 5:
            err.print(
                _line(stored.newsletter, stored.number, counts), highlight=False, markup=False
            )
            last = now
        time.sleep(pause)
    ledger.finish(store, stored.id)
    say(_line(stored.newsletter, stored.number, counts))
    return counts.get("failed", 0)


def _lost(cfg: Config, store: Store, stored: StoredIssue) -> bool:
    """Whether the issue's tasks look lost: no process holds a row of it and the broker
    queue is empty (a broker that cannot be asked is not taken to have lost them)."""
    from ..workers import waiting

    return not held_elsewhere(store, stored.id, "") and waiting(cfg) == 0


@app.command()
def status(
    name: Annotated[str, typer.Argument(help="The newsletter, as named in schedules.yaml.")],
    config: ConfigOption = None,
) -> None:
    """The progress of the newsletter's latest issue, read from the ledger."""
    cfg, store = open_config(config)
    cfg.newsletter(name)
    latest = next(iter(issue_history(store, name, limit=1)), None)
    if latest is None:
        say(f"'{name}' has no issue yet.")
        return
    say(_line(name, latest.number, latest.deliveries) + f" ({latest.status})")
