"""Golden files: the rendered issue, byte for byte.

The issue is built from fixed Items (``email_samples``), never from extraction. The
``.eml`` has its dynamic headers (Date, Message-ID) replaced before comparing. After
an intended change to the templates, regenerate with::

    DIGEST_REGENERATE_GOLDEN=1 python -m pytest tests/test_render_golden.py

and review the diff of ``tests/golden/`` like any other change.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.models import Section, Subscriber
from digest.personalize import MessageFactory
from digest.render import Renderer
from tests.support import GOLDEN
from tests.support.email_samples import config, item, sample_issue

REGENERATE = os.environ.get("DIGEST_REGENERATE_GOLDEN") == "1"


def normalise(data: bytes) -> bytes:
    """The message with headers that change from run to run replaced by placeholders."""
    data = re.sub(rb"(?m)^Date: .*\r\n", b"Date: <date>\r\n", data)
    return re.sub(rb"(?m)^Message-ID: .*\r\n", b"Message-ID: <message-id>\r\n", data)


def check(name: str, actual: bytes) -> None:
    path = GOLDEN / name
    if REGENERATE:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(actual)
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; create it with DIGEST_REGENERATE_GOLDEN=1")
    assert actual == path.read_bytes(), (
        f"{name} differs from {path}; if the change is intended, regenerate with "
        "DIGEST_REGENERATE_GOLDEN=1 and review the diff"
    )


@pytest.fixture
def rendered(tmp_path: Path):
    cfg = config(tmp_path)
    base = sample_issue(6)
    edge = item(9, title="Ports & “quotes” <em>", image=None, summary="Short.")
    the_issue = replace(base, sections=(*base.sections, Section("Technology", (edge,))))
    return Renderer(cfg, cfg.newsletter("weekly")).render(the_issue)


def test_html_matches_golden(rendered) -> None:
    check("issue.html", rendered.html.encode("utf-8"))


def test_text_matches_golden(rendered) -> None:
    check("issue.txt", rendered.text.encode("utf-8"))


def test_message_matches_golden(rendered) -> None:
    factory = MessageFactory(
        rendered,
        sender="The Harbour Letter <letters@harbour.example>",
        list_id='"The Harbour Letter" <weekly.readers.harbour.example>',
        links=lambda s: {
            "unsubscribe_url": f"https://letters.harbour.example/unsubscribe/{s.id}.token",
            "preferences_url": f"https://letters.harbour.example/preferences/{s.id}.token",
        },
        message_key="weekly.7.1",
        date=datetime.now(UTC),
    )
    message = factory.build(Subscriber(42, "ann@example.org", "Ann Lee"))
    check("issue.eml", normalise(message.data))


def test_normalise_replaces_only_dynamic_headers() -> None:
    raw = b"Date: Mon, 1 Jan 2026\r\nMessage-ID: <a@b>\r\nSubject: Date: x\r\n"
    assert normalise(raw) == b"Date: <date>\r\nMessage-ID: <message-id>\r\nSubject: Date: x\r\n"
