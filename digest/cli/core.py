"""The pipeline commands: preview, run, extract."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..backends.outbox import OutboxBackendConfig
from ..collect.fetch import Fetcher, Rules
from ..config import load_config
from ..dispatch import SendProgress
from ..extract import extract
from ..extract.css import unmatched
from ..models import Corrections, Page
from ..pipeline import Pipeline
from ..reports import PreviewFiles, RunReport
from ..urls import to_url
from .app import ConfigOption, app, err, open_config, out, report_problems, say, state, warn
from .workers import send_on_workers


@app.command()
def preview(
    name: Annotated[str, typer.Argument(help="The newsletter, as named in schedules.yaml.")],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for NAME.html, NAME.txt and NAME.eml.")
    ] = Path("preview"),
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the HTML in a browser.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Build the next issue and write it to files. Sends nothing, marks nothing sent."""
    cfg, store = open_config(config)
    result = asyncio.run(Pipeline(cfg, store).preview(name, out_dir))
    if not isinstance(result, PreviewFiles):
        report_problems(result.sources, result.problems)
        say(f"Nothing to preview for '{name}': no new articles since the last issue.")
        return
    built = result.built
    report_problems(built.sources, built.problems)
    assert built.issue is not None and built.rendered is not None
    say(
        f"Issue #{built.issue.number} of '{name}': {len(built.issue.items)} item(s), subject: {built.rendered.subject}"
    )
    for note in built.rendered.notes:
        say(f"note: {note}")
    say(f"HTML:  {result.html}")
    say(f"Text:  {result.text}")
    say(f"Email: {result.eml}")
    if open_browser:
        webbrowser.open(result.html.resolve().as_uri())


def _log_progress(every: float = 10.0) -> Callable[[SendProgress, int], None]:
    """A progress callback that prints a line at most every ``every`` seconds (no terminal)."""
    started = last = time.monotonic()

    def log_line(done: SendProgress, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < every and done.settled < total:
            return
        last = now
        rate = done.settled / max(now - started, 1e-6)
        eta = (total - done.settled) / rate if rate else 0
        err.print(
            f"sending: {done.settled}/{total} settled, {done.sent} sent, {done.failed} failed, "
            f"{rate:.0f} msg/s, about {eta:.0f}s left",
            highlight=False,
            markup=False,
        )

    return log_line


def _print_run(report: RunReport) -> None:
    report_problems(report.sources, report.problems)
    for note in report.notes:
        say(f"note: {note}")
    say(report.message)
    if report.send:
        for reason, count in report.send.reasons[:10]:
            err.print(f"  failed x{count}: {reason}", highlight=False, markup=False)


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="The newsletter, as named in schedules.yaml.")],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Build the issue and count recipients; send and record nothing."
        ),
    ] = False,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="With workers: publish the send and return at once ('digest status NAME').",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Collect, build and send the next issue to the newsletter's list, and record it.

    Resumes an issue an interrupted run left unfinished; with nothing new, sends nothing.
    With `workers:` in schedules.yaml the workers send it and this shows the progress.
    """
    cfg, store = open_config(config)
    pipeline = Pipeline(cfg, store)
    if cfg.workers is not None and not dry_run:
        _run_on_workers(pipeline, name, detach=detach)
        return
    # SIGTERM (systemd stop, Kubernetes eviction) ends the send after the batch in flight;
    # the issue stays resumable by the next run.
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    if sys.stderr.isatty() and not state.quiet:
        with Progress(
            TextColumn("Sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("sent {task.fields[sent]}, failed {task.fields[failed]}"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("send", total=None, sent=0, failed=0, rate="")

            def show(done: SendProgress, total: int) -> None:
                bar.update(
                    task, completed=done.settled, total=total, sent=done.sent, failed=done.failed
                )
                speed = bar.tasks[0].speed
                bar.update(task, rate=f"{speed:.0f} msg/s" if speed else "")

            report = asyncio.run(
                pipeline.run(name, dry_run=dry_run, progress=show, stop=stopping.is_set)
            )
    else:
        report = asyncio.run(
            pipeline.run(
                name,
                dry_run=dry_run,
                progress=None if state.quiet else _log_progress(),
                stop=stopping.is_set,
            )
        )
    _print_run(report)
    backend = cfg.backends[cfg.newsletter(name).backend]
    if report.send and report.send.sent and isinstance(backend, OutboxBackendConfig):
        say(f"Delivered messages: {Path(backend.path) / 'new'}")
    if report.send and report.send.interrupted:
        warn(f"stopped by SIGTERM; 'digest run {name}' sends the rest of this issue.")
        raise typer.Exit(1)
    if report.send and report.send.failed:
        raise typer.Exit(1)


def _run_on_workers(pipeline: Pipeline, name: str, *, detach: bool) -> None:
    prepared = asyncio.run(pipeline.prepare(name))
    if isinstance(prepared, RunReport):
        _print_run(prepared)
        return
    stored, built, notes = prepared
    if built is not None:
        report_problems(built.sources, built.problems)
    for note in notes:
        say(f"note: {note}")
    if send_on_workers(pipeline.config, pipeline.store, stored, detach=detach):
        raise typer.Exit(1)


@app.command("extract")
def extract_command(
    location: Annotated[str, typer.Argument(help="An article page: URL or local path.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    page_url: Annotated[
        str | None,
        typer.Option("--url", help="For a local file: the address the page was saved from."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="NAME/INDEX: apply the extract: corrections of that source (from 1)."
        ),
    ] = None,
) -> None:
    """Extract headline, standfirst, lead paragraph and metadata from one article page.

    A saved page is read as if fetched from ``--url``: headline cleaning and the
    article's address use that site's name and host, not the file's path. With
    ``--source``, a source's corrections in schedules.yaml apply as in a run.
    """
    corrections = _source_corrections(source) if source else Corrections()
    url = to_url(location)
    if page_url and not url.startswith("file:"):
        raise typer.BadParameter(
            f"is for a local file; {location} is read from its own address.", param_hint="--url"
        )

    async def fetch() -> Page:
        # A URL typed by the user: no SSRF guard (localhost is fair game) and, as a
        # one-off request by a person rather than a crawl, no robots.txt.
        async with Fetcher() as fetcher:
            response = await fetcher.get(url, Rules(allow_private_networks=True, robots=False))
        return Page(
            url=page_url or url,
            final_url=page_url or response.url,
            body=response.body,
            content_type=response.content_type,
            corrections=corrections,
        )

    page = asyncio.run(fetch())
    for selector in unmatched(page):
        warn(f"{source}: extract {selector} matched nothing on this page")
    article = extract(page)
    if as_json:
        print(json.dumps(article.to_dict(), ensure_ascii=False, indent=2))
        return
    table = Table(show_header=False, box=None)
    for key, value in article.to_dict().items():
        if key != "paragraphs":
            table.add_row(key, str(value or ""))
    out.print(table)


def _source_corrections(spec: str) -> Corrections:
    """The corrections of the source ``NAME/INDEX`` (counting from 1) in schedules.yaml."""
    name, _, index = spec.rpartition("/")
    if not name or not index.isdigit():
        raise typer.BadParameter("give NEWSLETTER/INDEX, e.g. weekly/1", param_hint="--source")
    sources = load_config(state.config).newsletter(name).sources
    if not 1 <= int(index) <= len(sources):
        raise typer.BadParameter(
            f"newsletter '{name}' has {len(sources)} source(s); count from 1", param_hint="--source"
        )
    return sources[int(index) - 1].corrections
