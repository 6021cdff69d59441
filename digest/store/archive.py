"""The public archive's reads: issues that went out, as the web archive shows them.

An issue is public from the moment its first message can arrive (``sending``), so a
"view in browser" link works as soon as the email does.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from . import Store
from .tables import INTEGER_MAX, IssueRow

# Issue statuses whose issue the archive shows.
PUBLIC = ("sending", "sent")


@dataclass(frozen=True, slots=True)
class ArchivedIssue:
    """One public issue: its listing fields, and its stored HTML with the slot tokens."""

    newsletter: str
    number: int
    issue_date: str
    subject: str
    html: str = ""
    slots: tuple[tuple[str, str], ...] = ()


def public_issues(store: Store, newsletter: str) -> list[ArchivedIssue]:
    """The public issues of ``newsletter``, newest first (without their HTML)."""
    if "\x00" in newsletter:  # no name holds one (PostgreSQL refuses it in a query)
        return []
    with store.session() as session:
        rows = session.execute(
            select(IssueRow.number, IssueRow.issue_date, IssueRow.subject)
            .where(IssueRow.newsletter == newsletter, IssueRow.status.in_(PUBLIC))
            .order_by(IssueRow.number.desc())
        ).all()
    return [ArchivedIssue(newsletter, number, date, subject) for number, date, subject in rows]


def public_issue(store: Store, newsletter: str, number: int) -> ArchivedIssue | None:
    """Issue ``number`` of ``newsletter`` if it is public (``None`` for a number no
    issue can have, such as one past the database's integers)."""
    if not 0 < number <= INTEGER_MAX or "\x00" in newsletter:
        return None
    with store.session() as session:
        row = session.scalar(
            select(IssueRow).where(
                IssueRow.newsletter == newsletter,
                IssueRow.number == number,
                IssueRow.status.in_(PUBLIC),
            )
        )
        if row is None:
            return None
        return ArchivedIssue(
            row.newsletter,
            row.number,
            row.issue_date,
            row.subject,
            row.html,
            tuple(row.slots.items()),
        )
