"""delivery indexes: drop the two the ledger never needs

Every ledger query names the issue, so ``ix_deliveries_issue_status`` (issue_id,
status) and the unique (issue_id, subscriber_id) serve them all. ``ix_deliveries_status``
alone was updated with every row a send settles and never read;
``ix_deliveries_issue_id`` repeats the first column of both.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status")
        batch_op.drop_index("ix_deliveries_issue_id")


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_issue_id", ["issue_id"], unique=False)
        batch_op.create_index("ix_deliveries_status", ["status"], unique=False)
