"""The smtp backend against a real Postfix, read back from a real Dovecot over IMAP.

Both servers are private instances the test starts on loopback ports with their own
configuration, queue and Maildirs (see ``tests/mailserver/servers.py``).
"""

from __future__ import annotations

import email
import imaplib
import shutil
import tempfile
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.backends.smtp import SmtpBackend, SmtpBackendConfig
from digest.dispatch import SendOptions, send_issue
from digest.models import Content, DeliveryStatus, Message
from tests.support import body_text
from tests.support.mailserver.issue import queued_issue
from tests.support.mailserver.servers import MISSING, Dovecot, Postfix

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@pytest.fixture(scope="module")
def mail():
    # Not pytest's tmp_path: its folders are 0700 root, and Postfix's daemons (user
    # postfix) and mail delivery (user mail) must reach their folders.
    root = Path(tempfile.mkdtemp(prefix="digest-mail-"))
    root.chmod(0o755)
    # One mailbox per test that reads one, so no test depends on another's order.
    postfix = Postfix(root / "postfix", users=["ada", "grace", "hopper"])
    try:
        dovecot = Dovecot(
            root / "dovecot",
            postfix.mail,
            {"ada": "pw-ada", "grace": "pw-grace", "hopper": "pw-hopper"},
        )
    except BaseException:
        postfix.stop()
        raise
    yield postfix, dovecot
    dovecot.stop()
    postfix.stop()
    shutil.rmtree(root, ignore_errors=True)


def fetch_inbox(
    port: int, user: str, password: str, want: int, timeout: float = 15
) -> list[EmailMessage]:
    """Every message in ``user``'s INBOX once ``want`` have arrived (Postfix delivers async)."""
    deadline = time.monotonic() + timeout
    while True:
        imap = imaplib.IMAP4("127.0.0.1", port)
        try:
            imap.login(user, password)
            imap.select("INBOX", readonly=True)
            _, data = imap.search(None, "ALL")
            numbers = data[0].split()
            if len(numbers) >= want or time.monotonic() > deadline:
                messages = []
                for number in numbers:
                    _, parts = imap.fetch(number, "(RFC822)")
                    first = parts[0]
                    assert isinstance(first, tuple), parts  # (envelope, message bytes)
                    messages.append(email.message_from_bytes(first[1], policy=policy.default))
                return messages
        finally:
            imap.logout()
        time.sleep(0.1)


async def test_message_arrives_with_both_parts_and_every_header(
    mail, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    postfix, dovecot = mail
    issue = queued_issue(
        tmp_path / "d.db",
        ["ada@example.test", "nobody@example.test"],
        names={"ada@example.test": "Ada Lovelace"},
    )
    sent_bytes = {}
    factory = issue.factory
    original_build = factory.build

    def build(subscriber):
        message = original_build(subscriber)
        sent_bytes[message.recipient] = message.data
        return message

    monkeypatch.setattr(factory, "build", build)
    config = SmtpBackendConfig(
        type="smtp", host="127.0.0.1", port=postfix.port, security="none", connections=2
    )
    async with SmtpBackend("postfix", config) as backend:
        report = await send_issue(
            issue.store, issue.issue_id, factory, backend, options=SendOptions(max_attempts=1)
        )
    assert report.sent == 1 and report.failed == 1
    # Postfix offers PIPELINING: the message went through the pipelined exchange.
    assert backend.pipelined == 1
    # Postfix refuses an address it has no mailbox for: a hard bounce, suppressed.
    row = issue.rows()["nobody@example.test"]
    assert row.status == "failed" and "550 5.1.1" in row.error
    assert issue.subscriber_status("nobody@example.test") == "bounced"
    assert "queued as" in issue.rows()["ada@example.test"].provider_id

    [received] = fetch_inbox(dovecot.port, "ada", "pw-ada", want=1)
    original = email.message_from_bytes(sent_bytes["ada@example.test"], policy=policy.default)
    for name in (
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "MIME-Version",
    ):
        assert received[name] == original[name], name
    assert received["To"].addresses[0].display_name == "Ada Lovelace"
    assert received.get_content_type() == "multipart/alternative"
    plain, html = body_text(received, "plain"), body_text(received, "html")
    assert plain == body_text(original, "plain")
    assert html == body_text(original, "html")
    assert "Hi Ada Lovelace," in plain
    assert "https://news.digest.test/unsubscribe/" in html
    # Postfix added its own trace header, proof the message went through it.
    assert "mail.digest.test" in received["Received"]
    assert fetch_inbox(dovecot.port, "grace", "pw-grace", want=0, timeout=0) == []


async def test_pipelined_body_lines_starting_with_a_dot_arrive_unchanged(mail) -> None:
    postfix, dovecot = mail
    body = "Dots:\r\n.hidden\r\n.\r\n..two\r\nend\r\n"
    data = (
        "From: news@digest.test\r\nTo: hopper@example.test\r\nSubject: dots\r\n"
        "Message-ID: <dots@digest.test>\r\n\r\n" + body
    ).encode()
    message = Message(
        subscriber_id=1,
        recipient="hopper@example.test",
        sender="news@digest.test",
        message_id="<dots@digest.test>",
        data=data,
        content=Content("news@digest.test", "dots", None, body, ""),
    )
    config = SmtpBackendConfig(type="smtp", host="127.0.0.1", port=postfix.port, security="none")
    async with SmtpBackend("postfix", config) as backend:
        [delivery] = await backend.send([message])
    assert delivery.status is DeliveryStatus.SENT and backend.pipelined == 1
    [received] = fetch_inbox(dovecot.port, "hopper", "pw-hopper", want=1)
    assert received.get_content().replace("\r\n", "\n") == body.replace("\r\n", "\n")
