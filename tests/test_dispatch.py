"""Dispatch: the ledger, claims, retries, suppression, resume and the adaptive limiter."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import update

from digest.backends.base import SendPacer
from digest.backends.outbox import OutboxBackend, OutboxBackendConfig
from digest.dispatch import SendOptions, in_flight_window, send_issue
from digest.errors import PermanentError, SendAborted, ThrottledError, TransientError
from digest.store.ledger import claim
from digest.store.tables import DeliveryRow, utcnow
from tests.support import emails as support_emails
from tests.support.mailserver.issue import queued_issue
from tests.support.recorder import Recorder

FAST = SendOptions(backoff_base=0.01, backoff_max=0.02)


def emails(n: int) -> list[str]:
    return support_emails(n, "r")


async def test_every_active_subscriber_gets_one_message_and_the_issue_is_marked_sent(
    tmp_path,
) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(23))
    backend = Recorder()
    report = await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert report.sent == 23
    assert backend.delivered == Counter({e: 1 for e in emails(23)})
    assert issue.issue_status() == "sent"
    assert issue.rows()["r5@example.test"].provider_id.startswith("id-")
    assert all(row.claimed_by == "" for row in issue.rows().values())


async def test_in_flight_messages_never_exceed_the_window(tmp_path) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(60))
    backend = Recorder(connections=3)
    backend.pause = 0.05  # long enough for the three workers to overlap
    report = await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert report.in_flight_window == in_flight_window(backend, FAST) == 15
    assert 5 < backend.most_in_flight <= 15


async def test_unsubscribed_after_queueing_is_skipped_at_send_time(tmp_path) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(6))
    issue.set_status("r2@example.test", "unsubscribed")
    issue.set_status("r4@example.test", "bounced")
    backend = Recorder()
    report = await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert report.skipped == 2 and report.sent == 4
    assert "r2@example.test" not in backend.delivered and "r4@example.test" not in backend.delivered
    assert issue.rows()["r2@example.test"].status == "skipped"
    assert issue.rows()["r2@example.test"].error == "unsubscribed"


async def test_transient_failures_back_off_then_fail_after_max_attempts(tmp_path) -> None:
    plan: dict[str, list[Exception]] = {
        "r0@example.test": [TransientError("busy")],
        "r1@example.test": [TransientError("busy") for _ in range(5)],
    }
    issue = queued_issue(tmp_path / "d.db", emails(4))
    backend = Recorder(plan)
    options = SendOptions(max_attempts=3, backoff_base=0.01, backoff_max=0.02)
    report = await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=options)
    rows = issue.rows()
    assert rows["r0@example.test"].status == "sent" and rows["r0@example.test"].attempts == 2
    assert rows["r1@example.test"].status == "failed" and rows["r1@example.test"].attempts == 3
    assert backend.attempts["r1@example.test"] == 3
    assert report.sent == 3 and report.failed == 1
    assert dict(report.reasons) == {"busy": 1}


async def test_backoff_leaves_the_row_unclaimable_until_its_time(tmp_path) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(2))
    with issue.store.session() as session:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.email == "r0@example.test")
            .values(not_before=utcnow() + timedelta(hours=1))
        )
        claimed = claim(session, issue.issue_id, "w:1", 10, 60)
    assert [c.subscriber.email for c in claimed] == ["r1@example.test"]


async def test_permanent_failure_is_not_retried_and_hard_bounce_suppresses(tmp_path) -> None:
    from digest.errors import HardBounce

    plan: dict[str, list[Exception]] = {
        "r0@example.test": [PermanentError("554 5.7.1 rejected")],
        "r1@example.test": [HardBounce("550 5.1.1 unknown user")],
    }
    issue = queued_issue(tmp_path / "d.db", emails(3))
    backend = Recorder(plan)
    await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert backend.attempts["r0@example.test"] == 1 and backend.attempts["r1@example.test"] == 1
    assert issue.subscriber_status("r0@example.test") == "active"
    assert issue.subscriber_status("r1@example.test") == "bounced"


async def test_an_unusable_address_fails_alone_with_a_sentence(tmp_path) -> None:
    issue = queued_issue(
        tmp_path / "d.db", ["ok@example.test", "evil@example.test\r\nBcc: x@y", "no-at-sign"]
    )
    backend = Recorder()
    report = await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert backend.delivered == Counter({"ok@example.test": 1})
    rows = issue.rows()
    assert rows["no-at-sign"].status == "failed"
    assert "not a usable email address" in rows["no-at-sign"].error
    assert report.failed == 2 and dict(report.reasons) == {"unusable address": 2}


async def test_send_aborted_leaves_every_unsettled_row_queued_and_unclaimed(tmp_path) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(30))
    backend = Recorder(
        {"r12@example.test": [SendAborted("The API refused the credentials.")]}, connections=1
    )
    with pytest.raises(SendAborted, match="refused the credentials"):
        await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    rows = issue.rows()
    sent = {e for e, r in rows.items() if r.status == "sent"}
    # What went out before the abort is recorded, even from the batch that stopped.
    assert sent == set(backend.delivered)
    assert len(sent) == 12
    assert all(
        r.status == "queued" and r.claimed_by == "" for e, r in rows.items() if e not in sent
    )
    assert issue.issue_status() == "sending"


async def test_interrupted_send_resumes_without_repeating_anyone(tmp_path) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(40))
    first = Recorder(connections=2)
    task = asyncio.create_task(
        send_issue(issue.store, issue.issue_id, issue.factory, first, options=FAST)
    )
    while sum(first.delivered.values()) < 17:
        await asyncio.sleep(0)
    task.cancel()  # what Ctrl-C does to asyncio.run
    with pytest.raises(asyncio.CancelledError):
        await task
    assert issue.issue_status() == "sending"
    assert all(r.claimed_by == "" for r in issue.rows().values())
    second = Recorder(connections=2)
    await send_issue(issue.store, issue.issue_id, issue.factory, second, options=FAST)
    total = first.delivered + second.delivered
    assert set(total) == set(emails(40))
    # Only the batches in flight when the send was cut can repeat.
    assert sum(total.values()) - 40 <= in_flight_window(first, FAST)
    assert issue.issue_status() == "sent"


async def test_claims_of_a_dead_process_are_freed_but_a_live_one_is_respected(tmp_path) -> None:
    import socket

    issue = queued_issue(tmp_path / "d.db", emails(4))
    host = socket.gethostname()
    future = utcnow() + timedelta(hours=1)
    with issue.store.session() as session:
        for email, holder in (
            ("r0@example.test", f"{host}:999999999"),  # no such process: crashed earlier
            ("r1@example.test", f"other-host:{os.getpid()}"),  # another machine, lease running
        ):
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.email == email)
                .values(claimed_by=holder, lease_until=future)
            )
    backend = Recorder()
    task = asyncio.create_task(
        send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    )
    await asyncio.sleep(1.0)
    assert set(backend.delivered) == {"r0@example.test", "r2@example.test", "r3@example.test"}
    assert issue.statuses()["r1@example.test"] == "queued"
    # The other machine finishes its row; the send notices and completes.
    with issue.store.session() as session:
        session.execute(
            update(DeliveryRow).where(DeliveryRow.email == "r1@example.test").values(status="sent")
        )
    await asyncio.wait_for(task, 5)
    assert issue.issue_status() == "sent"


async def test_outbox_backend_writes_each_message_once(tmp_path) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(7))
    backend = OutboxBackend("box", OutboxBackendConfig(type="outbox", path=str(tmp_path / "box")))
    async with backend:
        report = await send_issue(issue.store, issue.issue_id, issue.factory, backend)
    assert report.sent == 7
    assert len(list((tmp_path / "box" / "new").iterdir())) == 7


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_limiter_spaces_messages_at_the_configured_rate() -> None:
    clock = FakeClock()
    limiter = SendPacer(10, None, clock=clock, sleep=clock.sleep)
    for _ in range(21):
        await limiter.acquire()
    assert clock.now == pytest.approx(1002.0)


async def test_limiter_caps_the_hour() -> None:
    clock = FakeClock()
    limiter = SendPacer(None, 5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await limiter.acquire()
    assert clock.now == 1000.0
    await limiter.acquire()
    assert clock.now >= 1000.0 + 3600


async def test_throttling_halves_the_pace_honours_retry_after_and_recovers() -> None:
    clock = FakeClock()
    limiter = SendPacer(100, None, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    limiter.throttled(retry_after=30)
    limiter.throttled()  # the same burst: counted once
    assert limiter.rate == 50
    await limiter.acquire()
    assert clock.now >= 1030  # paused for Retry-After
    for _ in range(20):
        clock.now += 1.0
        limiter.relax()
    assert limiter.rate == 100  # back to the configured pace, no higher


async def test_unlimited_backend_slows_to_half_its_observed_pace_then_unlimited_again() -> None:
    clock = FakeClock()
    limiter = SendPacer(None, None, clock=clock, sleep=clock.sleep)
    for _ in range(400):  # 400 messages within 2 seconds: 200 msg/s observed
        await limiter.acquire()
        clock.now += 0.005
    limiter.throttled()
    assert limiter.rate == pytest.approx(100, rel=0.2)
    for _ in range(30):
        clock.now += 1.0
        limiter.relax()
    assert limiter.rate is None


async def test_throttled_batch_api_slows_the_limiter_and_retries(tmp_path) -> None:
    class Batchy(Recorder):
        async def deliver_batch(self, messages):
            if not self.attempts["batch"]:
                self.attempts["batch"] += 1
                raise ThrottledError("429", retry_after=0.05)
            return await super().deliver_batch(messages)

    issue = queued_issue(tmp_path / "d.db", emails(5))
    backend = Batchy(connections=1)
    await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert backend.limiter.throttle_count == 1
    assert backend.delivered == Counter({e: 1 for e in emails(5)})


async def test_two_senders_sharing_one_sqlite_file_never_send_the_same_row(tmp_path) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(200))
    first, second = Recorder(connections=2), Recorder(connections=2)
    await asyncio.gather(
        send_issue(
            issue.store,
            issue.issue_id,
            issue.factory,
            first,
            options=SendOptions(worker="machine-a:1"),
        ),
        send_issue(
            issue.store,
            issue.issue_id,
            issue.factory,
            second,
            options=SendOptions(worker="machine-b:1"),
        ),
    )
    both = first.delivered + second.delivered
    assert both == Counter({e: 1 for e in emails(200)})
    assert first.delivered and second.delivered  # both took a share
    assert set(issue.statuses().values()) == {"sent"}


async def test_a_worker_with_nothing_left_to_claim_ends_without_waiting_for_the_others(
    tmp_path,
) -> None:
    # Two batches: one worker finds nothing more to claim while the other still sends.
    # It used to poll every 0.5 s until that batch was settled, adding up to half a
    # second to every send.
    issue = queued_issue(tmp_path / "d.db", emails(10))
    backend = Recorder(connections=3)
    backend.pause = 0.1
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert report.sent == 10 and issue.issue_status() == "sent"
    assert loop.time() - started < 0.4


async def test_retries_of_a_batch_still_go_after_the_idle_workers_ended(tmp_path) -> None:
    flaky = "r9@example.test"
    issue = queued_issue(tmp_path / "d.db", emails(10))
    backend = Recorder({flaky: [TransientError("busy"), TransientError("busy")]}, connections=3)
    backend.pause = 0.05
    report = await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert report.sent == 10 and backend.attempts[flaky] == 3
    assert issue.issue_status() == "sent"
