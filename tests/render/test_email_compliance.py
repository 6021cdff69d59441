"""What mailbox providers require of a bulk sender, checked where digest decides it:
HTTPS one-click unsubscribe (RFC 8058) and globally unique Message-IDs."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.cli import main
from digest.config import load_config
from digest.errors import ConfigError
from digest.models import Subscriber
from digest.personalize import MessageFactory, globally_unique_id
from digest.render import Renderer
from digest.store import Store
from digest.store.tables import DeliveryRow
from tests.support.email_samples import config, sample_issue

SCHEDULES = """\
base_url: {base_url}
backends:
  local: {{type: outbox, path: outbox}}
newsletters: {{}}
"""


@pytest.mark.parametrize("base_url", ["http://news.example.org", "http://10.0.0.5:8000"])
def test_plain_http_base_url_is_refused_with_its_key(tmp_path: Path, base_url: str) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text(SCHEDULES.format(base_url=base_url), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"base_url: .*must use https.*RFC 8058"):
        load_config(path)


@pytest.mark.parametrize(
    "base_url", ["https://news.example.org", "http://127.0.0.1:8000", "http://localhost:8000"]
)
def test_https_and_loopback_base_urls_load(tmp_path: Path, base_url: str) -> None:
    path = tmp_path / "schedules.yaml"
    path.write_text(SCHEDULES.format(base_url=base_url), encoding="utf-8")
    assert load_config(path).base_url == base_url


def test_message_ids_are_globally_unique(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    rendered = Renderer(cfg, cfg.newsletter("weekly")).render(sample_issue(3))

    def factory() -> MessageFactory:
        # The same newsletter, issue and row, as after a database reset or on staging.
        return MessageFactory(
            rendered,
            sender="The Harbour Letter <letters@harbour.example>",
            list_id="weekly.readers.harbour.example",
            links=lambda s: {"unsubscribe_url": "https://u.example/u", "preferences_url": "p"},
            message_key="weekly.7.1",
            date=datetime(2026, 11, 23, 7, tzinfo=UTC),
        )

    reader = Subscriber(1, "reader@example.org")
    ids = {factory().build(reader).message_id for _ in range(50)}
    assert len(ids) == 50
    for one in ids:
        random_part = re.fullmatch(r"<weekly\.7\.1\.1\.([0-9a-f]+)@harbour\.example>", one)
        assert random_part and len(random_part.group(1)) * 4 >= 96


def test_message_id_is_a_valid_msg_id() -> None:
    value = globally_unique_id("weekly.7.1", 42, "harbour.example")
    # RFC 5322 msg-id: "<" dot-atom-text "@" dot-atom-text ">"
    assert re.fullmatch(r"<[A-Za-z0-9.-]+@[A-Za-z0-9.-]+>", value)


def test_the_ledger_keeps_the_message_id_each_reader_got(demo: Path) -> None:
    csv = demo.parent / "examples" / "subscribers.csv"
    assert main(["--config", str(demo), "subscribers", "import", "demo", str(csv)]) == 0
    assert main(["--config", str(demo), "run", "weekly"]) == 0
    sent = {}
    for path in (demo.parent / "outbox" / "new").glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        sent[str(message["To"].addresses[0].addr_spec)] = str(message["Message-ID"])
    store = Store(load_config(demo).database_url)
    with store.session() as session:
        kept = {row.email: row.message_id for row in session.scalars(select(DeliveryRow))}
    assert kept == sent and len(set(kept.values())) == len(kept) > 1


def test_a_forked_worker_never_repeats_the_parents_message_ids() -> None:
    globally_unique_id("weekly.7.1", 1, "harbour.example")  # the pool now holds bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a worker process
        os.write(write, globally_unique_id("weekly.7.1", 2, "harbour.example").encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode().split(".")[4]
    parent = globally_unique_id("weekly.7.1", 2, "harbour.example").split(".")[4]
    assert child != parent
