"""Shared helpers of the scheduling tests: a project folder with a real SQLite file (or a
fresh PostgreSQL database), the demo site's feed, an outbox and a subscriber list."""

from __future__ import annotations

import email
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import func, select

from digest.cli import main
from digest.schedule import Daemon, job_id
from digest.store import Store
from digest.store.runs import JOBSTORE_TABLE
from digest.store.tables import DeliveryRow, IssueRow, ListRow, ScheduleRunRow, SubscriberRow
from tests.support import ROOT, postgres_database

FEED = ROOT / "examples" / "site" / "feed.xml"


@dataclass
class Project:
    """A schedules.yaml in ``root`` with newsletter ``news`` on list ``readers``."""

    root: Path
    database: str

    @property
    def config(self) -> Path:
        return self.root / "schedules.yaml"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox" / "new"

    def write(self, **newsletter: object) -> None:
        """Write schedules.yaml with ``newsletter`` settings over the defaults."""
        settings: dict[str, object] = {
            "title": "The Test Round-up",
            "from": "Round-up <news@example.org>",
            "sources": [{"feed": str(FEED)}],
            "list": "readers",
            "backend": "box",
            "timezone": "UTC",
            "postal_address": "1 Test Street, Testville",
        }
        if not {"cron", "weekly", "daily"} & set(newsletter):
            settings["cron"] = "0 7 * * mon"
        settings.update(newsletter)
        data = {
            "database": self.database,
            "backends": {"box": {"type": "outbox", "path": "outbox"}},
            "newsletters": {"news": settings},
        }
        self.config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    def store(self) -> Store:
        return Store(self.database)

    def add_subscribers(self, count: int) -> None:
        """Put ``count`` active subscribers on the list ``readers``."""
        store = self.store()
        with store.session() as session:
            row = ListRow(name="readers", created_at=datetime.now(UTC))
            session.add(row)
            session.flush()
            session.add_all(
                SubscriberRow(
                    list_id=row.id,
                    email=f"reader{i}@example.org",
                    email_key=f"reader{i}@example.org",
                    name=f"Reader {i}",
                    status="active",
                )
                for i in range(count)
            )
        store.close()

    def delivered(self) -> list[str]:
        """The address of the recipient of every message in the outbox, one entry per file."""
        if not self.outbox.is_dir():
            return []
        recipients = []
        for path in self.outbox.iterdir():
            message = email.message_from_bytes(path.read_bytes())
            recipients.append(parseaddr(str(message["To"]))[1])
        return recipients

    def runs(self) -> list[tuple[str, datetime, str]]:
        """(newsletter, slot, status) of every schedule_runs row."""
        store = self.store()
        with store.session() as session:
            rows = session.execute(
                select(ScheduleRunRow.newsletter, ScheduleRunRow.slot, ScheduleRunRow.status)
            ).all()
        store.close()
        return [(newsletter, slot, status) for newsletter, slot, status in rows]

    def issues(self) -> list[tuple[int, str]]:
        store = self.store()
        with store.session() as session:
            rows = session.execute(select(IssueRow.number, IssueRow.status)).all()
        store.close()
        return [(number, status) for number, status in rows]

    def deliveries(self) -> dict[str, int]:
        store = self.store()
        with store.session() as session:
            counts = dict(
                session.execute(
                    select(DeliveryRow.status, func.count(DeliveryRow.id)).group_by(
                        DeliveryRow.status
                    )
                ).all()
            )
        store.close()
        return counts


def seed(project: Project, next_run_time: datetime) -> None:
    """Leave the job store as a daemon stopped before ``next_run_time`` would."""
    daemon = Daemon(project.config)
    daemon.scheduler.start(paused=True)
    daemon.sync_jobs(daemon.config)
    daemon.scheduler.shutdown(wait=True)
    # Edited through the job store alone: a live scheduler would run the due job at once.
    jobstore = SQLAlchemyJobStore(engine=daemon.store.engine, tablename=JOBSTORE_TABLE)
    jobstore.start(BackgroundScheduler(timezone=UTC), "default")
    job = jobstore.lookup_job(job_id("news"))
    job._modify(next_run_time=next_run_time)
    jobstore.update_job(job)
    daemon.store.close()


T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float = 20.0, what: str = "") -> T:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")


@contextmanager
def project_on(kind: str, tmp_path: Path) -> Iterator[Project]:
    """A ``Project`` on a SQLite file (``kind="sqlite"``) or on a fresh PostgreSQL
    database (``kind="postgres"``, skipped unless DIGEST_TEST_DATABASE_URL is set)."""
    if kind == "sqlite":
        yield Project(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}")
        return
    url = os.environ.get("DIGEST_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PostgreSQL variant: set DIGEST_TEST_DATABASE_URL to run it")
    with postgres_database(url) as database:
        yield Project(tmp_path, database)


def spawn(project: Project, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """Start ``digest -c schedules.yaml ARGS`` in its own process, output into ``log``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "-c", str(project.config), *args],
        cwd=project.root,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
    )


def log_text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def stop(process: subprocess.Popen[bytes], log: Path) -> int:
    """SIGTERM ``process`` and return its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"the daemon did not stop on SIGTERM:\n{log_text(log)}") from None


@dataclass(frozen=True)
class Sent:
    """The project and the slot its issue #1 was sent for."""

    project: Project
    slot: datetime

    @property
    def config(self) -> Path:
        return self.project.config


@pytest.fixture
def sent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Sent:
    """Issue #1 of ``news`` sent for a slot an hour ago: 3 good addresses, 1 unusable."""
    caplog.set_level(logging.INFO, logger="digest")
    with project_on("sqlite", tmp_path) as project:
        project.write(weekly="monday 07:00", timezone="America/New_York")
        project.add_subscribers(3)
        store = project.store()
        with store.session() as session:
            list_id = session.scalar(select(ListRow.id).where(ListRow.name == "readers"))
            session.add(
                SubscriberRow(list_id=list_id, email="broken<at>example.org", email_key="broken")
            )
        store.close()
        daemon = Daemon(project.config)
        slot = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        daemon.fire("news", slot)
        daemon.store.close()
        return Sent(project, slot)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
