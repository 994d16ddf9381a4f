"""outbound media: an agent's upload is a media row before the reply that sends it exists

Revision ID: 0009_outbound_media
Revises: 0011_alerts
Create Date: 2026-12-07 12:40:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_outbound_media"
down_revision: str | None = "0011_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.alter_column("message_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column("conversation_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("uploaded_by", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("filename", sa.String(length=255), nullable=True))
        batch_op.create_foreign_key("fk_media_conversation_id", "conversation", ["conversation_id"], ["id"])
        batch_op.create_foreign_key("fk_media_uploaded_by", "agent", ["uploaded_by"], ["id"])


def downgrade() -> None:
    op.execute("DELETE FROM media WHERE message_id IS NULL")
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.drop_constraint("fk_media_uploaded_by", type_="foreignkey")
        batch_op.drop_constraint("fk_media_conversation_id", type_="foreignkey")
        batch_op.drop_column("filename")
        batch_op.drop_column("uploaded_by")
        batch_op.drop_column("conversation_id")
        batch_op.alter_column("message_id", existing_type=sa.Uuid(), nullable=False)
