"""Subscriber lists as the CLI sees them: add, remove, list, show and count.

Status changes themselves are the subscriptions service's (``digest.subscriptions``);
CSV import and export are ``digest.subscribers_csv``; the rows are the store's
(``digest.store.subscribers``). Who gets an issue is decided at send time by
``sendable_clause`` (the query that queues deliveries) and ``blocked_subscribers``
(the batch about to be sent), both re-exported here with the other names the
pipeline and dispatch use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import SubscriberError
from .models import Subscriber
from .store import Store
from .store import subscribers as rows
from .store.status import SubscriberStatus
from .store.subscribers import (
    Preferences,
    SubscriberRecord,
    blocked_subscribers,
    count_active,
    section_preferences,
    sendable_clause,
)
from .subscribers_csv import ImportReport, export_csv, import_csv
from .subscriptions import (
    add as add_subscriber,
)
from .subscriptions import (
    bounce as record_bounce,
)
from .subscriptions import (
    email_key,
    leave,
    normalize_email,
    suppress,
    unsuppress,
)

__all__ = [
    "STATUSES",
    "Details",
    "ImportReport",
    "Preferences",
    "add_subscriber",
    "blocked_subscribers",
    "count_active",
    "export_csv",
    "import_csv",
    "list_subscribers",
    "normalize_email",
    "record_bounce",
    "remove_subscriber",
    "section_preferences",
    "sendable_clause",
    "status_counts",
    "subscriber_details",
    "suppress",
    "unsuppress",
]

STATUSES = tuple(SubscriberStatus)


def _need(record: SubscriberRecord | None, address: str, list_name: str) -> SubscriberRecord:
    if record is None:
        raise SubscriberError(f"'{address}' is not on the list '{list_name}'.")
    return record


def remove_subscriber(store: Store, list_name: str, address: str, *, forget: bool = False) -> str:
    """Unsubscribe ``address`` from ``list_name`` (source ``cli``), or with ``forget``
    delete the subscriber and their history. Returns a sentence saying what was done."""
    with store.session() as session:
        rows.require_list(session, list_name)
        record = _need(rows.find(session, list_name, email_key(address)), address, list_name)
        if forget:
            rows.forget(session, record.id)
            return f"Deleted {record.email} and their history from '{list_name}'."
        if leave(session, record, "cli"):
            return f"Unsubscribed {record.email} from '{list_name}'."
        if record.status == SubscriberStatus.UNSUBSCRIBED:
            return f"{record.email} was already unsubscribed from '{list_name}'."
        return f"{record.email} is {record.status} on '{list_name}': nothing is sent to it."


@dataclass(frozen=True, slots=True)
class Details:
    """Everything known about one subscriber: for ``digest subscribers show``."""

    subscriber: Subscriber
    status: str
    attributes: dict[str, Any]
    created_at: datetime
    suppressed: str | None
    soft_bounces: int
    preferences: Preferences
    history: tuple[rows.StatusEvent, ...]


def subscriber_details(store: Store, list_name: str, address: str) -> Details:
    """The status, attributes, preferences, suppression and full status history of
    ``address`` on ``list_name``; ``SubscriberError`` when it is not there."""
    key = email_key(address)
    with store.session() as session:
        rows.require_list(session, list_name)
        record = _need(rows.find(session, list_name, key), address, list_name)
        suppression = rows.suppression(session, key)
        return Details(
            subscriber=record.subscriber(),
            status=record.status,
            attributes=dict(record.attributes),
            created_at=record.created_at,
            suppressed=(
                f"{suppression.reason} ({suppression.source}, "
                f"{suppression.created_at:%Y-%m-%d %H:%M} UTC)"
                if suppression
                else None
            ),
            soft_bounces=rows.soft_bounces(session, key),
            preferences=rows.get_preferences(session, record.id),
            history=rows.history(session, record.id),
        )


def list_subscribers(store: Store, list_name: str) -> list[tuple[Subscriber, str]]:
    """Every subscriber of ``list_name`` with its status; ``SubscriberError`` if no such list."""
    with store.session() as session:
        rows.require_list(session, list_name)
        return [(r.subscriber(), r.status) for r in rows.members(session, list_name)]


def status_counts(store: Store, list_name: str) -> dict[str, int]:
    """Subscribers of ``list_name`` per status (every status, zeros included), plus
    ``suppressed``: how many of them are on the global suppression list and
    ``paused``: how many active ones paused their subscription."""
    with store.session() as session:
        rows.require_list(session, list_name)
        return rows.status_counts(session, list_name)
