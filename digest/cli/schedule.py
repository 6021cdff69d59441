"""The scheduling commands: ``schedule`` (the daemon), ``schedules`` and ``history``."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from ..config import Config
from ..schedule import Daemon
from ..store import Store
from ..store.runs import issue_history, last_run
from ..triggers import next_run
from .app import ConfigOption, app, open_config, out, say, state

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@app.command()
def schedule(
    config: ConfigOption = None,
    watch_interval: Annotated[
        float,
        typer.Option(help="Seconds between checks of schedules.yaml for changes.", min=0.1),
    ] = 2.0,
) -> None:
    """Run the scheduler: send each enabled newsletter at its time, until SIGTERM.

    SIGHUP or an edited schedules.yaml reloads it; SIGTERM finishes the batch in flight.
    """
    # A daemon's log is its output: INFO by default, DEBUG with --verbose, errors with --quiet.
    level = logging.DEBUG if state.verbose else logging.ERROR if state.quiet else logging.INFO
    logging.getLogger("digest").setLevel(level)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    Daemon(config or state.config, watch_interval=watch_interval).serve()


def describe(config: Config, store: Store, now: datetime) -> list[dict[str, Any]]:
    """Each newsletter's next run (its time zone and UTC), last issue and last result."""
    rows = []
    for name, newsletter in config.newsletters.items():
        when, deferred = next_run(newsletter, now) if newsletter.enabled else (None, False)
        issue = next(iter(issue_history(store, name, limit=1)), None)
        run = last_run(store, name)
        rows.append(
            {
                "name": name,
                "enabled": newsletter.enabled,
                "cron": newsletter.crontab,
                "timezone": newsletter.timezone,
                "send_window": newsletter.send_window,
                "next_run": _iso(when),
                "next_run_utc": _iso(when.astimezone(UTC)) if when else None,
                "deferred_by_window": deferred,
                "last_issue": None
                if issue is None
                else {
                    "number": issue.number,
                    "status": issue.status,
                    "created_at": _iso(issue.created_at),
                    "sent_at": _iso(issue.sent_at),
                },
                "last_result": None
                if run is None
                else {
                    "slot": _iso(run.slot),
                    "status": run.status,
                    "message": run.message,
                    "finished_at": _iso(run.finished_at),
                },
            }
        )
    return rows


@app.command()
def schedules(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """List the newsletters with their next run, last issue and last result."""
    cfg, store = open_config(config)
    rows = describe(cfg, store, datetime.now(UTC))
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table("name", "next run (local)", "next run (UTC)", "last issue", "last result")
    for row in rows:
        issue = row["last_issue"]
        result = row["last_result"]
        table.add_row(
            row["name"],
            (row["next_run"] or "disabled") + (" (window)" if row["deferred_by_window"] else ""),
            row["next_run_utc"] or "-",
            f"#{issue['number']} {issue['status']}" if issue else "-",
            f"{result['status']}: {result['message']}" if result else "-",
        )
    out.print(table)


def history_rows(store: Store, name: str) -> list[dict[str, Any]]:
    """The issues of ``name``, newest first, with item and delivery counts."""
    return [
        {
            "number": issue.number,
            "date": issue.issue_date,
            "status": issue.status,
            "subject": issue.subject,
            "created_at": _iso(issue.created_at),
            "sent_at": _iso(issue.sent_at),
            "items": issue.items,
            "recipients": sum(issue.deliveries.values()),
            "sent": issue.deliveries.get("sent", 0),
            "failed": issue.deliveries.get("failed", 0),
            "skipped": issue.deliveries.get("skipped", 0),
            "queued": issue.deliveries.get("queued", 0),
        }
        for issue in issue_history(store, name)
    ]


@app.command()
def history(
    name: Annotated[str, typer.Argument(help="The newsletter, as named in schedules.yaml.")],
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The issues a newsletter has sent: when, items, recipients and failures."""
    cfg, store = open_config(config)
    cfg.newsletter(name)  # an unknown name is an error listing the known ones
    rows = history_rows(store, name)
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        say(f"No issues of '{name}' yet.")
        return
    table = Table("#", "date", "status", "sent at", "items", "recipients", "sent", "failed")
    for row in rows:
        table.add_row(
            str(row["number"]),
            row["date"],
            row["status"],
            row["sent_at"] or "-",
            str(row["items"]),
            str(row["recipients"]),
            str(row["sent"]),
            str(row["failed"]),
        )
    out.print(table)
