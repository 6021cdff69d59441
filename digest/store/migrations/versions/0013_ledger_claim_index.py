"""ledger: an index for the claim, and per-issue counts that outlive pruned rows

``ix_deliveries_queued`` holds one issue's unsettled rows in id order (a partial index
on ``status = 'queued'``), so claiming the next batch reads that batch whatever the
number of settled rows of earlier issues, with or without planner statistics.
``delivery_counts`` keeps, per issue and status, the rows ``digest ledger prune``
deleted, so ``history`` still counts them.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_queued",
        "deliveries",
        ["issue_id", "id"],
        unique=False,
        sqlite_where=sa.text("status = 'queued'"),
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_table(
        "delivery_counts",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issues.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("issue_id", "status"),
    )


def downgrade() -> None:
    op.drop_table("delivery_counts")
    op.drop_index("ix_deliveries_queued", table_name="deliveries")
