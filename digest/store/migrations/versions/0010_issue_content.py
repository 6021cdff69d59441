"""issues and drafts keep the composed issue (sections, top story, image sizes) as JSON,
so what was composed is what per-reader sections are cut from at send time

Drafts frozen before this revision lack it and are dropped: the next run builds the
issue afresh, as it does when new articles arrived since the preview. Issues stored
before it keep ``content`` empty and are sent to every reader as rendered.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content", sa.JSON(), nullable=True))
    op.execute(sa.text("DELETE FROM issue_drafts"))
    with op.batch_alter_table("issue_drafts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("issue_drafts", schema=None) as batch_op:
        batch_op.drop_column("content")
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_column("content")
