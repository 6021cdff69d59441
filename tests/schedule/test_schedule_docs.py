"""docs/scheduling.md: its command lines are commands and options the CLI really has, and
its Kubernetes CronJob is valid YAML that runs `digest run NAME`."""

from __future__ import annotations

import re
import shlex
from typing import Any

import typer
import yaml
from typer.core import TyperGroup

from digest.cli import app
from tests.support import ROOT

DOC = ROOT / "docs" / "scheduling.md"


def blocks(language: str) -> list[str]:
    fenced = re.findall(r"^```(\w*)\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)
    return [body for lang, body in fenced if lang == language]


def parse(argv: list[str]) -> Any:
    """Parse ``digest ARGV`` as the CLI would, without running it (UsageError if wrong)."""
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    context = group.make_context("digest", list(argv), resilient_parsing=False)
    name, command, rest = group.resolve_command(context, [*context._protected_args, *context.args])
    assert command is not None, f"no command {name}"
    return command.make_context(name or "", rest, parent=context)


def digest_commands() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"(?:^|[\s/=])digest (--config [^\s]+ [^>&\n]*)", text, re.M):
        found.append(shlex.split(match.group(1)))
    return found


def test_every_documented_command_line_parses() -> None:
    commands = digest_commands()
    # the scheduler service, the timer's service, the crontab line, the first example
    assert len(commands) >= 4
    for argv in commands:
        context = parse(argv)
        assert context.command.name in {"schedule", "run"}


def test_kubernetes_cronjob_runs_digest_run_in_the_newsletter_zone() -> None:
    (cronjob,) = [
        doc
        for block in blocks("yaml")
        for doc in yaml.safe_load_all(block)
        if doc and doc.get("kind") == "CronJob"
    ]
    spec = cronjob["spec"]
    assert spec["timeZone"] == "Europe/London"
    assert spec["concurrencyPolicy"] == "Forbid"
    (container,) = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    context = parse(container["args"])
    assert context.command.name == "run" and context.params["name"] == "weekly"


def test_systemd_timer_and_crontab_fire_at_the_documented_time() -> None:
    ini = "\n".join(blocks("ini"))
    assert "OnCalendar=Mon *-*-* 07:00:00 Europe/London" in ini
    assert "ExecReload=/bin/kill -HUP $MAINPID" in ini
    crontab = "\n".join(block for block in blocks("crontab"))
    assert re.search(r"^0 7 \* \* mon\s+cd /srv/digest && flock -n", crontab, re.M)
