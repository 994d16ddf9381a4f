"""retention indexes: messages by raw delivery, conversations by campaign and closing time

Deleting a raw delivery checks the messages that reference it; without an index on
message.raw_delivery_id every delete scans the message table (retention and erasure).

Revision ID: 0005_retention_indexes
Revises: 0004_access_privacy
Create Date: 2026-12-07 03:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_retention_indexes"
down_revision: str | None = "0004_access_privacy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_message_raw_delivery_id", "message", ["raw_delivery_id"], unique=False)
    op.create_index("ix_conversation_campaign_closed", "conversation", ["campaign_id", "closed_at"])


def downgrade() -> None:
    op.drop_index("ix_conversation_campaign_closed", table_name="conversation")
    op.drop_index("ix_message_raw_delivery_id", table_name="message")
