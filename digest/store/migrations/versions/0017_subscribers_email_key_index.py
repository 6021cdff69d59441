"""subscribers: an index on email_key, for what names an address on every list

A bounce, a complaint or a suppression (a provider's webhook, ``digest subscribers
suppress``) looks the address up on every list (``digest.store.subscribers.with_key``);
the unique (list_id, email_key) index cannot serve that, so each event read the whole
table: a full scan per webhook event on a list of a million.

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_subscribers_email_key", "subscribers", ["email_key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_subscribers_email_key", table_name="subscribers")
