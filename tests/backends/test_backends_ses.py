"""The ses backend against moto's server mode (a local stand-in for the SES v2 API)."""

from __future__ import annotations

from email.utils import getaddresses
from pathlib import Path

import pytest

from digest.backends.ses import SesBackend, SesBackendConfig
from digest.dispatch import SendOptions, send_issue
from digest.errors import SendRefused
from tests.support import free_port
from tests.support.mailserver.issue import queued_issue

moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
boto3 = pytest.importorskip("boto3")

REGION = "eu-west-1"


@pytest.fixture(autouse=True)
def aws_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


@pytest.fixture
def moto():
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    yield url
    server.stop()


def ses(url: str) -> SesBackend:
    return SesBackend(
        "aws", SesBackendConfig(type="ses", region=REGION, endpoint_url=url, connections=2)
    )


def sent_by_moto() -> list:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


async def test_raw_messages_go_out_once_verified_and_are_rejected_before(
    moto, tmp_path: Path
) -> None:
    issue = queued_issue(tmp_path / "d.db", ["a@example.test", "b@example.test"])
    async with ses(moto) as backend:
        with pytest.raises(SendRefused) as stopped:
            await send_issue(
                issue.store,
                issue.issue_id,
                issue.factory,
                backend,
                options=SendOptions(max_attempts=1),
            )
    # The sender is not verified yet: SES refuses every message, nothing is sent, and
    # the refusal is about us: the send stops with the rows queued, nobody failed.
    assert "MessageRejected" in str(stopped.value)
    assert set(issue.statuses().values()) == {"queued"}

    client = boto3.client(
        "ses",
        region_name=REGION,
        endpoint_url=moto,
        aws_access_key_id="AKIDTESTING",
        aws_secret_access_key="secret-testing",
    )
    client.verify_email_identity(EmailAddress="news@digest.test")
    second = queued_issue(tmp_path / "e.db", ["c@example.test", "d@example.test"])
    async with ses(moto) as backend:
        report = await send_issue(second.store, second.issue_id, second.factory, backend)
    assert report.sent == 2
    assert all(row.provider_id for row in second.rows().values())
    raw = [m for m in sent_by_moto() if getattr(m, "raw_data", None)]
    # One raw message per recipient (moto lists the To header beside the envelope).
    assert len(raw) == 2
    assert sorted(tuple(set(m.destinations)) for m in raw) == [
        ("c@example.test",),
        ("d@example.test",),
    ]
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw[0].raw_data


async def test_a_name_holding_an_address_never_adds_a_recipient(moto, tmp_path: Path) -> None:
    attacker = "attacker@evil.example"
    names = {
        "zoe@example.test": f"Zoë, {attacker}, thanks",
        "ann@example.test": f"Ann Lee of the Harbour Letter Readers Association, {attacker}, thanks",
    }
    boto3.client(
        "ses",
        region_name=REGION,
        endpoint_url=moto,
        aws_access_key_id="AKIDTESTING",
        aws_secret_access_key="secret-testing",
    ).verify_email_identity(EmailAddress="news@digest.test")
    issue = queued_issue(tmp_path / "d.db", list(names), names=names)
    async with ses(moto) as backend:
        report = await send_issue(issue.store, issue.issue_id, issue.factory, backend)
    assert report.sent == 2
    # moto lists the raw To header beside the envelope: every address in either is ours.
    ours = [
        {address for _, address in getaddresses(m.destinations)}
        for m in sent_by_moto()
        if getattr(m, "raw_data", None) and set(names) & set(m.destinations)
    ]
    assert sorted(map(sorted, ours)) == [["ann@example.test"], ["zoe@example.test"]]


async def test_requests_are_signed_with_sigv4_for_ses_in_the_region() -> None:
    backend = ses("https://email.eu-west-1.amazonaws.com")
    await backend.open()
    try:
        url, headers = backend.signed(b'{"a": 1}')
        _, other = backend.signed(b'{"a": 2}')
    finally:
        await backend.close()
    assert url == "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails"
    auth = headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDTESTING/")
    assert f"/{REGION}/ses/aws4_request" in auth
    assert "X-Amz-Date" in headers
    assert other["Authorization"] != auth  # the body is part of the signature
