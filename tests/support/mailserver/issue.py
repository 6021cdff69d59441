"""A real SQLite store holding one issue queued for a list of subscribers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from digest.models import Rendered, Slot
from digest.personalize import MessageFactory
from digest.store import Store, ledger
from digest.store.tables import DeliveryRow, IssueRow, ListRow, SubscriberRow

SLOTS = (
    (Slot.GREETING, "@@greeting@@"),
    (Slot.UNSUBSCRIBE_URL, "@@unsubscribe@@"),
    (Slot.PREFERENCES_URL, "@@preferences@@"),
)
RENDERED = Rendered(
    subject="Weekly digest #1: Harbour reopens",
    preheader="Three stories this week",
    html=(
        "<!doctype html><html><body><p>@@greeting@@</p><h1>Harbour reopens</h1>"
        "<p>The old harbour is open again after two years of works.</p>"
        '<p><a href="@@unsubscribe@@">Unsubscribe</a> · <a href="@@preferences@@">Preferences</a></p>'
        "</body></html>"
    ),
    text=(
        "@@greeting@@\n\nHarbour reopens\nThe old harbour is open again after two years of works.\n\n"
        "Unsubscribe: @@unsubscribe@@\nPreferences: @@preferences@@\n"
    ),
    slots=SLOTS,
)


@dataclass
class QueuedIssue:
    store: Store
    issue_id: int
    factory: MessageFactory

    def statuses(self) -> dict[str, str]:
        """email -> ledger status."""
        with self.store.session() as session:
            return dict(
                session.execute(
                    select(DeliveryRow.email, DeliveryRow.status).where(
                        DeliveryRow.issue_id == self.issue_id
                    )
                ).all()
            )

    def rows(self) -> dict[str, DeliveryRow]:
        with self.store.session() as session:
            return {
                row.email: row
                for row in session.scalars(
                    select(DeliveryRow).where(DeliveryRow.issue_id == self.issue_id)
                )
            }

    def set_status(self, email: str, status: str) -> None:
        with self.store.session() as session:
            session.scalars(
                select(SubscriberRow).where(SubscriberRow.email == email)
            ).one().status = status

    def subscriber_status(self, email: str) -> str:
        with self.store.session() as session:
            return session.scalars(
                select(SubscriberRow.status).where(SubscriberRow.email == email)
            ).one()

    def issue_status(self) -> str:
        with self.store.session() as session:
            return session.scalars(
                select(IssueRow.status).where(IssueRow.id == self.issue_id)
            ).one()


def make_factory() -> MessageFactory:
    return MessageFactory(
        RENDERED,
        sender="Weekly Digest <news@digest.test>",
        list_id='"Weekly" <weekly.news.digest.test>',
        links=lambda s: {
            Slot.UNSUBSCRIBE_URL: f"https://news.digest.test/unsubscribe/{s.id}",
            Slot.PREFERENCES_URL: f"https://news.digest.test/preferences/{s.id}",
        },
        message_key="weekly.1",
        date=datetime(2026, 11, 22, 7, 0, tzinfo=UTC),
    )


def queued_issue(
    path: Path | None,
    emails: list[str],
    url: str | None = None,
    names: dict[str, str] | None = None,
) -> QueuedIssue:
    """A store at ``path`` (or ``url``) with list ``news`` of ``emails`` and issue 1 queued."""
    store = Store(url or f"sqlite:///{path}")
    with store.session() as session:
        lst = ListRow(name="news")
        session.add(lst)
        session.flush()
        session.add_all(
            SubscriberRow(
                list_id=lst.id,
                email=e,
                email_key=e,
                name=(names or {}).get(e, ""),
            )
            for e in emails
        )
        issue = IssueRow(
            newsletter="weekly",
            number=1,
            issue_date="2026-11-22",
            subject=RENDERED.subject,
            html=RENDERED.html,
            text=RENDERED.text,
            slots=dict(SLOTS),
        )
        session.add(issue)
        session.flush()
        ledger.queue(session, issue.id, "news")
        issue_id = issue.id
    return QueuedIssue(store, issue_id, make_factory())
