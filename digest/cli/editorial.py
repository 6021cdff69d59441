"""The editorial commands: draft, edit, approve (``digest.editorial``)."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Annotated

import typer

from ..editorial import DraftStatus, Editorial
from ..errors import ReviewError
from ..pipeline import Pipeline
from ..store.editorial import Edits
from .app import ConfigOption, app, open_config, report_problems, say

NameArgument = Annotated[str, typer.Argument(help="The newsletter, as named in schedules.yaml.")]


def _show(status: DraftStatus) -> None:
    approval = f"approved by {status.approved_by}" if status.approved else "awaiting approval"
    say(
        f"Issue #{status.number} of '{status.newsletter}' (draft version {status.version}): "
        f"{len(status.items)} item(s), {approval}."
    )
    say(f"Subject: {status.subject}")
    for position, item in enumerate(status.items, start=1):
        say(f"{position:3}. {item.title}  <{item.url}>")
    for note in status.notes:
        say(f"note: {note}")


def _who() -> str:
    """Who approves from this terminal, for the record."""
    try:
        return f"{getpass.getuser()} (command line)"
    except (KeyError, OSError):  # no login name in some containers
        return "command line"


@app.command()
def draft(
    name: NameArgument,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for NAME.html, NAME.txt and NAME.eml.")
    ] = Path("preview"),
    send_review: Annotated[
        bool, typer.Option("--send-review", help="Also mail it to the newsletter's reviewers.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Build (or rebuild, with articles published since) the next issue as a draft for
    review, keeping the edits made to it so far. Sends nothing to readers."""
    cfg, store = open_config(config)
    editorial = Editorial(Pipeline(cfg, store))
    result = asyncio.run(editorial.draft(name, out_dir))
    if not isinstance(result, tuple):
        report_problems(result.sources, result.problems)
        say(f"Nothing to draft for '{name}': no new articles since the last issue.")
        return
    status, files = result
    report_problems(files.built.sources, files.built.problems)
    _show(status)
    say(f"HTML:  {files.html}")
    say(f"Text:  {files.text}")
    say(f"Email: {files.eml}")
    if send_review:
        deliveries = asyncio.run(editorial.send_review(name))
        say(f"Review mail sent to {len(deliveries)} reviewer(s).")


@app.command()
def edit(
    name: NameArgument,
    drop: Annotated[
        list[str] | None, typer.Option("--drop", help="Leave out the story at this URL.")
    ] = None,
    pin: Annotated[
        list[str] | None,
        typer.Option("--pin", help="Keep this unsent article although the caps left it out."),
    ] = None,
    move: Annotated[
        list[str] | None, typer.Option("--move", help="Move the story at this URL (with --to).")
    ] = None,
    to: Annotated[
        list[int] | None, typer.Option("--to", help="Position (from 1) for the --move before it.")
    ] = None,
    note_file: Annotated[
        Path | None,
        typer.Option("--note-file", help="The editor's note, Markdown ('-' reads stdin)."),
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="The subject line.")] = None,
    config: ConfigOption = None,
) -> None:
    """Change the draft under review: drop, pin and order stories, set the editor's
    note and the subject. Any edit withdraws an approval."""
    moves, positions = move or [], to or []
    if len(moves) != len(positions):
        raise typer.BadParameter("give one --to N for each --move URL", param_hint="--to")
    note = None
    if note_file is not None:
        try:
            note = (
                typer.get_text_stream("stdin").read()
                if str(note_file) == "-"
                else note_file.read_text(encoding="utf-8")
            )
        except OSError as exc:
            raise ReviewError(f"Cannot read the note {note_file}: {exc.strerror}.") from None
    cfg, store = open_config(config)
    change = Edits(
        drop=tuple(drop or ()),
        pin=tuple(pin or ()),
        moves=tuple(zip(moves, positions, strict=True)),
        note=note or "",
        subject=subject or "",
    )
    status = Editorial(Pipeline(cfg, store)).edit(
        name, change, note=note is not None, subject=subject is not None
    )
    _show(status)


@app.command()
def approve(
    name: NameArgument,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Withdraw the approval instead.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Approve the draft under review as it is now (or withdraw the approval)."""
    cfg, store = open_config(config)
    editorial = Editorial(Pipeline(cfg, store))
    status = editorial.revoke(name) if revoke else editorial.approve(name, _who())
    _show(status)
