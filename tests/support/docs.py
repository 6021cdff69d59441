"""Checking documentation against the code: a documented command line must parse."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from digest.cli import app


def parse(argv: list[str]) -> Any:
    """Parse ``digest ARGV`` as the CLI would, without running it (UsageError if wrong)."""
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    context = group.make_context("digest", list(argv), resilient_parsing=False)
    name, command, rest = group.resolve_command(context, [*context._protected_args, *context.args])
    assert command is not None, f"no command {name}"
    return command.make_context(name or "", rest, parent=context)
