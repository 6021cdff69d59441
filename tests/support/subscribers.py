"""Shared by the subscriber, web and webhook tests: a demo project in a temporary
folder and the real web service on a loopback port.

``demo_project`` copies ``examples/`` and ``schedules.yaml`` into a folder, points
``base_url`` at the port the server will listen on and may hold back one feed item
(so that a later ``run`` has a new article to send). ``LiveServer`` runs
``create_app`` on uvicorn in a thread, on a socket bound before the config is
written, so links in messages reach it.
"""

from __future__ import annotations

import asyncio
import email
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import uvicorn
from sqlalchemy import select

from digest.config import Config, load_config
from digest.pipeline import Pipeline, RunReport
from digest.store import Store
from digest.store.tables import SubscriberEventRow, SubscriberRow
from digest.web import create_app
from tests.support import ROOT, to_address

SECRET = "test-secret-key-that-is-long-enough-0123456789"
ITEM = re.compile(r"\s*<item>.*?</item>", re.S)


def free_socket() -> socket.socket:
    """A listening-ready TCP socket bound to a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def demo_project(
    folder: Path, *, base_url: str, extra_yaml: str = "", hold_back_item: bool = False
) -> Path:
    """A copy of the demo in ``folder``; returns its schedules.yaml."""
    shutil.copytree(ROOT / "examples", folder / "examples")
    text = (ROOT / "schedules.yaml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^base_url: .*$", f"base_url: {base_url}", text)
    config = folder / "schedules.yaml"
    config.write_text(text + extra_yaml, encoding="utf-8")
    if hold_back_item:
        feed = folder / "examples" / "site" / "feed.xml"
        original = feed.read_text(encoding="utf-8")
        (folder / "feed.full.xml").write_text(original, encoding="utf-8")
        feed.write_text(ITEM.sub("", original, count=1), encoding="utf-8")
    return config


def release_held_item(folder: Path) -> None:
    """Put back the feed item ``demo_project`` held back: the next run has one article."""
    shutil.copy(folder / "feed.full.xml", folder / "examples" / "site" / "feed.xml")


def run(config: Config, store: Store, newsletter: str = "weekly") -> RunReport:
    """One real ``run`` of a newsletter (collect from the local feed, send to the outbox)."""
    return asyncio.run(Pipeline(config, store).run(newsletter))


def outbox_messages(folder: Path, name: str = "outbox") -> list[EmailMessage]:
    """Every message in the outbox Maildir's ``new/``."""
    box = folder / name / "new"
    if not box.is_dir():
        return []
    return [
        email.message_from_bytes(path.read_bytes(), policy=default)
        for path in sorted(box.iterdir())
    ]


def recipients(folder: Path, name: str = "outbox") -> list[str]:
    """The To: address of every message in the outbox."""
    return sorted(to_address(m).addr_spec for m in outbox_messages(folder, name))


def clear_outbox(folder: Path, name: str = "outbox") -> None:
    """Empty the outbox so the next assertions see only new messages."""
    for path in (folder / name / "new").glob("*"):
        path.unlink()


def unsubscribe_url(message: EmailMessage) -> str:
    """The HTTP URL in a message's List-Unsubscribe header."""
    found = re.search(r"<(https?://[^>]+)>", str(message["List-Unsubscribe"]))
    assert found, message["List-Unsubscribe"]
    return found.group(1)


def status_of(store: Store, address: str, list_name: str = "demo") -> str:
    """The status of ``address`` on ``list_name``."""
    from digest.store.tables import ListRow

    with store.session() as session:
        return session.scalars(
            select(SubscriberRow.status)
            .join(ListRow, ListRow.id == SubscriberRow.list_id)
            .where(SubscriberRow.email == address, ListRow.name == list_name)
        ).one()


def events_of(store: Store, address: str) -> list[tuple[str, str]]:
    """``(status, source)`` of every recorded change of ``address``, oldest first."""
    with store.session() as session:
        return [
            (e.status, e.source)
            for e in session.scalars(
                select(SubscriberEventRow)
                .join(SubscriberRow, SubscriberRow.id == SubscriberEventRow.subscriber_id)
                .where(SubscriberRow.email == address)
                .order_by(SubscriberEventRow.id)
            )
        ]


class LiveServer:
    """The web service of ``config`` on uvicorn, in a thread, on ``sock``."""

    def __init__(self, config: Config, store: Store, sock: socket.socket) -> None:
        self.app = create_app(config, store)
        host, port = sock.getsockname()
        self.url = f"http://{host}:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]})

    @contextmanager
    def running(self) -> Iterator[LiveServer]:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the web service did not start")
            time.sleep(0.02)
        try:
            yield self
        finally:
            self.server.should_exit = True
            self.thread.join(10)


@contextmanager
def served_demo(
    folder: Path, *, extra_yaml: str = "", hold_back_item: bool = False
) -> Iterator[tuple[LiveServer, Config, Store]]:
    """The demo project in ``folder`` with its web service running; yields
    ``(server, config, store)``. The demo list is imported."""
    from digest.subscribers import import_csv

    sock = free_socket()
    host, port = sock.getsockname()
    path = demo_project(
        folder,
        base_url=f"http://{host}:{port}",
        extra_yaml=extra_yaml,
        hold_back_item=hold_back_item,
    )
    config = load_config(path)
    store = Store(config.database_url)
    import_csv(store, "demo", folder / "examples" / "subscribers.csv")
    server = LiveServer(config, store, sock)
    try:
        with server.running():
            yield server, config, store
    finally:
        store.close()


def wait_for_messages(folder: Path, count: int, timeout: float = 10.0) -> list[EmailMessage]:
    """The outbox once it holds ``count`` messages: confirmation emails are sent after
    the response, so a test waits for them (and fails if more than ``count`` arrive)."""
    deadline = time.monotonic() + timeout
    while len(found := outbox_messages(folder)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # room for an unexpected extra message to show up
    found = outbox_messages(folder)
    assert len(found) == count, [str(m["To"]) for m in found]
    return found
