"""The issues of each newsletter: ``issues`` (with ``issue_items``, the articles each
carried) and ``issue_drafts`` (the next issue as a preview froze it).

An issue is stored once, as composed and rendered: the rendered subject, HTML and
text that every reader gets, and the composed ``Issue`` itself (``content``, JSON)
from which per-reader variants are cut at send time. One builder (``_columns``) makes
the row of a draft and of an issue alike, so recording a fresh issue and promoting a
draft store the same thing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, literal_column, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import RunConflict
from ..models import Issue, Item, Rendered, Section
from . import Store, articles, dialect, ledger
from .status import IssueStatus
from .tables import DeliveryRow, IssueDraftRow, IssueItemRow, IssueRow, utcnow


@dataclass(frozen=True, slots=True)
class Composed:
    """An issue as composed and rendered, with the stored ids of the articles of its
    items (``issue.items`` order)."""

    issue: Issue
    rendered: Rendered
    article_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Draft:
    """The next issue of a newsletter as ``freeze`` kept it, and when."""

    composed: Composed
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredIssue:
    """An issue being sent or sent. ``issue`` is ``None`` for issues stored before the
    composed issue was kept (revision 0010)."""

    id: int
    newsletter: str
    number: int
    rendered: Rendered
    issue: Issue | None
    items: int
    created_at: datetime


def next_number(store: Store, newsletter: str) -> int:
    """The number the next issue of ``newsletter`` gets."""
    with store.session() as session:
        last = session.scalar(
            select(func.max(IssueRow.number)).where(IssueRow.newsletter == newsletter)
        )
    return (last or 0) + 1


def last_made(store: Store, newsletter: str) -> datetime | None:
    """When the newest issue of ``newsletter`` was made."""
    with store.session() as session:
        return session.scalar(
            select(func.max(IssueRow.created_at)).where(IssueRow.newsletter == newsletter)
        )


def freeze(store: Store, newsletter: str, composed: Composed) -> None:
    """Keep ``composed`` as the draft of ``newsletter``, replacing any earlier one;
    ``RunConflict`` when another preview saved one at the same moment."""
    raced = _raced(
        f"Another preview of '{newsletter}' was saved at the same moment; this one was not "
        f"kept. Run 'digest preview {newsletter}' again if you want yours."
    )
    with raced, store.session() as session:
        session.execute(delete(IssueDraftRow).where(IssueDraftRow.newsletter == newsletter))
        session.add(
            IssueDraftRow(
                newsletter=newsletter,
                items=_items(composed),
                # Real time: it is compared with the collected_at of articles.
                created_at=utcnow(),
                **_columns(composed),
            )
        )


def draft(store: Store, newsletter: str) -> Draft | None:
    """The draft of ``newsletter``, if one is kept."""
    with store.session() as session:
        row = session.scalar(select(IssueDraftRow).where(IssueDraftRow.newsletter == newsletter))
        if row is None:
            return None
        assert row.content is not None  # revision 0010 dropped the drafts without it
        composed = Composed(
            issue_from_json(row.content),
            _rendered(row),
            tuple(entry["article_id"] for entry in row.items),
        )
        return Draft(composed, row.created_at)


def current_draft(
    store: Store, newsletter: str, candidate_ids: Collection[int]
) -> tuple[Draft | None, str]:
    """The draft of ``newsletter`` if it is still the next issue, given the ids of the
    unsent articles the next issue would be composed from now; and a note when a draft
    exists but is out of date (new articles arrived since the preview)."""
    kept = draft(store, newsletter)
    if kept is None:
        return None, ""
    number = kept.composed.issue.number
    frozen = set(kept.composed.article_ids)
    candidates = set(candidate_ids)
    newer = articles.collected_since(store, candidates - frozen, kept.created_at)
    if newer or not frozen <= candidates or number != next_number(store, newsletter):
        reason = f"{newer} new article(s) arrived" if newer else "its articles changed"
        return None, f"The previewed issue #{number} was rebuilt: {reason} since the preview."
    return kept, ""


def record(
    store: Store, newsletter: str, composed: Composed, list_name: str, created_at: datetime
) -> StoredIssue | None:
    """Store ``composed`` as the issue of ``newsletter`` being sent, in one transaction:
    the issue row, its items (which marks its articles sent), a queued ledger row per
    subscriber of ``list_name`` who may be sent to; the newsletter's draft goes (it was
    this issue, or out of date). ``None`` when another process recorded an issue of that
    number first (two runs started at once): the caller joins that one instead."""
    with store.session() as session:
        values = {
            "newsletter": newsletter,
            "status": IssueStatus.SENDING.value,
            "created_at": created_at,
            **_columns(composed),
        }
        # An upsert, not a check-then-insert: of two runs at once exactly one records it.
        issue_id = session.scalar(
            dialect.insert(session, IssueRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["newsletter", "number"])
            .returning(IssueRow.id)
        )
        if issue_id is None:
            return None
        session.execute(delete(IssueDraftRow).where(IssueDraftRow.newsletter == newsletter))
        session.add_all(
            IssueItemRow(issue_id=issue_id, position=position, **entry)
            for position, entry in enumerate(_items(composed))
        )
        ledger.queue(session, issue_id, list_name)
        row = session.get(IssueRow, issue_id)
        assert row is not None
        return _stored(row, len(composed.article_ids))


@contextmanager
def _raced(sentence: str) -> Iterator[None]:
    """Turn the unique-key conflict of two processes writing the same row at once
    into ``RunConflict`` saying ``sentence``: the loser's transaction wrote nothing."""
    try:
        yield
    except IntegrityError:
        raise RunConflict(sentence) from None


def held_elsewhere(store: Store, issue_id: int, worker: str) -> bool:
    """Whether a process other than ``worker`` holds rows of the issue now (another run
    is sending it)."""
    with store.session() as session:
        return bool(
            session.scalar(
                select(func.count(DeliveryRow.id)).where(
                    DeliveryRow.issue_id == issue_id,
                    # The literal lets the partial index of queued rows serve it.
                    DeliveryRow.status == literal_column("'queued'"),
                    DeliveryRow.claimed_by != "",
                    DeliveryRow.claimed_by != worker,
                    DeliveryRow.lease_until > utcnow(),
                )
            )
        )


def unfinished(store: Store, newsletter: str) -> StoredIssue | None:
    """The oldest issue of ``newsletter`` still being sent, if any."""
    with store.session() as session:
        row = session.scalar(
            select(IssueRow)
            .where(IssueRow.newsletter == newsletter, IssueRow.status == IssueStatus.SENDING)
            .order_by(IssueRow.id)
        )
        if row is None:
            return None
        return _stored(row, _count_items(session, row.id))


def by_id(store: Store, issue_id: int) -> StoredIssue | None:
    """The issue stored with ``issue_id``, if any (what a worker's task names)."""
    with store.session() as session:
        row = session.get(IssueRow, issue_id)
        if row is None:
            return None
        return _stored(row, _count_items(session, row.id))


def find(store: Store, newsletter: str, number: int) -> StoredIssue | None:
    """Issue ``number`` of ``newsletter``, if stored."""
    with store.session() as session:
        row = session.scalar(
            select(IssueRow).where(IssueRow.newsletter == newsletter, IssueRow.number == number)
        )
        if row is None:
            return None
        return _stored(row, _count_items(session, row.id))


def _count_items(session: Session, issue_id: int) -> int:
    return (
        session.scalar(select(func.count(IssueItemRow.id)).where(IssueItemRow.issue_id == issue_id))
        or 0
    )


def _columns(composed: Composed) -> dict[str, Any]:
    """The columns an issue row and a draft row share."""
    issue, rendered = composed.issue, composed.rendered
    return {
        "number": issue.number,
        "issue_date": issue.date.isoformat(),
        "subject": rendered.subject,
        "preheader": rendered.preheader,
        "html": rendered.html,
        "text": rendered.text,
        "slots": dict(rendered.slots),
        "content": issue_to_json(issue),
    }


def _items(composed: Composed) -> list[dict[str, Any]]:
    """The issue_items of ``composed`` in email order (without issue and position)."""
    return [
        {
            "article_id": article_id,
            "section": item.section,
            "title": item.title,
            "summary": item.summary,
        }
        for item, article_id in zip(composed.issue.items, composed.article_ids, strict=True)
    ]


def _rendered(row: IssueRow | IssueDraftRow) -> Rendered:
    return Rendered(
        subject=row.subject,
        preheader=row.preheader,
        html=row.html,
        text=row.text,
        slots=tuple(row.slots.items()),
    )


def _stored(row: IssueRow, items: int) -> StoredIssue:
    return StoredIssue(
        id=row.id,
        newsletter=row.newsletter,
        number=row.number,
        rendered=_rendered(row),
        issue=issue_from_json(row.content) if row.content is not None else None,
        items=items,
        created_at=row.created_at,
    )


def issue_to_json(issue: Issue) -> dict[str, Any]:
    """``issue`` as a JSON-ready dict (``issue_from_json`` gives it back equal)."""
    return {
        "newsletter": issue.newsletter,
        "title": issue.title,
        "number": issue.number,
        "date": issue.date.isoformat(),
        "top": _item_to_json(issue.top) if issue.top else None,
        "sections": [
            {"name": section.name, "items": [_item_to_json(item) for item in section.items]}
            for section in issue.sections
        ],
        "note": issue.note,
        "subject": issue.subject,
    }


def issue_from_json(data: dict[str, Any]) -> Issue:
    """The ``Issue`` that ``issue_to_json`` made ``data`` of."""
    return Issue(
        newsletter=data["newsletter"],
        title=data["title"],
        number=data["number"],
        date=date.fromisoformat(data["date"]),
        sections=tuple(
            Section(section["name"], tuple(_item_from_json(item) for item in section["items"]))
            for section in data["sections"]
        ),
        top=_item_from_json(data["top"]) if data["top"] else None,
        # Issues stored before the editorial review have neither.
        note=data.get("note", ""),
        subject=data.get("subject", ""),
    )


def _item_to_json(item: Item) -> dict[str, Any]:
    return {
        "title": item.title,
        "summary": item.summary,
        "url": item.url,
        "image": item.image,
        "image_alt": item.image_alt,
        "section": item.section,
        "published": item.published.isoformat() if item.published else None,
        "image_width": item.image_width,
        "image_height": item.image_height,
    }


def _item_from_json(data: dict[str, Any]) -> Item:
    published = data["published"]
    return Item(
        title=data["title"],
        summary=data["summary"],
        url=data["url"],
        image=data["image"],
        image_alt=data["image_alt"],
        section=data["section"],
        published=datetime.fromisoformat(published) if published else None,
        image_width=data["image_width"],
        image_height=data["image_height"],
    )
