"""The command line: ``digest <command>`` (also ``python send.py`` and ``python -m digest``).

Every command takes ``--config PATH`` (default ``$DIGEST_CONFIG`` or ``./schedules.yaml``).
Exit status: 0 on success, 1 with one sentence on stderr for a problem the user can
fix (a ``DigestError``, caught here and nowhere else), 2 for wrong usage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import webbrowser
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .collect.fetch import Fetcher
from .config import Config, load_config
from .errors import DigestError
from .extract import extract
from .models import Page
from .pipeline import Pipeline, PreviewFiles, RunReport
from .store import Store
from .subscribers import import_csv, list_subscribers
from .urls import to_url

app = typer.Typer(
    help="Collect a site's new articles, build a newsletter issue, preview it and send it.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
subscribers_app = typer.Typer(help="Manage subscriber lists.", no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")

out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="schedules.yaml to use (default: $DIGEST_CONFIG or ./schedules.yaml).",
    ),
]


class _State:
    verbose = False
    quiet = False


state = _State()


@app.callback()
def _global(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each stage.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
) -> None:
    state.verbose, state.quiet = verbose, quiet
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _open(config_path: Path | None) -> tuple[Config, Store]:
    config = load_config(config_path)
    return config, Store(config.database_url)


def _say(text: str) -> None:
    if not state.quiet:
        out.print(text, highlight=False, markup=False)


def _report_problems(sources: tuple, problems: tuple[str, ...]) -> None:
    for report in sources:
        for error in report.errors:
            err.print(f"warning: {error}", highlight=False, markup=False)
    for problem in problems:
        err.print(f"warning: {problem}", highlight=False, markup=False)


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
    cfg, store = _open(config)
    result = asyncio.run(Pipeline(cfg, store).preview(name, out_dir))
    if not isinstance(result, PreviewFiles):
        _report_problems(result.sources, result.problems)
        _say(f"Nothing to preview for '{name}': no new articles since the last issue.")
        return
    built = result.built
    _report_problems(built.sources, built.problems)
    assert built.issue is not None and built.rendered is not None
    _say(
        f"Issue #{built.issue.number} of '{name}': {len(built.issue.items)} item(s), subject: {built.rendered.subject}"
    )
    for note in built.rendered.notes:
        _say(f"note: {note}")
    _say(f"HTML:  {result.html}")
    _say(f"Text:  {result.text}")
    _say(f"Email: {result.eml}")
    if open_browser:
        webbrowser.open(result.html.resolve().as_uri())


def _print_run(report: RunReport) -> None:
    _report_problems(report.sources, report.problems)
    _say(report.message)
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
    config: ConfigOption = None,
) -> None:
    """Collect, build and send the next issue to the newsletter's list, and record it.

    Resumes an issue an interrupted run left unfinished; with nothing new, sends nothing.
    """
    cfg, store = _open(config)
    pipeline = Pipeline(cfg, store)
    if sys.stderr.isatty() and not state.quiet:
        with Progress(
            TextColumn("Sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("send", total=None)
            report = asyncio.run(
                pipeline.run(
                    name,
                    dry_run=dry_run,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
            )
    else:
        report = asyncio.run(pipeline.run(name, dry_run=dry_run))
    _print_run(report)
    backend = cfg.backends[cfg.newsletter(name).backend]
    if report.send and report.send.sent and backend.type == "outbox":
        _say(f"Delivered messages: {Path(backend.path) / 'new'}")
    if report.send and report.send.failed:
        raise typer.Exit(1)


@app.command("extract")
def extract_command(
    location: Annotated[str, typer.Argument(help="An article page: URL or local path.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Extract headline, standfirst, lead paragraph and metadata from one article page."""

    async def fetch() -> Page:
        url = to_url(location)
        async with Fetcher() as fetcher:
            response = await fetcher.get(url)
        return Page(
            url=url, final_url=response.url, body=response.body, content_type=response.content_type
        )

    article = extract(asyncio.run(fetch()))
    if as_json:
        print(json.dumps(article.to_dict(), ensure_ascii=False, indent=2))
        return
    table = Table(show_header=False, box=None)
    for key, value in article.to_dict().items():
        if key != "paragraphs":
            table.add_row(key, str(value or ""))
    out.print(table)


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
    _, store = _open(config)
    report = import_csv(store, list_name, file, status=status)
    for problem in report.problems:
        err.print(f"warning: {problem}", highlight=False, markup=False)
    _say(
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
    _, store = _open(config)
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
    _say(f"{len(rows)} subscriber(s).")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (see the module docstring)."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="digest", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        exc.show()
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        err.print("Interrupted.")
        return 130
    except DigestError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        return 1
    return 0
