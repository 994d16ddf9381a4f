"""outbox: the outbound message rows carry their send attempts, due time, lease and resend link

Revision ID: 0002_outbox
Revises: 0001_initial
Create Date: 2026-12-06 22:53:54.416096
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_outbox"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resend_of", sa.Uuid(), nullable=True))
        batch_op.create_index("ix_message_outbox", ["delivery_state", "due_at"], unique=False)
        batch_op.create_unique_constraint("uq_message_resend_of", ["resend_of"])
        batch_op.create_foreign_key("fk_message_resend_of", "message", ["resend_of"], ["id"])
    # Rows queued before the outbox are due now (the worker claims queued rows by due time).
    op.execute("UPDATE message SET due_at = created_at WHERE delivery_state = 'queued'")


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_constraint("fk_message_resend_of", type_="foreignkey")
        batch_op.drop_constraint("uq_message_resend_of", type_="unique")
        batch_op.drop_index("ix_message_outbox")
        batch_op.drop_column("resend_of")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("due_at")
        batch_op.drop_column("attempts")
