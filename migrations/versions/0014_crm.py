"""The inbound CRM API: a promise to pay's outcome in the report row, and labels on customers.

Revision ID: 0014_crm
Revises: 0013_integrations
Create Date: 2026-12-08 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_crm"
down_revision: str | None = "0013_integrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("conversation_report") as batch:
        batch.add_column(sa.Column("promise_outcome", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("paid_amount", sa.String(length=40), nullable=True))
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("labels", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("labels")
    with op.batch_alter_table("conversation_report") as batch:
        batch.drop_column("paid_amount")
        batch.drop_column("promise_outcome")
