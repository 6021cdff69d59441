"""Provider webhook events already processed, so that a replayed request is refused.

A request's ids (a provider's event ids, Mailgun's signing token, ...) are recorded in
the transaction that applies its events; the unique (provider, event id) pair makes a
concurrent replay fail that transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .tables import WebhookEventRow

# The length of ``webhook_events.event_id``.
_ID_LENGTH = 500


def stored_id(event_id: str) -> str:
    """``event_id`` as it is kept: itself when it fits the column as printable text,
    else a digest of it (a provider's id is whatever its request says)."""
    if len(event_id) <= _ID_LENGTH and event_id.isprintable():
        return event_id
    return "sha256:" + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()


def first_seen(session: Session, provider: str, event_ids: Iterable[str]) -> str | None:
    """One of ``event_ids`` already recorded for ``provider`` (as ``stored_id`` keeps
    it), or ``None``."""
    return session.scalar(
        select(WebhookEventRow.event_id).where(
            WebhookEventRow.provider == provider,
            WebhookEventRow.event_id.in_([stored_id(i) for i in event_ids]),
        )
    )


def record(
    session: Session, provider: str, event_ids: Iterable[str], *, forget_before: datetime
) -> bool:
    """Record ``event_ids`` of ``provider`` and forget the ids received before
    ``forget_before``. ``False`` when another transaction recorded one of the ids
    meanwhile: the session can then only be rolled back."""
    session.execute(delete(WebhookEventRow).where(WebhookEventRow.received_at < forget_before))
    kept = {stored_id(i) for i in event_ids}
    session.add_all(WebhookEventRow(provider=provider, event_id=i) for i in kept)
    try:
        session.flush()
    except IntegrityError:
        return False
    return True
