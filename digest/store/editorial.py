"""The ``editorial`` table: what an editor did to the next issue of a newsletter under
review (``digest.editorial``), which version of its draft that made, and whether that
version is approved.

The draft itself is the newsletter's ``issue_drafts`` row (``digest.store.issues``);
this row adds the edits, a version that grows at every rebuild and edit, and the
approval. An approval is of one version of one draft (``fingerprint``): any edit or
rebuild makes a new version, which withdraws it without a word.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from ..models import Rendered
from . import Store, issues
from .tables import EditorialRow, utcnow


@dataclass(frozen=True, slots=True)
class Edits:
    """An editor's changes to an issue, applied in this order: ``drop`` (URLs of items
    left out), ``pin`` (URLs of unsent articles kept although composition left them
    out), ``moves`` ((URL, position from 1) in the order they were made), ``note``
    (the editor's note, Markdown) and ``subject`` ("" keeps the newsletter's)."""

    drop: tuple[str, ...] = ()
    pin: tuple[str, ...] = ()
    moves: tuple[tuple[str, int], ...] = ()
    note: str = ""
    subject: str = ""

    def then(self, later: Edits, *, note: bool, subject: bool) -> Edits:
        """These edits followed by ``later``; ``note``/``subject``: whether ``later`` sets them."""
        return Edits(
            drop=(*self.drop, *(url for url in later.drop if url not in self.drop)),
            pin=(
                *(url for url in self.pin if url not in later.drop),
                *(url for url in later.pin if url not in self.pin),
            ),
            moves=(*self.moves, *later.moves),
            note=later.note if note else self.note,
            subject=later.subject if subject else self.subject,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "drop": list(self.drop),
            "pin": list(self.pin),
            "moves": [[url, to] for url, to in self.moves],
            "note": self.note,
            "subject": self.subject,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Edits:
        return cls(
            drop=tuple(data.get("drop", ())),
            pin=tuple(data.get("pin", ())),
            moves=tuple((url, int(to)) for url, to in data.get("moves", ())),
            note=data.get("note", ""),
            subject=data.get("subject", ""),
        )


@dataclass(frozen=True, slots=True)
class State:
    """The editorial row of a newsletter. ``approved`` is whether ``version`` is the
    approved one (the draft may still have been replaced since: see ``reviewed``)."""

    newsletter: str
    number: int
    version: int
    edits: Edits = field(default_factory=Edits)
    fingerprint: str = ""
    approved: bool = False
    approved_by: str = ""
    approved_at: datetime | None = None
    review_slot: datetime | None = None


def fingerprint(rendered: Rendered) -> str:
    """What identifies a draft: a hash of its subject, HTML and text."""
    digest = hashlib.sha256()
    for part in (rendered.subject, rendered.html, rendered.text):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def state(store: Store, newsletter: str) -> State | None:
    """The editorial state of ``newsletter``, if it has one."""
    with store.session() as session:
        row = session.scalar(select(EditorialRow).where(EditorialRow.newsletter == newsletter))
        if row is None:
            return None
        return State(
            newsletter=row.newsletter,
            number=row.number,
            version=row.version,
            edits=Edits.from_json(row.edits),
            fingerprint=row.fingerprint,
            approved=row.approved_version == row.version,
            approved_by=row.approved_by,
            approved_at=row.approved_at,
            review_slot=row.review_slot,
        )


def save_version(
    store: Store, newsletter: str, number: int, rendered: Rendered, edits: Edits
) -> int:
    """Record that the draft of ``newsletter`` is now ``rendered`` (issue ``number``,
    made with ``edits``): a new version, not approved. Returns the version."""
    with store.session() as session:
        row = session.scalar(
            select(EditorialRow).where(EditorialRow.newsletter == newsletter).with_for_update()
        )
        if row is None:
            row = EditorialRow(newsletter=newsletter, version=0, approved_by="")
            session.add(row)
        row.version += 1
        row.number = number
        row.edits = edits.to_json()
        row.fingerprint = fingerprint(rendered)
        row.approved_version = None
        row.approved_by = ""
        row.approved_at = None
        row.updated_at = utcnow()
        return row.version


def approve(store: Store, newsletter: str, version: int, by: str) -> bool:
    """Approve ``version`` of the draft of ``newsletter``; False when it is no longer
    the current version (an edit or rebuild came first)."""
    with store.session() as session:
        result = session.execute(
            update(EditorialRow)
            .where(EditorialRow.newsletter == newsletter, EditorialRow.version == version)
            .values(approved_version=version, approved_by=by, approved_at=utcnow())
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


def revoke(store: Store, newsletter: str) -> bool:
    """Withdraw the approval of ``newsletter``'s draft; False when there was none."""
    with store.session() as session:
        result = session.execute(
            update(EditorialRow)
            .where(
                EditorialRow.newsletter == newsletter, EditorialRow.approved_version.is_not(None)
            )
            .values(approved_version=None, approved_by="", approved_at=None)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


def mark_reviewed(store: Store, newsletter: str, slot: datetime) -> None:
    """Record that the review mail for ``slot`` went out."""
    with store.session() as session:
        session.execute(
            update(EditorialRow)
            .where(EditorialRow.newsletter == newsletter)
            .values(review_slot=slot)
        )


def reviewed(store: Store, newsletter: str) -> tuple[issues.Composed | None, State | None]:
    """The editorial draft of ``newsletter`` when it is still the next issue and the
    draft the editorial state describes (``digest preview`` may have replaced it), with
    that state; ``(None, state)`` otherwise."""
    kept = state(store, newsletter)
    draft = issues.draft(store, newsletter)
    if kept is None or draft is None:
        return None, kept
    composed = draft.composed
    if (
        fingerprint(composed.rendered) != kept.fingerprint
        or composed.issue.number != kept.number
        or kept.number != issues.next_number(store, newsletter)
    ):
        return None, kept
    return composed, kept
