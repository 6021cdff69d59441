"""Refusals that say nothing about the recipient (issue 12, items 3 and 11): a relay's
policy refusal or a server gone for the whole send stops the send with a sentence and
leaves the list, the ledger rows and the issue as they were, so the next run resumes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from digest.backends.smtp import SmtpBackend, SmtpBackendConfig, reply_error
from digest.dispatch import SendOptions, send_issue
from digest.errors import HardBounce, PermanentError, Refusal, SendRefused, Unreachable
from digest.store.tables import SuppressionRow
from tests.support import emails
from tests.support.mailserver.faults import Faults, FaultServer
from tests.support.mailserver.issue import queued_issue

FAST = SendOptions(backoff_base=0.01, backoff_max=0.02)
PIPELINING = pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "plain"])


def smtp(port: int, **settings: object) -> SmtpBackend:
    config = SmtpBackendConfig.model_validate(
        {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none", **settings}
    )
    return SmtpBackend("mail", config)


@pytest.mark.parametrize(
    ("code", "text", "error"),
    [
        (550, "5.1.1 <a@example.test>: Recipient address rejected: User unknown", HardBounce),
        (550, "5.2.1 Mailbox disabled", HardBounce),
        (550, "No such user here", HardBounce),
        (550, "5.7.1 Relay access denied", Refusal),
        (554, "5.7.1 Message rejected as spam", Refusal),
        (550, "Relay access denied", Refusal),
        (550, "Rejected by policy", Refusal),
        (553, "5.1.8 Sender address rejected: Domain not found", Refusal),
        (552, "5.3.4 Message too big for system", Refusal),
        (554, "5.4.6 Routing loop detected", Refusal),
        (535, "Authentication credentials invalid", Refusal),
        (552, "5.2.2 Mailbox full", PermanentError),
    ],
)
def test_only_mailbox_level_codes_are_hard_bounces(code: int, text: str, error: type) -> None:
    assert type(reply_error(code, text, "recipient refused")) is error


def counts(issue) -> dict[str, int]:
    statuses = issue.statuses()
    return {status: list(statuses.values()).count(status) for status in set(statuses.values())}


def suppressed(issue) -> int:
    with issue.store.session() as session:
        return session.scalar(select(func.count(SuppressionRow.id))) or 0


@PIPELINING
async def test_a_relay_refusing_every_rcpt_stops_the_send_and_changes_nobody(
    tmp_path, pipelining
) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(40))
    faults = Faults(refuse_every_rcpt="550 5.7.1 Relay access denied")
    with FaultServer(faults, pipelining=pipelining) as server:
        backend = smtp(server.port, connections=2)
        async with backend:
            with pytest.raises(SendRefused) as stopped:
                await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    message = str(stopped.value)
    assert "550 5.7.1 Relay access denied" in message and "no address was suppressed" in message
    assert "Traceback" not in message and "\n" not in message
    assert counts(issue) == {"queued": 40}
    assert all(row.attempts == 0 and row.claimed_by == "" for row in issue.rows().values())
    assert {issue.subscriber_status(e) for e in emails(40)} == {"active"}
    assert suppressed(issue) == 0
    assert issue.issue_status() == "sending"
    assert server.counts() == {}

    # The operator fixed the relay: the next send resumes and everyone gets one copy.
    with FaultServer(pipelining=pipelining) as server:
        backend = smtp(server.port, connections=2)
        async with backend:
            report = await send_issue(
                issue.store, issue.issue_id, issue.factory, backend, options=FAST
            )
    assert report.sent == 40 and server.counts() == {e: 1 for e in emails(40)}
    assert issue.issue_status() == "sent"


async def test_a_short_list_all_refused_stops_before_the_threshold(tmp_path) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(3))
    faults = Faults(refuse_every_rcpt="550 5.7.1 Relay access denied")
    with FaultServer(faults) as server:
        backend = smtp(server.port, connections=1)
        async with backend:
            with pytest.raises(SendRefused):
                await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert counts(issue) == {"queued": 3}
    assert issue.issue_status() == "sending"


async def test_one_address_refused_by_policy_fails_alone_and_is_not_suppressed(tmp_path) -> None:
    from tests.support.recorder import Recorder

    issue = queued_issue(tmp_path / "d.db", emails(12))
    picky = "reader4@example.test"
    backend = Recorder({picky: [Refusal("550 5.7.1 Content rejected") for _ in range(9)]})
    report = await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    rows = issue.rows()
    assert report.sent == 11 and rows[picky].status == "failed"
    assert issue.subscriber_status(picky) == "active" and suppressed(issue) == 0
    assert issue.issue_status() == "sent"


async def test_a_server_gone_for_the_whole_send_leaves_the_issue_unfinished(tmp_path) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(6))
    with FaultServer() as server:
        backend = smtp(server.port, connections=1, timeout=2)
        await backend.open()  # the first connection is checked, then the server goes
    try:
        with pytest.raises(SendRefused) as stopped:
            await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    finally:
        await backend.close()
    assert "Cannot connect" in str(stopped.value) and "run again" in str(stopped.value)
    assert counts(issue) == {"queued": 6}
    assert issue.issue_status() == "sending"


async def test_unreachable_provider_is_retried_then_stops(tmp_path) -> None:
    from tests.support.recorder import Recorder

    issue = queued_issue(tmp_path / "d.db", emails(4))
    backend = Recorder({e: [Unreachable("cannot reach the API")] * 9 for e in emails(4)})
    with pytest.raises(SendRefused):
        await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert counts(issue) == {"queued": 4}
    assert issue.issue_status() == "sending"


async def test_requeue_failed_leaves_hard_bounces_and_the_unsubscribed_alone(tmp_path) -> None:
    from digest.store import ledger
    from tests.support.recorder import Recorder

    issue = queued_issue(tmp_path / "d.db", emails(5))
    backend = Recorder(
        {
            "reader0@example.test": [HardBounce("550 5.1.1 User unknown")],
            "reader1@example.test": [PermanentError("552 5.2.2 Mailbox full")],
            "reader2@example.test": [PermanentError("552 5.2.2 Mailbox full")],
        }
    )
    await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert issue.issue_status() == "sent"
    issue.set_status("reader2@example.test", "unsubscribed")
    assert ledger.requeue_failed(issue.store, "weekly") == (1, 1)
    assert issue.statuses()["reader1@example.test"] == "queued"
    assert issue.statuses()["reader0@example.test"] == "failed"
    assert issue.statuses()["reader2@example.test"] == "failed"
    assert issue.issue_status() == "sending"
    report = await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert report.sent == 1 and issue.issue_status() == "sent"
    assert backend.delivered["reader1@example.test"] == 1
    assert ledger.requeue_failed(issue.store, "nobody") is None


async def test_the_refusal_threshold_is_the_backends_max_refusals(tmp_path) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(10))
    faults = Faults(refuse_every_rcpt="554 5.7.1 Client host rejected: blocklisted")
    with FaultServer(faults) as server:
        backend = smtp(server.port, connections=1, max_refusals=2)
        async with backend:
            with pytest.raises(SendRefused) as stopped:
                await send_issue(
                    issue.store,
                    issue.issue_id,
                    issue.factory,
                    backend,
                    options=SendOptions(batch_size=1, backoff_base=0.01, backoff_max=0.02),
                )
    assert "refused 2 recipient(s)" in str(stopped.value)
    assert counts(issue) == {"queued": 10}
