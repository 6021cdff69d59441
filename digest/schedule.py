"""The scheduler: one APScheduler job per enabled newsletter, fired at its local time.

``Daemon(config_path).serve()`` is the ``digest schedule`` command. Contracts:

- **Jobs** come from each newsletter's cron (or ``weekly:``/``daily:``) in its own time
  zone (``digest.triggers``). They live in the project's database (APScheduler's
  ``SQLAlchemyJobStore``, table ``apscheduler_jobs``, ``store.runs.job_store``) so a
  restart remembers when each was due. A job holds only a
  textual reference to the module-level ``fire`` and the newsletter's name, so a pickled
  job survives restarts and code changes. ``coalesce`` and ``max_instances=1``.
- **Missed runs**: a run missed while the daemon was down goes out on start when it is
  at most ``misfire_grace`` late; otherwise it is skipped, logged and recorded ``missed``.
- **Once per slot**: before running, a slot (newsletter, scheduled time in UTC) is
  claimed by inserting a ``schedule_runs`` row under a unique constraint, in its own
  transaction (``digest.store.runs``). A second daemon on the same database fails the
  insert and skips.
- **Send window**: a slot that fires outside ``send_window`` waits for the window to
  open (a one-off job at the opening, same slot, so still sent at most once).
- **Signals**: SIGTERM/SIGINT finish the batch in flight, mark the slot ``interrupted``
  and exit; the next start resumes it. A slot left ``running`` by a process that died
  is resumed too: at once when it was a process of this host, and on any host once
  its heartbeat (refreshed every 30 s while it runs) is 10 minutes old; every daemon
  looks for such slots at start and every 5 minutes. SIGHUP, or a change of schedules.yaml seen by
  polling, reloads the configuration; an unreadable or invalid file is logged and the
  old configuration keeps running. A reload never stops the daemon.
- **Editorial review** (a newsletter with ``review:``, ``digest.editorial``): every
  ``REVIEW_EVERY`` seconds the daemon looks for a next slot at most ``review.ahead``
  away and, once per slot, builds its draft and mails it to the reviewers. With
  ``review.required`` a slot sends only an approved draft: it waits for the approval
  (looking every ``APPROVAL_EVERY`` seconds) until ``misfire_grace`` after the slot,
  then does what ``on_timeout`` says (``skip`` or ``send``) and logs
  ``event=review-timeout``.

Log lines are ``key=value`` pairs (``event=run newsletter=weekly ... seconds=1.20``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from .config import Config, load_config
from .errors import DigestError
from .hosts import is_alive, worker_id
from .logfmt import duration as _duration
from .logfmt import kv
from .pipeline import Pipeline, RunReport
from .review_slots import ReviewSlots
from .store import Store
from .store.runs import (
    beat_slot,
    claim_slot,
    finish_slot,
    job_store,
    reclaim_slot,
    record_missed,
    unfinished,
)
from .store.status import RunStatus
from .triggers import make_trigger, same_trigger, slot_for

log = logging.getLogger("digest.schedule")

JOB_PREFIX = "newsletter:"
DEFER_PREFIX = "deferred:"
# Textual references: what the job store pickles, resolved again after a restart.
FIRE = "digest.schedule:fire"
RESUME = "digest.schedule:resume"
#: How often a running slot's owner refreshes ``heartbeat_at`` (seconds).
HEARTBEAT_EVERY = 30.0
#: A running slot whose heartbeat is this old belongs to a process that is gone.
STALE_AFTER = timedelta(minutes=10)
#: How often a daemon looks for slots left running by dead processes (seconds).
ORPHAN_CHECK_EVERY = 300.0

_active: Daemon | None = None


def job_id(name: str) -> str:
    """The id of the recurring job of newsletter ``name``."""
    return JOB_PREFIX + name


def deferred_id(name: str, slot: datetime) -> str:
    """The id of the one-off job that runs ``slot`` of ``name`` when its window opens."""
    return f"{DEFER_PREFIX}{name}@{slot.isoformat()}"


# -- job functions (module level: the job store pickles references to them) -------


def fire(name: str, slot: str | None = None) -> None:
    """The scheduled job of newsletter ``name``; ``slot`` (ISO) for a deferred run."""
    if _active is None:
        log.error(kv("orphan", newsletter=name, reason="no daemon in this process"))
        return
    _active.fire(name, datetime.fromisoformat(slot) if slot else None)


def resume(name: str, slot: str, owner: str = "") -> None:
    """Resume the interrupted (or orphaned, last held by ``owner``) slot of ``name``."""
    if _active is not None:
        _active.resume(name, datetime.fromisoformat(slot), owner)


class Daemon(ReviewSlots):
    """The scheduler process of one schedules.yaml. ``serve()`` blocks until SIGTERM.

    ``watch_interval`` is how often (seconds) schedules.yaml is checked for changes;
    ``heartbeat_every``, ``stale_after`` and ``orphan_check_every`` tune the takeover of
    slots whose owner died (tests shorten them).
    """

    def __init__(
        self,
        config_path: str | os.PathLike[str] | None,
        *,
        watch_interval: float = 2.0,
        heartbeat_every: float = HEARTBEAT_EVERY,
        stale_after: timedelta = STALE_AFTER,
        orphan_check_every: float = ORPHAN_CHECK_EVERY,
    ):
        self.config: Config = load_config(config_path)
        self.config_path = self.config.path
        self.store = Store(self.config.database_url)
        self.watch_interval = watch_interval
        self.heartbeat_every = heartbeat_every
        self.stale_after = stale_after
        self.orphan_check_every = orphan_check_every
        self.owner = worker_id()
        self.stopping = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._stamp = self._file_stamp()
        # One run per newsletter at a time in this process: a resume and a new slot of the
        # same newsletter would otherwise both send the unfinished issue's queued rows.
        self._runs: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._runs_lock = threading.Lock()
        # Slots this process is working on: never "orphans", whatever their owner says.
        self._holding: set[tuple[str, datetime]] = set()
        self.scheduler = BackgroundScheduler(
            jobstores={
                "default": job_store(self.store),
                # Resumes are per process: never persisted, never run by another daemon.
                "volatile": MemoryJobStore(),
            },
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self.scheduler.add_listener(self._on_error, EVENT_JOB_ERROR)

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Start scheduling: sync the jobs with the config, queue resumes, then run due jobs."""
        global _active
        _active = self
        # Paused first: get_jobs() reads the job store only once started, and the jobs
        # must be synced before anything overdue is run.
        self.scheduler.start(paused=True)
        self.sync_jobs(self.config)
        self._queue_resumes()
        self.scheduler.add_job(
            self._queue_resumes,
            "interval",
            seconds=self.orphan_check_every,
            id="orphans",
            jobstore="volatile",
            replace_existing=True,
        )
        self._schedule_reviews()
        self.scheduler.resume()
        log.info(kv("started", owner=self.owner, config=self.config_path, jobs=len(self.jobs())))

    def shutdown(self) -> None:
        """Let the batch in flight finish, then stop scheduling and close the store."""
        global _active
        self.stopping.set()
        log.info(kv("stopping", owner=self.owner))
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.store.close()
        if _active is self:
            _active = None
        log.info(kv("stopped", owner=self.owner))

    def serve(self) -> None:
        """Run until SIGTERM or SIGINT, reloading on SIGHUP or when schedules.yaml changes."""
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)
        self.start()
        next_check = time.monotonic() + self.watch_interval
        try:
            # Signal handlers only set flags; the work happens here, outside the handler.
            while not self._stop_requested:
                time.sleep(0.1)
                if self._reload_requested:
                    self._reload_requested = False
                    self._stamp = self._file_stamp()  # this reload covers the edit too
                    self.reload("SIGHUP")
                elif time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.watch_interval
                    stamp = self._file_stamp()
                    if stamp != self._stamp:
                        self._stamp = stamp
                        self.reload("schedules.yaml changed")
        finally:
            self.shutdown()

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_requested = True

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload_requested = True

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = Path(self.config_path).stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    # -- jobs -----------------------------------------------------------------

    def jobs(self) -> dict[str, Any]:
        """The recurring newsletter jobs in the job store, by newsletter name."""
        return {
            job.id.removeprefix(JOB_PREFIX): job
            for job in self.scheduler.get_jobs(jobstore="default")
            if job.id.startswith(JOB_PREFIX)
        }

    def sync_jobs(self, config: Config) -> None:
        """Make the job store hold one job per enabled newsletter of ``config``.

        A job whose trigger is unchanged keeps its stored next run time (so a run that
        fell due while the daemon was down is still seen as missed); a changed cadence
        is rescheduled from now; removed or disabled newsletters lose their job.
        """
        wanted = {name: nl for name, nl in config.newsletters.items() if nl.enabled}
        for name in set(self.jobs()) - set(wanted):
            self.scheduler.remove_job(job_id(name), jobstore="default")
            log.info(kv("unscheduled", newsletter=name))
        existing = self.jobs()
        for name, newsletter in wanted.items():
            trigger = make_trigger(newsletter)
            grace = int(newsletter.misfire_grace.total_seconds())
            job = existing.get(name)
            if job is None:
                job = self.scheduler.add_job(
                    FIRE,
                    trigger=trigger,
                    args=[name],
                    id=job_id(name),
                    name=name,
                    jobstore="default",
                    misfire_grace_time=grace,
                    coalesce=True,
                    max_instances=1,
                )
                log.info(
                    kv(
                        "scheduled",
                        newsletter=name,
                        cron=newsletter.crontab,
                        tz=newsletter.timezone,
                    )
                )
                continue
            if job.misfire_grace_time != grace:
                self.scheduler.modify_job(job.id, jobstore="default", misfire_grace_time=grace)
            if not same_trigger(job.trigger, trigger):
                self.scheduler.reschedule_job(job.id, jobstore="default", trigger=trigger)
                log.info(
                    kv(
                        "rescheduled",
                        newsletter=name,
                        cron=newsletter.crontab,
                        tz=newsletter.timezone,
                    )
                )

    def reload(self, reason: str) -> bool:
        """Load schedules.yaml again and apply it; on any error keep the old configuration
        running, log why and return False."""
        try:
            config = load_config(self.config_path)
            if config.database_url != self.config.database_url:
                log.warning(
                    kv("reload-database-ignored", reason="changing the database needs a restart")
                )
                config = config.model_copy(update={"database": self.config.database})
            self.sync_jobs(config)
        except DigestError as exc:
            log.error(
                kv("reload-failed", trigger=reason, kept="previous configuration", error=str(exc))
            )
            return False
        except Exception:  # the daemon must outlive any reload, even one that hits a bug
            log.exception(kv("reload-failed", trigger=reason, kept="previous configuration"))
            return False
        self.config = config
        log.info(kv("reloaded", trigger=reason, newsletters=len(config.newsletters)))
        return True

    def _queue_resumes(self) -> None:
        """Queue a resume for each slot stopped by SIGTERM, and for each slot left
        ``running`` by a process that is gone (``_owner_is_dead``)."""
        # Read before taking the snapshot: a slot claimed in between is then in the
        # snapshot, never mistaken for one whose owner (this process) is gone.
        runs = unfinished(self.store)
        with self._runs_lock:
            holding = set(self._holding)
        for run in runs:
            if (run.newsletter, run.slot) in holding:
                continue
            running = run.status == RunStatus.RUNNING
            if running and not self._owner_is_dead(run.owner, run.heartbeat_at):
                continue  # alive as far as we can tell
            self.scheduler.add_job(
                RESUME,
                args=[run.newsletter, run.slot.isoformat(), run.owner if running else ""],
                id=f"resume:{run.newsletter}:{run.slot.isoformat()}",
                jobstore="volatile",
                replace_existing=True,
            )

    def _owner_is_dead(self, owner: str, last_heartbeat: datetime) -> bool:
        """Whether ``owner`` (``host:pid``) of a running slot is gone: on this host, its
        process no longer exists (its own pid counts as gone, since in a container a
        restarted daemon is often pid 1 again, and slots this process holds are never
        asked about); elsewhere, its heartbeat is older than ``stale_after``."""
        alive = is_alive(owner)
        if alive is None:
            return datetime.now(UTC) - last_heartbeat > self.stale_after
        return not alive

    # -- running a slot -------------------------------------------------------

    def fire(self, name: str, slot: datetime | None) -> None:
        """Run newsletter ``name`` for ``slot`` (None: the slot this firing stands for),
        or defer it to the opening of its send window."""
        config = self.config
        newsletter = config.newsletters.get(name)
        if newsletter is None or not newsletter.enabled:
            log.info(kv("skipped", newsletter=name, reason="no longer scheduled"))
            return
        now = datetime.now(UTC)
        zone = ZoneInfo(newsletter.timezone)
        if slot is None:
            slot = slot_for(make_trigger(newsletter), now, newsletter.misfire_grace)
        window = newsletter.window
        local = now.astimezone(zone)
        if window is not None and not window.contains(local):
            opening = window.next_opening(local)
            self.scheduler.add_job(
                FIRE,
                trigger="date",
                run_date=opening,
                args=[name, slot.isoformat()],
                id=deferred_id(name, slot),
                jobstore="default",
                replace_existing=True,
                misfire_grace_time=int(newsletter.misfire_grace.total_seconds()),
            )
            log.info(
                kv(
                    "deferred",
                    newsletter=name,
                    slot=slot,
                    until=opening,
                    window=newsletter.send_window,
                )
            )
            return
        with self._hold(name, slot):
            if not claim_slot(self.store, name, slot, self.owner):
                log.info(kv("skipped", newsletter=name, slot=slot, reason="slot already claimed"))
                return
            self._execute(config, name, slot)

    def resume(self, name: str, slot: datetime, previous_owner: str = "") -> None:
        """Finish an interrupted or orphaned slot, unless another process took it first."""
        config = self.config
        if name not in config.newsletters:
            log.warning(kv("resume-skipped", newsletter=name, slot=slot, reason="not in config"))
            return
        with self._hold(name, slot):
            if not reclaim_slot(self.store, name, slot, self.owner, previous_owner):
                return
            log.info(kv("resuming", newsletter=name, slot=slot, previous_owner=previous_owner))
            self._execute(config, name, slot)

    @contextmanager
    def _hold(self, name: str, slot: datetime) -> Iterator[None]:
        """Mark (``name``, ``slot``) as worked on by this process while the block runs."""
        with self._runs_lock:
            self._holding.add((name, slot))
        try:
            yield
        finally:
            with self._runs_lock:
                self._holding.discard((name, slot))

    def _beat(self, name: str, slot: datetime, done: threading.Event) -> None:
        """Refresh the slot's heartbeat until ``done``; a failed refresh is only logged
        (the run goes on; others take over only after ``stale_after``)."""
        while not done.wait(self.heartbeat_every):
            try:
                beat_slot(self.store, name, slot, self.owner)
            except Exception as exc:  # a database hiccup must not stop the send
                log.warning(kv("heartbeat-failed", newsletter=name, slot=slot, error=repr(exc)))

    def _execute(self, config: Config, name: str, slot: datetime) -> None:
        with self._runs_lock:
            lock = self._runs[name]
        with lock:
            self._run(config, name, slot)

    def _run(self, config: Config, name: str, slot: datetime) -> None:
        started = time.monotonic()
        log.info(kv("run", newsletter=name, slot=slot, owner=self.owner))
        done = threading.Event()
        beating = threading.Thread(
            target=self._beat, args=(name, slot, done), name=f"heartbeat-{name}", daemon=True
        )
        beating.start()
        try:
            approval = self._review_gate(config, name, slot)
            if approval is None:
                return
            report = asyncio.run(
                Pipeline(config, self.store).run(
                    name, stop=self.stopping.is_set, require_approval=approval
                )
            )
        except DigestError as exc:
            finish_slot(self.store, name, slot, RunStatus.FAILED, str(exc), None)
            log.error(kv("failed", newsletter=name, slot=slot, error=str(exc)))
            return
        except Exception as exc:  # record it: the slot must not stay "running" forever
            finish_slot(self.store, name, slot, RunStatus.FAILED, f"internal error: {exc!r}", None)
            raise
        finally:
            done.set()
        status = _status(report)
        finish_slot(self.store, name, slot, status, report.message, report.issue_number)
        _log_report(report, slot, status, time.monotonic() - started)

    #: The clock of the review hooks (tests freeze it).
    clock: Callable[[], datetime] = staticmethod(lambda: datetime.now(UTC))

    # -- listeners --------------------------------------------------------------

    def _on_missed(self, event: JobExecutionEvent) -> None:
        if event.job_id.startswith(JOB_PREFIX):
            name = event.job_id.removeprefix(JOB_PREFIX)
            slot = event.scheduled_run_time.astimezone(UTC)
        elif event.job_id.startswith(DEFER_PREFIX):
            # A deferred run stands for the slot it was deferred from, named in its id.
            name, _, slot_text = event.job_id.removeprefix(DEFER_PREFIX).rpartition("@")
            slot = datetime.fromisoformat(slot_text)
        else:
            return
        newsletter = self.config.newsletters.get(name)
        grace = newsletter.misfire_grace if newsletter else None
        late = datetime.now(UTC) - event.scheduled_run_time
        message = f"missed by {_duration(late)}, more than misfire_grace ({_duration(grace)})"
        record_missed(self.store, name, slot, message)
        log.warning(
            kv("missed", newsletter=name, slot=slot, late=_duration(late), grace=_duration(grace))
        )

    def _on_error(self, event: JobExecutionEvent) -> None:
        log.error(kv("job-error", job=event.job_id, error=repr(event.exception)))


def _status(report: RunReport) -> RunStatus:
    if report.send is not None and report.send.interrupted:
        return RunStatus.INTERRUPTED
    if report.send is None:
        return RunStatus.NOTHING
    return RunStatus.FAILED if report.send.failed else RunStatus.DONE


def _log_report(report: RunReport, slot: datetime, status: RunStatus, seconds: float) -> None:
    for source in report.sources:
        log.info(
            kv(
                "collect",
                newsletter=report.newsletter,
                source=source.source,
                listed=source.listed,
                fetched=source.fetched,
                errors=len(source.errors),
            )
        )
    send = report.send
    log.info(
        kv(
            status,
            newsletter=report.newsletter,
            slot=slot,
            issue=report.issue_number if report.issue_number is not None else "-",
            items=report.items,
            recipients=report.recipients,
            sent=send.sent if send else 0,
            failed=send.failed if send else 0,
            skipped=send.skipped if send else 0,
            resumed=report.resumed,
            seconds=seconds,
        )
    )
