"""digest's own Celery app: its settings and its one task."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from pathlib import Path

from celery import Celery

from ..backends import make_backend
from ..config import Config, load_config
from ..dispatch import SendOptions, SendProgress, send_issue
from ..errors import ConfigError
from ..pipeline import Pipeline
from ..store import Store, issues, ledger
from .pace import RedisPace

log = logging.getLogger(__name__)

TASK = "digest.send"

#: Seconds between two looks of a worker process for the claims of dead processes on
#: its host: the look reads the issue's whole queue, too much for every task of a large
#: issue, and a lease (a minute) frees them anyway.
FREE_DEAD_EVERY = 15.0
#: When this process last looked, per issue id (``time.monotonic()``).
_freed_at: dict[int, float] = {}


def make_app(config: Config) -> Celery:
    """The Celery app of ``config``'s ``workers:`` (a worker runs the tasks it reads
    with this same configuration file)."""
    if config.workers is None:
        raise ConfigError(f"{config.path} has no 'workers:' section (see docs/scaling.md).")
    app = Celery("digest", broker=config.workers.broker, set_as_current=False)
    app.conf.update(
        # Acknowledged when done, not when taken: a worker that dies mid-task leaves the
        # message to the broker, which hands it to another worker.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One task at a time per process: a prefetched task would wait behind a long one.
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_ignore_result=True,
        task_default_queue=config.workers.queue,
    )
    path = str(config.path)

    @app.task(name=TASK)
    def send(issue_id: int, rows: int) -> int:
        return send_share(load_config(Path(path)), issue_id, rows)

    return app


def send_share(config: Config, issue_id: int, rows: int) -> int:
    """Send up to about ``rows`` of the issue's queued rows (a batch more at most) that
    nobody alive holds; the number this task settled."""
    # Migrated when the worker started (``digest worker`` opens the store first).
    store = Store(config.database_url, migrate=False)
    try:
        stored = issues.by_id(store, issue_id)
        if stored is None:
            log.warning("task for issue id %d, which the database does not have", issue_id)
            return 0
        newsletter = config.newsletter(stored.newsletter)
        backend = make_backend(newsletter.backend, config.backends[newsletter.backend])
        assert config.workers is not None
        if config.workers.limits_url:
            backend.limiter.share(RedisPace(config.workers.limits_url, backend.name))
        settled = 0
        now = time.monotonic()
        free_dead = now - _freed_at.get(issue_id, -math.inf) >= FREE_DEAD_EVERY
        if free_dead:
            _freed_at[issue_id] = now

        def count(progress: SendProgress) -> None:
            nonlocal settled
            settled = progress.settled

        async def go() -> None:
            async with backend:
                await send_issue(
                    store,
                    issue_id,
                    Pipeline(config, store).messages.for_issue(stored),
                    backend,
                    options=SendOptions(free_dead=free_dead),
                    progress=count,
                    stop=lambda: settled >= rows,
                )

        asyncio.run(go())
        # A task that stopped at its share may have settled the issue's last rows.
        ledger.finish(store, issue_id)
        return settled
    finally:
        store.close()


def waiting(config: Config) -> int | None:
    """How many tasks wait in the broker queue (taken but unacknowledged ones are not
    counted); ``None`` when the broker cannot be reached."""
    assert config.workers is not None
    app = make_app(config)
    with app.connection_for_write() as connection:
        try:
            connection.ensure_connection(max_retries=1)
        except Exception:  # kombu raises the transport's own errors
            return None
        try:
            declared = connection.default_channel.queue_declare(config.workers.queue, passive=True)
        except Exception:  # no such queue (a Redis list disappears when empty)
            return 0
        return int(declared.message_count)


def publish(config: Config, issue_id: int, store: Store) -> int:
    """Publish the tasks that send the issue's queued rows; how many."""
    assert config.workers is not None
    queued = ledger.count_queued(store, issue_id)
    tasks = math.ceil(queued / config.workers.batch)
    app = make_app(config)
    with app.producer_or_acquire() as producer:
        for _ in range(tasks):
            app.send_task(TASK, args=(issue_id, config.workers.batch), producer=producer)
    return tasks
