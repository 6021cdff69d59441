"""subscribers: no index on list_id alone; the unique (list_id, email_key) serves

``ix_subscribers_list_id`` duplicated the leading column of the unique (list_id,
email_key) index, which serves every query by list as well. Kept, it is what the
PostgreSQL planner takes for an import's lookup of a key when it has no statistics for
the list (a new list, or rows not yet committed): it reads the list's entries and
filters the key out of them, so each chunk of an import read the whole list and a
100,000-row import took ten times as long as a 20,000-row one
(``digest.store.subscriber_import.lookup``, ``bench/import``).

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_subscribers_list_id", table_name="subscribers")


def downgrade() -> None:
    op.create_index("ix_subscribers_list_id", "subscribers", ["list_id"], unique=False)
