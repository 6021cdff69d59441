"""The command-line application object, options and output helpers shared by commands.

Every command takes ``--config PATH`` (default ``$DIGEST_CONFIG`` or ``./schedules.yaml``).
Exit status: 0 on success, 1 with one sentence on stderr for a problem the user can
fix (a ``DigestError``, caught in ``main`` and nowhere else), 2 for wrong usage.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..collect import SourceReport
from ..config import Config, load_config
from ..errors import DigestError
from ..store import Store

app = typer.Typer(
    help="Collect a site's new articles, build a newsletter issue, preview it and send it.",
    epilog=(
        "A first issue: digest subscribers import LIST FILE.csv; digest preview NAME --open; "
        "digest send-test NAME --to you@example.org; digest run NAME. "
        "NAME and LIST are as written in schedules.yaml; README.md explains every setting."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

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
    config: Path | None = None


state = _State()


@app.callback()
def _global(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each stage.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    config: ConfigOption = None,
) -> None:
    state.verbose, state.quiet, state.config = verbose, quiet, config
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def open_config(config_path: Path | None) -> tuple[Config, Store]:
    """The loaded config and its opened, migrated store."""
    config = load_config(config_path or state.config)
    return config, Store(config.database_url)


def say(text: str) -> None:
    """Print a line of normal output (nothing with --quiet)."""
    if not state.quiet:
        out.print(text, highlight=False, markup=False, soft_wrap=True)


def warn(text: str) -> None:
    """Print a warning line on stderr."""
    err.print(f"warning: {text}", highlight=False, markup=False, soft_wrap=True)


def report_problems(sources: Sequence[SourceReport], problems: Sequence[str]) -> None:
    """Print a warning per source error and per extraction problem."""
    for report in sources:
        for error in (*report.errors, *report.warnings):
            warn(error)
    for problem in problems:
        warn(problem)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (see the module docstring)."""
    command = typer.main.get_command(app)
    try:
        # Without standalone mode click returns a raised typer.Exit's code instead.
        status = command.main(args=argv, prog_name="digest", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("Interrupted.")
        return 130
    except DigestError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        return 1
    except typer.TyperException as exc:  # usage errors: typer's own message, exit 2
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err.print(str(exc), highlight=False, markup=False)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        err.print("Interrupted.")
        return 130
    return status if isinstance(status, int) else 0
