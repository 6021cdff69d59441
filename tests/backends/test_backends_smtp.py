"""The smtp backend against aiosmtpd servers that misbehave on purpose, through dispatch."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from digest.backends.smtp import SmtpBackend, SmtpBackendConfig, dot_stuffed, reply_error
from digest.dispatch import SendOptions, send_issue
from digest.errors import (
    HardBounce,
    PermanentError,
    Refusal,
    SendAborted,
    ThrottledError,
    TransientError,
)
from digest.models import Content, DeliveryStatus, Message
from tests.support import body_text, emails
from tests.support.mailserver.faults import Faults, FaultServer, ScriptedServer, SilentServer
from tests.support.mailserver.issue import queued_issue
from tests.support.mailserver.tls import make_certificates

FAST = SendOptions(backoff_base=0.01, backoff_max=0.05)
#: The fault tests run twice: against a server offering PIPELINING (the backend's own
#: pipelined exchange) and one that does not (aiosmtplib's sendmail).
PIPELINING = pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "plain"])


def smtp(port: int, **settings: object) -> SmtpBackend:
    config = SmtpBackendConfig.model_validate(
        {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none", **settings}
    )
    return SmtpBackend("mail", config)


async def send(issue, backend: SmtpBackend, options: SendOptions = FAST):
    async with backend:
        return await send_issue(
            issue.store, issue.issue_id, issue.factory, backend, options=options
        )


@pytest.mark.parametrize(
    ("code", "text", "error"),
    [
        (421, "4.7.0 slow down", ThrottledError),
        (451, "4.3.0 try later", ThrottledError),
        (452, "4.5.3 too many recipients", ThrottledError),
        (454, "4.7.1 relay access", ThrottledError),
        (450, "4.2.1 mailbox busy", TransientError),
        (550, "5.1.1 user unknown", HardBounce),
        (554, "5.1.2 bad destination", HardBounce),
        (554, "5.7.1 rejected as spam", Refusal),
        (552, "5.3.4 message too big", Refusal),
        (552, "5.2.2 mailbox full", PermanentError),
    ],
)
def test_replies_map_to_transient_throttled_bounce_or_permanent(code, text, error) -> None:
    exc = reply_error(code, text, "step")
    assert type(exc) is error
    assert str(code) in str(exc)


@PIPELINING
async def test_pool_sends_every_message_once_over_at_most_n_connections(
    tmp_path, pipelining
) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(60), names={"reader0@example.test": "Ada"})
    with FaultServer(pipelining=pipelining) as server:
        backend = smtp(server.port, connections=3)
        report = await send(issue, backend)
    assert report.sent == 60 and report.failed == 0
    assert server.counts() == {e: 1 for e in emails(60)}
    assert 1 <= len(server.peers) <= 3
    assert set(issue.statuses().values()) == {"sent"}
    assert issue.rows()["reader0@example.test"].provider_id.startswith("2.0.0 Ok: queued as")
    assert issue.issue_status() == "sent"
    message = server.parsed("reader0@example.test")
    assert message["To"].addresses[0].display_name == "Ada"
    assert "Hi Ada," in body_text(message, "plain")
    assert backend.pipelined == (60 if pipelining else 0)


@PIPELINING
async def test_per_connection_limit_opens_a_fresh_connection(tmp_path, pipelining) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(20))
    with FaultServer(pipelining=pipelining) as server:
        await send(issue, smtp(server.port, connections=1, max_messages_per_connection=5))
    assert len(server.peers) == 4
    assert sum(server.counts().values()) == 20


@PIPELINING
async def test_unknown_user_fails_at_once_and_is_suppressed(tmp_path, pipelining) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(10))
    gone = "reader3@example.test"
    with FaultServer(Faults(unknown={gone}), pipelining=pipelining) as server:
        report = await send(issue, smtp(server.port, connections=2))
    assert report.sent == 9 and report.failed == 1
    row = issue.rows()[gone]
    assert row.status == "failed" and row.attempts == 1
    assert "550 5.1.1" in row.error
    assert issue.subscriber_status(gone) == "bounced"
    assert dict(report.reasons) == {
        "recipient refused: 550 5.1.1 <<recipient>>: Recipient address rejected: User unknown": 1
    }
    # A failed RCPT is followed by RSET so the connection carries on with the next message.
    assert server.rsets >= 1
    assert gone not in server.counts()


@PIPELINING
async def test_temporary_failures_are_retried_until_delivered_once(tmp_path, pipelining) -> None:
    flaky = set(emails(30)[::3])
    issue = queued_issue(tmp_path / "d.db", emails(30))
    with FaultServer(Faults(tempfail_first=flaky), pipelining=pipelining) as server:
        report = await send(issue, smtp(server.port, connections=2))
    assert report.sent == 30
    assert server.counts() == {e: 1 for e in emails(30)}
    rows = issue.rows()
    assert all(rows[e].attempts == 2 for e in flaky)
    assert all(rows[e].attempts == 1 for e in set(emails(30)) - flaky)


@PIPELINING
async def test_connection_dropped_mid_transaction_reconnects_and_delivers(
    tmp_path, pipelining
) -> None:
    dropped = set(emails(12)[::4])
    issue = queued_issue(tmp_path / "d.db", emails(12))
    with FaultServer(Faults(drop_first=dropped), pipelining=pipelining) as server:
        report = await send(issue, smtp(server.port, connections=1, timeout=2))
    assert report.sent == 12
    assert server.counts() == {e: 1 for e in emails(12)}
    assert len(server.connections) == len(dropped) + 1


@PIPELINING
async def test_421_throttling_halves_the_pace_and_everything_still_goes(
    tmp_path, pipelining
) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(15))
    with FaultServer(Faults(throttle_mail=3), pipelining=pipelining) as server:
        backend = smtp(server.port, connections=1, rate={"per_second": 200})
        report = await send(issue, backend)
    assert server.throttled == 3
    assert backend.limiter.throttle_count >= 1
    assert backend.limiter.rate is not None and backend.limiter.rate < 200
    assert report.sent == 15
    assert server.counts() == {e: 1 for e in emails(15)}


@PIPELINING
async def test_a_server_slower_than_the_timeout_is_reported_never_marked_sent(
    tmp_path, pipelining
) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(2))
    with FaultServer(Faults(data_delay=1.0), pipelining=pipelining) as server:
        report = await send(
            issue,
            smtp(server.port, connections=2, timeout=0.3),
            SendOptions(max_attempts=1, backoff_base=0.01),
        )
    assert report.sent == 0 and report.failed == 2
    assert all(row.status == "failed" for row in issue.rows().values())
    assert all("did not answer within 0.3s" in row.error for row in issue.rows().values())


async def test_wrong_credentials_stop_at_once_and_nothing_is_marked(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("T_SMTP_USER", "digest")
    monkeypatch.setenv("T_SMTP_PASS", "wrong")
    issue = queued_issue(tmp_path / "d.db", emails(5))
    with FaultServer(login=("digest", "right")) as server:
        backend = smtp(server.port, username_env="T_SMTP_USER", password_env="T_SMTP_PASS")
        with pytest.raises(SendAborted, match=r"refused the login .*T_SMTP_USER"):
            await send(issue, backend)
    assert server.received == []
    assert set(issue.statuses().values()) == {"queued"}
    assert issue.issue_status() == "sending"


@PIPELINING
async def test_right_credentials_log_in_and_send(tmp_path, pipelining, monkeypatch) -> None:
    monkeypatch.setenv("T_SMTP_USER", "digest")
    monkeypatch.setenv("T_SMTP_PASS", "right")
    issue = queued_issue(tmp_path / "d.db", emails(5))
    with FaultServer(login=("digest", "right"), pipelining=pipelining) as server:
        backend = smtp(server.port, username_env="T_SMTP_USER", password_env="T_SMTP_PASS")
        report = await send(issue, backend)
    assert report.sent == 5 and len(server.received) == 5


@PIPELINING
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_sends_over_tls_with_the_certificate_checked(tmp_path, security, pipelining) -> None:
    certs = make_certificates(tmp_path / "certs")
    context = certs.server_context()
    issue = queued_issue(tmp_path / "d.db", emails(6))
    with FaultServer(
        pipelining=pipelining,
        starttls=context if security == "starttls" else None,
        implicit_tls=context if security == "tls" else None,
    ) as server:
        backend = smtp(server.port, security=security, ca_file=str(certs.ca_file), connections=2)
        report = await send(issue, backend)
    assert report.sent == 6 and sorted(rcpt for rcpt, _ in server.received) == emails(6)
    # The pipelined wire took over the TLS connection aiosmtplib had secured.
    assert backend.pipelined == (6 if pipelining else 0)
    assert server.parsed(emails(6)[0])["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_a_certificate_from_an_unknown_authority_stops_the_send(tmp_path) -> None:
    certs = make_certificates(tmp_path / "certs")
    issue = queued_issue(tmp_path / "d.db", emails(2))
    with FaultServer(starttls=certs.server_context()) as server:
        backend = smtp(server.port, security="starttls", timeout=3)  # system CAs only
        with pytest.raises(SendAborted, match="TLS with the SMTP server"):
            await send(issue, backend)
    assert server.received == []


@pytest.mark.parametrize(("security", "needle"), [("tls", "TLS"), ("starttls", "STARTTLS")])
async def test_tls_failure_stops_with_a_sentence(tmp_path, security, needle) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(3))
    with FaultServer() as server:
        backend = smtp(server.port, security=security, timeout=3)
        with pytest.raises(SendAborted, match=f"TLS with the SMTP server .*{needle}|{needle}"):
            await send(issue, backend)
    assert server.received == []
    assert set(issue.statuses().values()) == {"queued"}


async def test_a_server_that_never_answers_times_out_and_nothing_is_marked(tmp_path) -> None:
    issue = queued_issue(tmp_path / "d.db", emails(3))
    with SilentServer() as silent, pytest.raises(SendAborted, match=r"did not answer within 0\.5s"):
        await send(issue, smtp(silent.port, timeout=0.5))
    assert set(issue.statuses().values()) == {"queued"}


async def test_missing_password_variable_is_a_config_error(tmp_path, monkeypatch) -> None:
    from digest.errors import ConfigError

    monkeypatch.setenv("T_SMTP_USER", "digest")
    monkeypatch.delenv("T_SMTP_PASS", raising=False)
    backend = smtp(2525, username_env="T_SMTP_USER", password_env="T_SMTP_PASS")
    with pytest.raises(ConfigError, match=r"\$T_SMTP_PASS, which is not set"):
        await backend.open()


def message(n: int, data: bytes | None = None) -> Message:
    return Message(
        subscriber_id=n,
        recipient=f"reader{n}@example.test",
        sender="news@digest.test",
        message_id=f"<m{n}@digest.test>",
        data=data or f"Subject: {n}\r\n\r\nHello {n}\r\n".encode(),
        content=Content("news@digest.test", str(n), None, f"Hello {n}", ""),
    )


def accept(number: int, commands: list[str]) -> list[str]:
    return ["250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"]


async def test_mail_rcpt_and_data_go_together_when_pipelining_is_offered() -> None:
    # The server answers nothing until MAIL, RCPT and DATA have all arrived: a client
    # waiting for each reply would time out instead.
    async with ScriptedServer(accept) as server:
        backend = smtp(server.port, connections=1, timeout=2)
        async with backend:
            deliveries = await backend.send([message(1), message(2)])
    assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * 2
    assert [d.provider_id for d in deliveries] == [
        "2.0.0 Ok: queued as S0",
        "2.0.0 Ok: queued as S1",
    ]
    assert server.transactions[0] == [
        "MAIL FROM:<news@digest.test> SIZE=23",
        "RCPT TO:<reader1@example.test>",
        "DATA",
    ]
    assert server.bodies[1] == b"Subject: 2\r\n\r\nHello 2\r\n.\r\n"
    assert server.connections == 1 and backend.pipelined == 2


async def test_a_name_holding_an_address_never_adds_a_recipient(tmp_path) -> None:
    names = {
        "zoe@example.test": "Zoë, attacker@evil.example, thanks",
        "ann@example.test": "Ann Lee of the Harbour Letter Readers Association, attacker@evil.example",
    }
    issue = queued_issue(tmp_path / "d.db", list(names), names=names)
    async with ScriptedServer(accept) as server:
        report = await send(issue, smtp(server.port, connections=1, timeout=2))
    assert report.sent == 2
    recipients = [c for t in server.transactions for c in t if c.startswith("RCPT")]
    assert sorted(recipients) == ["RCPT TO:<ann@example.test>", "RCPT TO:<zoe@example.test>"]
    for body in server.bodies:
        to = message_from_bytes(body, policy=policy.default)["To"]
        assert [a.addr_spec for a in to.addresses] in (["zoe@example.test"], ["ann@example.test"])


async def test_without_pipelining_each_command_waits_for_its_reply() -> None:
    async with ScriptedServer(accept, pipelining=False) as server:
        backend = smtp(server.port, connections=1, timeout=2)
        async with backend:
            deliveries = await backend.send([message(1), message(2)])
    assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * 2
    assert server.unasked == []
    assert len(server.bodies) == 2 and backend.pipelined == 0


async def test_a_refused_recipient_in_a_pipeline_bounces_and_the_connection_goes_on() -> None:
    def script(number: int, commands: list[str]) -> list[str]:
        if number == 0:
            return [
                "250 2.1.0 Ok",
                "550 5.1.1 <reader1@example.test>: Recipient address rejected: User unknown",
                "554 5.5.1 Error: no valid recipients",
            ]
        return accept(number, commands)

    async with ScriptedServer(script) as server:
        backend = smtp(server.port, connections=1, timeout=2)
        async with backend:
            deliveries = await backend.send([message(1), message(2)])
    refused, delivered = deliveries
    assert refused.status is DeliveryStatus.FAILED and refused.bounced
    assert refused.error.startswith("recipient refused: 550 5.1.1")
    assert delivered.status is DeliveryStatus.SENT
    # The failed transaction was reset before the next one, on the same connection.
    assert "RSET" in server.commands
    assert server.commands.index("RSET") < server.commands.index("RCPT TO:<reader2@example.test>")
    assert server.connections == 1 and len(server.bodies) == 1


async def test_421_in_the_middle_of_a_pipeline_throttles_and_reconnects() -> None:
    def script(number: int, commands: list[str]) -> list[str]:
        if number == 0:
            return ["250 2.1.0 Ok", "421 4.7.0 Too many connections, closing", "close"]
        return accept(number, commands)

    async with ScriptedServer(script) as server:
        backend = smtp(server.port, connections=1, timeout=2)
        async with backend:
            deliveries = await backend.send([message(1), message(2)])
    throttled, delivered = deliveries
    assert throttled.status is DeliveryStatus.TRANSIENT
    assert throttled.error.startswith("recipient refused: 421 4.7.0")
    assert backend.limiter.throttle_count == 1
    assert delivered.status is DeliveryStatus.SENT
    assert server.connections == 2


async def test_a_connection_dropped_during_data_is_transient_and_replaced() -> None:
    def script(number: int, commands: list[str]) -> list[str]:
        return ["250 Ok", "250 Ok", "close-mid-data"] if number == 0 else accept(number, commands)

    body = b"Subject: long\r\n\r\n" + b"x" * 70 + b"\r\n" * 2000
    async with ScriptedServer(script) as server:
        backend = smtp(server.port, connections=1, timeout=2)
        async with backend:
            deliveries = await backend.send([message(1, body), message(2)])
    dropped, delivered = deliveries
    assert dropped.status is DeliveryStatus.TRANSIENT
    assert "dropped the connection" in dropped.error
    assert delivered.status is DeliveryStatus.SENT
    assert server.connections == 2


async def test_a_reply_slower_than_the_timeout_in_a_pipeline_is_transient() -> None:
    def script(number: int, commands: list[str]) -> list[str]:
        return ["250 Ok", "250 Ok"]  # and never a word about DATA

    async with ScriptedServer(script) as server:
        backend = smtp(server.port, connections=1, timeout=0.3)
        async with backend:
            [delivery] = await backend.send([message(1)])
    assert delivery.status is DeliveryStatus.TRANSIENT
    assert "did not answer within 0.3s" in delivery.error


def test_dot_stuffing_doubles_leading_dots_and_ends_every_line_in_crlf() -> None:
    assert dot_stuffed(b".a\r\nb\r\n.\r\n..c\r\n") == b"..a\r\nb\r\n..\r\n...c\r\n.\r\n"
    assert dot_stuffed(b"a\nb\r.c") == b"a\r\nb\r\n..c\r\n.\r\n"
    assert dot_stuffed(b"") == b"\r\n.\r\n"


@PIPELINING
async def test_body_lines_starting_with_a_dot_arrive_intact(pipelining) -> None:
    data = b"Subject: dots\r\n\r\n.hidden\r\n.\r\n..two\r\nend\r\n"
    with FaultServer(pipelining=pipelining) as server:
        backend = smtp(server.port, connections=1)
        async with backend:
            [delivery] = await backend.send([message(1, data)])
    assert delivery.status is DeliveryStatus.SENT
    assert server.received == [("reader1@example.test", data)]


async def test_an_internationalised_address_needs_smtputf8_from_the_server() -> None:
    utf8 = Message(
        subscriber_id=3,
        recipient="zoë@example.test",
        sender="news@digest.test",
        message_id="<m3@digest.test>",
        data=b"Subject: 3\r\n\r\nHello\r\n",
        content=Content("news@digest.test", "3", None, "Hello", ""),
    )
    async with ScriptedServer(accept) as server:  # offers PIPELINING, not SMTPUTF8
        backend = smtp(server.port, connections=1, timeout=2)
        async with backend:
            refused, delivered = await backend.send([utf8, message(4)])
    assert refused.status is DeliveryStatus.FAILED and not refused.bounced
    assert "does not offer SMTPUTF8" in refused.error
    assert delivered.status is DeliveryStatus.SENT
    assert not any("zo" in line for line in server.commands)
