"""subscribers: addresses that differ only in letter case are one person

The uniqueness key (``email_key``) of subscribers, suppressions and soft bounces
becomes the whole address lower-cased; it was the address with only its domain
lower-cased, so ``Ann@example.org`` and ``ann@example.org`` could be two rows. Where
two subscribers of one list now share a key, the one whose status is the most
restrictive stays (complained, bounced, unsubscribed, then active, then pending: a
pending row is an unconfirmed request anyone could have made; the oldest row on a
tie). It takes over the other's history, deliveries and, if it has none of its own,
preferences, and its history says why (source ``migration``). Two suppressions of one
key keep the strongest reason; soft-bounce counts are added up.

The keys are computed in Python (``str.lower``, as ``digest.subscriptions.email_key``
does): SQLite's ``lower()`` only knows ASCII.

Revision ID: 0012
Revises: 0011
"""

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Which subscriber of a group of rows that differ only in case stays: the lowest rank.
_STATUS_RANK = {"complained": 0, "bounced": 1, "unsubscribed": 2, "active": 3, "pending": 4}
_REASON_RANK = {"complaint": 0, "hard-bounce": 1, "soft-bounces": 2, "manual": 3}
_CHUNK = 500

_subscribers = sa.table(
    "subscribers",
    sa.column("id", sa.Integer),
    sa.column("list_id", sa.Integer),
    sa.column("email", sa.String),
    sa.column("email_key", sa.String),
    sa.column("status", sa.String),
)
_events = sa.table(
    "subscriber_events",
    sa.column("id", sa.Integer),
    sa.column("subscriber_id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("previous", sa.String),
    sa.column("source", sa.String),
    sa.column("detail", sa.Text),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_deliveries = sa.table(
    "deliveries",
    sa.column("id", sa.Integer),
    sa.column("issue_id", sa.Integer),
    sa.column("subscriber_id", sa.Integer),
)
_preferences = sa.table("subscriber_preferences", sa.column("subscriber_id", sa.Integer))
_suppressions = sa.table(
    "suppressions",
    sa.column("id", sa.Integer),
    sa.column("email_key", sa.String),
    sa.column("reason", sa.String),
)
_soft_bounces = sa.table(
    "soft_bounces",
    sa.column("email_key", sa.String),
    sa.column("count", sa.Integer),
    sa.column("last_at", sa.DateTime(timezone=True)),
)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _changed(bind: sa.Connection, query: sa.Select[Any]) -> list[Any]:
    """The rows of ``query`` (its second column a key) whose key has capitals, streamed."""
    rows = bind.execute(query.execution_options(stream_results=True, yield_per=2000))
    return [row for row in rows if row[1] != row[1].lower()]


def _merge(bind: sa.Connection, keep: Any, other: Any, now: datetime) -> None:
    """Give ``other``'s history, deliveries and preferences to ``keep``; delete it."""
    bind.execute(
        sa.update(_events).where(_events.c.subscriber_id == other.id).values(subscriber_id=keep.id)
    )
    taken = sa.select(_deliveries.c.issue_id).where(_deliveries.c.subscriber_id == keep.id)
    bind.execute(
        sa.update(_deliveries)
        .where(_deliveries.c.subscriber_id == other.id, _deliveries.c.issue_id.not_in(taken))
        .values(subscriber_id=keep.id)
    )
    has_own = bind.scalar(
        sa.select(sa.func.count())
        .select_from(_preferences)
        .where(_preferences.c.subscriber_id == keep.id)
    )
    if not has_own:
        bind.execute(
            sa.update(_preferences)
            .where(_preferences.c.subscriber_id == other.id)
            .values(subscriber_id=keep.id)
        )
    # The rest (a delivery of an issue both rows got, the other's preferences) goes
    # with the row.
    bind.execute(sa.delete(_deliveries).where(_deliveries.c.subscriber_id == other.id))
    bind.execute(sa.delete(_preferences).where(_preferences.c.subscriber_id == other.id))
    bind.execute(sa.delete(_subscribers).where(_subscribers.c.id == other.id))
    bind.execute(
        sa.insert(_events).values(
            subscriber_id=keep.id,
            status=keep.status,
            previous=keep.status,
            source="migration",
            detail=(
                f"merged with subscriber {other.id} <{other.email}> ({other.status}): "
                "addresses that differ only in letter case are one person; "
                "the most restrictive status stays"
            ),
            created_at=now,
        )
    )


def _subscribers_upgrade(bind: sa.Connection, now: datetime) -> None:
    columns = (_subscribers.c.id, _subscribers.c.email_key, _subscribers.c.list_id)
    detail = (_subscribers.c.email, _subscribers.c.status)
    changed = _changed(bind, sa.select(*columns, *detail))
    groups: dict[tuple[int, str], dict[int, Any]] = defaultdict(dict)
    for row in changed:
        groups[(row.list_id, row.email_key.lower())][row.id] = row
    new_keys = sorted({key for _, key in groups})
    for chunk in _chunks(new_keys):
        for row in bind.execute(
            sa.select(*columns, *detail).where(_subscribers.c.email_key.in_(chunk))
        ):
            if (row.list_id, row.email_key) in groups:
                groups[(row.list_id, row.email_key)][row.id] = row
    for (_, key), members in groups.items():
        ranked = sorted(members.values(), key=lambda r: (_STATUS_RANK.get(r.status, 5), r.id))
        keep = ranked[0]
        for other in ranked[1:]:
            _merge(bind, keep, other, now)
        if keep.email_key != key:
            bind.execute(
                sa.update(_subscribers).where(_subscribers.c.id == keep.id).values(email_key=key)
            )


def _suppressions_upgrade(bind: sa.Connection) -> None:
    changed = _changed(
        bind, sa.select(_suppressions.c.id, _suppressions.c.email_key, _suppressions.c.reason)
    )
    for row in changed:
        key = row.email_key.lower()
        same = bind.execute(
            sa.select(_suppressions.c.id, _suppressions.c.reason).where(
                _suppressions.c.email_key == key
            )
        ).first()
        if same is None:
            bind.execute(
                sa.update(_suppressions).where(_suppressions.c.id == row.id).values(email_key=key)
            )
            continue
        if _REASON_RANK.get(row.reason, 9) < _REASON_RANK.get(same.reason, 9):
            bind.execute(sa.delete(_suppressions).where(_suppressions.c.id == same.id))
            bind.execute(
                sa.update(_suppressions).where(_suppressions.c.id == row.id).values(email_key=key)
            )
        else:
            bind.execute(sa.delete(_suppressions).where(_suppressions.c.id == row.id))


def _soft_bounces_upgrade(bind: sa.Connection) -> None:
    query = sa.select(_soft_bounces.c.count, _soft_bounces.c.email_key, _soft_bounces.c.last_at)
    for row in _changed(bind, query):
        key = row.email_key.lower()
        same = bind.execute(query.where(_soft_bounces.c.email_key == key)).first()
        bind.execute(sa.delete(_soft_bounces).where(_soft_bounces.c.email_key == row.email_key))
        if same is None:
            bind.execute(
                sa.insert(_soft_bounces).values(email_key=key, count=row.count, last_at=row.last_at)
            )
        else:
            bind.execute(
                sa.update(_soft_bounces)
                .where(_soft_bounces.c.email_key == key)
                .values(count=same.count + row.count, last_at=max(same.last_at, row.last_at))
            )


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(UTC)
    _subscribers_upgrade(bind, now)
    _suppressions_upgrade(bind)
    _soft_bounces_upgrade(bind)


def downgrade() -> None:
    # The keys stay lower-cased: the older code compares keys it computes with the
    # domain lower-cased only, so an address with a capital letter in its local part
    # is not found by it, but nothing it finds is wrong. Merged rows stay merged.
    pass
