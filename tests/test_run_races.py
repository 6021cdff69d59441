"""Runs started at the same moment: two `digest run NAME` of one newsletter send one
issue, each reader once, the second joining the first with a sentence (no traceback);
two newsletters sharing a source both go out (no unique-key violation on the article
or HTTP cache rows they both write)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.schedule import ROOT, Project, project_on

RUN_SCRIPT = """
import sys, time
from digest.cli import main
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # the processes start together
sys.exit(main(["-c", sys.argv[1], "run", sys.argv[3]]))
"""


@pytest.fixture(params=["sqlite", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    with project_on(request.param, tmp_path) as project:
        yield project


def run_together(project: Project, names: list[str]) -> list[str]:
    """``digest run NAME`` for each of ``names`` in its own process, started at once;
    their outputs (all must exit 0)."""
    start_at = time.time() + 2.5
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RUN_SCRIPT, str(project.config), str(start_at), name],
            cwd=project.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name in names
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0] * len(names), outputs
    assert not any("Traceback" in out for out in outputs), outputs
    return outputs


def test_two_runs_of_one_newsletter_send_one_issue_once_to_each(project: Project) -> None:
    project.write()
    project.add_subscribers(60)
    outputs = run_together(project, ["news", "news"])
    assert project.issues() == [(1, "sent")]
    assert Counter(project.delivered()) == Counter(f"reader{i}@example.org" for i in range(60))
    joined = [out for out in outputs if "this run joins it" in out]
    nothing = [out for out in outputs if "Nothing to send" in out or "no new articles" in out]
    assert len(joined) + len(nothing) <= 1, outputs  # the other one sent the issue


def test_two_newsletters_sharing_a_source_both_go_out(project: Project) -> None:
    project.write()
    data = yaml.safe_load(project.config.read_text(encoding="utf-8"))
    data["newsletters"]["daily"] = {**data["newsletters"]["news"], "title": "The Daily"}
    project.config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    project.add_subscribers(5)
    run_together(project, ["news", "daily"])
    assert sorted(project.issues()) == [(1, "sent"), (1, "sent")]
    assert Counter(project.delivered()) == Counter(
        f"reader{i}@example.org" for i in range(5) for _ in range(2)
    )
