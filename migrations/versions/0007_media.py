"""media: customers' attachments fetched from the provider into the media store

Revision ID: 0007_media
Revises: 0006_console_sign_in
Create Date: 2026-12-07 07:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_media"
down_revision: str | None = "0006_console_sign_in"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("channel_account_id", sa.Uuid(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("mime_type", sa.String(length=200), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("storage_key", sa.String(length=300), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["channel_account_id"], ["channel_account.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "position", name="uq_media_message_position"),
    )
    op.create_index("ix_media_workspace_id", "media", ["workspace_id"])
    op.create_index("ix_media_message_id", "media", ["message_id"])
    op.create_index("ix_media_customer_id", "media", ["customer_id"])
    op.create_index("ix_media_due", "media", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_media_due", table_name="media")
    op.drop_index("ix_media_customer_id", table_name="media")
    op.drop_index("ix_media_message_id", table_name="media")
    op.drop_index("ix_media_workspace_id", table_name="media")
    op.drop_table("media")
