"""Per-recipient messages from one render: valid MIME, exact bodies, safe headers."""

from __future__ import annotations

import binascii
import dataclasses
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.utils import getaddresses
from html import escape
from pathlib import Path
from typing import Any

import pytest

from digest.errors import SubscriberError
from digest.models import Rendered, Subscriber
from digest.personalize import MessageFactory, _qp, fill_slots, mailbox, standalone
from digest.render import Renderer
from tests.support import body_text
from tests.support.email_samples import config, sample_issue


def links(subscriber: Subscriber) -> dict[str, str]:
    return {
        "unsubscribe_url": f"https://letters.harbour.example/unsubscribe/{subscriber.id}.tok",
        "preferences_url": f"https://letters.harbour.example/preferences/{subscriber.id}.tok?a=1&b=2",
    }


@pytest.fixture
def rendered(tmp_path: Path) -> Rendered:
    cfg = config(tmp_path)
    return Renderer(cfg, cfg.newsletter("weekly")).render(sample_issue(8))


def factory(rendered: Rendered, **options: Any) -> MessageFactory:
    return MessageFactory(
        rendered,
        sender="The Harbour Letter <letters@harbour.example>",
        list_id='"The Harbour Letter" <weekly.readers.harbour.example>',
        links=links,
        message_key="weekly.7.1",
        date=datetime(2026, 11, 23, 7, tzinfo=UTC),
        **options,
    )


def test_message_bodies_are_the_render_filled_in(rendered: Rendered) -> None:
    subscriber = Subscriber(5, "zoë@example.org", "Zoë <Ω> Brontë")
    data = factory(rendered).build(subscriber).data
    message = message_from_bytes(data, policy=policy.default)
    values = {"greeting": "Hi Zoë <Ω> Brontë,", **links(subscriber)}
    text = body_text(message, "plain")
    html = body_text(message, "html")
    assert text.replace("\r\n", "\n") == fill_slots(rendered.text, rendered, values)
    escaped = {k: escape(v) for k, v in values.items()}
    assert html.replace("\r\n", "\n") == fill_slots(rendered.html, rendered, escaped)
    assert message["To"].addresses[0].display_name == "Zoë <Ω> Brontë"


def test_the_fields_of_a_message_are_its_mime_filled_in(rendered: Rendered) -> None:
    subscriber = Subscriber(5, "zoe@example.org", "Zoë <Ω> O'Brien")
    built = factory(rendered, unsubscribe_mailto="u@harbour.example").build(subscriber)
    content, values = built.content, dict(built.values)
    assert set(values) == set(content.keys)
    message = message_from_bytes(built.data, policy=policy.default)
    text = body_text(message, "plain")
    html = body_text(message, "html")
    assert built.text == content.text_with(values.__getitem__) == text.replace("\r\n", "\n")
    assert built.html == content.html_with(values.__getitem__) == html.replace("\r\n", "\n")
    headers = dict(built.all_headers)
    for name in ("List-Id", "List-Unsubscribe-Post", "List-Unsubscribe", "Message-ID"):
        assert headers[name] == " ".join(str(message[name]).split())
    assert (content.subject, content.sender) == (message["Subject"], message["From"])
    assert built.name == message["To"].addresses[0].display_name
    assert built.recipient == message["To"].addresses[0].addr_spec


ATTACKER = "attacker@evil.example"
INJECTING_NAMES = [
    f"Zoë, {ATTACKER}, thanks",
    f"Ann, {ATTACKER}, thanks",
    f'Ann" <{ATTACKER}>, "x',
    f"Bartholomew Fitzgerald-Montgomery the Third of Harbourside, {ATTACKER}, thanks",
    f"Zoë Brontë-Ångström {'de la Harbour ' * 6}, {ATTACKER}; Bcc: {ATTACKER}",
]


@pytest.mark.parametrize("name", INJECTING_NAMES)
def test_a_name_holding_an_address_never_adds_a_recipient(rendered: Rendered, name: str) -> None:
    built = factory(rendered).build(Subscriber(5, "zoe@example.org", name))
    message = message_from_bytes(built.data, policy=policy.default)
    [to] = message.get_all("To") or []
    assert [a.addr_spec for a in to.addresses] == ["zoe@example.org"]
    # Python's parser keeps the space between two encoded words (RFC 2047 drops it).
    assert "".join(to.addresses[0].display_name.split()) == "".join(name.split())
    assert "Bcc" not in message
    # The one-line form the JSON APIs get reads as one address too, to any parser.
    assert [addr for _, addr in getaddresses([mailbox(built.name, built.recipient)])] == [
        "zoe@example.org"
    ]
    assert ATTACKER not in mailbox(built.name, built.recipient)
    assert all(
        ATTACKER not in line for line in built.data.split(b"\r\n\r\n")[0].decode().splitlines()
    )


def test_a_standalone_message_is_built_in_both_forms() -> None:
    sent_at = datetime(2026, 11, 23, 7, tzinfo=UTC)
    built = standalone(
        Subscriber(9, "zoe@example.org", f"Zoë, {ATTACKER}"),
        sender="The Harbour Letter <letters@harbour.example>",
        subject="Confirm your subscription",
        text="Hello,\n.hidden line\nOpen https://letters.harbour.example/confirm/x\n",
        date=sent_at,
        message_id="<confirm.1@harbour.example>",
        headers=(("Auto-Submitted", "auto-generated"),),
    )
    message = message_from_bytes(built.data, policy=policy.default)
    assert [a.addr_spec for a in message["To"].addresses] == ["zoe@example.org"]
    assert message.get_content().replace("\r\n", "\n") == built.text
    assert built.html == "" and message.get_content_type() == "text/plain"
    assert message["Auto-Submitted"] == "auto-generated"
    assert dict(built.all_headers)["Message-ID"] == message["Message-ID"] == built.message_id
    assert built.smtp_ready and b"\r\n." not in built.data


def test_every_line_is_within_smtp_limits(rendered: Rendered) -> None:
    long_name = "Bartholomew " * 20
    data = factory(rendered).build(Subscriber(7, "b@example.org", long_name)).data
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_compliance_headers(rendered: Rendered) -> None:
    built = factory(rendered, unsubscribe_mailto="unsub@harbour.example").build(
        Subscriber(9, "c@example.org")
    )
    message = message_from_bytes(built.data, policy=policy.default)
    assert message["List-Unsubscribe"] == (
        "<https://letters.harbour.example/unsubscribe/9.tok>, "
        "<mailto:unsub@harbour.example?subject=unsubscribe>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == '"The Harbour Letter" <weekly.readers.harbour.example>'
    assert message["Message-ID"] == built.message_id
    assert re.fullmatch(r"<weekly\.7\.1\.9\.[0-9a-f]{32}@harbour\.example>", built.message_id)
    assert message.get_content_type() == "multipart/alternative"
    assert built.sender == "letters@harbour.example"


def test_name_with_line_breaks_cannot_add_headers(rendered: Rendered) -> None:
    data = (
        factory(rendered).build(Subscriber(3, "d@example.org", "Eve\r\nBcc: x@evil.example")).data
    )
    message = message_from_bytes(data, policy=policy.default)
    assert message["Bcc"] is None
    assert not re.search(rb"^Bcc:", data, re.M)


@pytest.mark.parametrize(
    "address", ["no-at-sign", "a@b.example\r\nBcc: x@y", "<a@b.example>", "a@b.example, c@d"]
)
def test_unusable_address_is_refused(rendered: Rendered, address: str) -> None:
    with pytest.raises(SubscriberError):
        factory(rendered).build(Subscriber(4, address))


def test_subject_override_for_tests(rendered: Rendered) -> None:
    data = (
        factory(rendered, subject="[TEST] " + rendered.subject)
        .build(Subscriber(1, "e@example.org"))
        .data
    )
    subject = message_from_bytes(data, policy=policy.default)["Subject"]
    assert subject == "[TEST] " + rendered.subject


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a",
        " a",
        "a ",
        "Hi Ann,",
        "https://x.example/u?a=1&b=2",
        "x" * 72,
        "x" * 73,
        "y" * 200,
        "tab\there",
        "Zoë",
        "line\nbreak",
    ],
)
def test_slot_values_encode_exactly_like_the_reference_encoder(value: str) -> None:
    data = value.replace("\n", "\r\n").encode("utf-8")
    reference = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    expected = reference.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert _qp(value) == expected
    assert binascii.a2b_qp(_qp(value)) == data


@pytest.mark.parametrize("value", [".", ".hidden", "a\n.b", "x" * 75 + ".tail", "...\n.\n.."])
def test_no_encoded_line_starts_with_a_dot(value: str) -> None:
    encoded = _qp(value)
    assert not encoded.startswith(b".") and b"\n." not in encoded
    assert binascii.a2b_qp(encoded) == value.replace("\n", "\r\n").encode()


def test_built_messages_are_ready_for_smtp_data_as_they_are(rendered: Rendered) -> None:
    dotted = dataclasses.replace(
        rendered, text=".first\n" + rendered.text + "\n.\n..two\n" + "w" * 75 + ".tail\n"
    )
    message = factory(dotted).build(Subscriber(9, "d@example.org", ".Dot"))
    assert message.smtp_ready
    assert b"\n." not in message.data and b"\n" not in message.data.replace(b"\r\n", b"")
    parsed = message_from_bytes(message.data, policy=policy.default)
    text = body_text(parsed, "plain")
    values = {"greeting": "Hi .Dot,", **links(Subscriber(9, "d@example.org", ".Dot"))}
    assert text.replace("\r\n", "\n") == fill_slots(dotted.text, dotted, values)
