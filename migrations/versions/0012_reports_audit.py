"""Reports and the audit trail: audit_log carries a conversation's facts (with its
conversation, customer, agent, campaign and queue, and a once-only key); conversation_report
is the per-conversation rollup the reports read; traffic_hour counts messages per hour;
conversation.survey_due_at is when a closed conversation's survey is due.
audit_log becomes append-only in the database itself: a trigger refuses every DELETE (and, on
PostgreSQL, TRUNCATE) and every UPDATE that changes anything but ``details`` and ``subject_id``
— the two an erasure redacts (``storage.erasure``: the person's values replaced, the row kept).

Revision ID: 0012_reports_audit
Revises: 0009_outbound_media
Create Date: 2026-12-07 23:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_reports_audit"
down_revision: str | None = "0009_outbound_media"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)

# What no UPDATE may change: who, when, what, and what it is about.  ``details`` and
# ``subject_id`` may be redacted by an erasure.
_FIXED = (
    "id",
    "workspace_id",
    "at",
    "actor",
    "action",
    "subject_type",
    "conversation_id",
    "customer_id",
    "agent_id",
    "campaign_id",
    "queue_id",
    "dedupe",
)
_REFUSED = "audit_log is append-only"
_NEW = ", ".join(f"NEW.{c}" for c in _FIXED)
_OLD = ", ".join(f"OLD.{c}" for c in _FIXED)

_PG_FUNCTION = f"""
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION '{_REFUSED}: its rows are never deleted' USING ERRCODE = 'raise_exception';
    END IF;
    IF ({_NEW}) IS DISTINCT FROM ({_OLD}) THEN
        RAISE EXCEPTION '{_REFUSED}: only an erasure may redact details and subject_id'
            USING ERRCODE = 'raise_exception';
    END IF;
    RETURN NEW;
END
$$
"""


def _append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
        return
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _FIXED)
    op.execute(
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: its rows are never deleted'); END"
    )
    op.execute(
        f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log WHEN {changed} "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: only an erasure may redact details and subject_id'); END"
    )


def _drop_append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
        return
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("conversation_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("customer_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("agent_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("campaign_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("queue_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("dedupe", sa.String(length=200), nullable=True))
        batch.create_unique_constraint("uq_audit_log_dedupe", ["dedupe"])
    op.create_index("ix_audit_workspace_at", "audit_log", ["workspace_id", "at", "id"])
    op.create_index("ix_audit_conversation_at", "audit_log", ["conversation_id", "at"])
    op.create_index("ix_audit_customer_at", "audit_log", ["customer_id", "at"])
    op.create_index("ix_audit_agent_at", "audit_log", ["agent_id", "at"])

    op.create_table(
        "conversation_report",
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=True),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("triage", sa.Boolean(), nullable=False),
        sa.Column("triage_option", sa.String(length=100), nullable=True),
        sa.Column("queue_id", sa.Uuid(), nullable=True),
        sa.Column("answered_queue_id", sa.Uuid(), nullable=True),
        sa.Column("enqueued_at", TS, nullable=True),
        sa.Column("first_offered_at", TS, nullable=True),
        sa.Column("assigned_at", TS, nullable=True),
        sa.Column("waited_s", sa.Float(), nullable=True),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("last_agent_id", sa.Uuid(), nullable=True),
        sa.Column("first_response_at", TS, nullable=True),
        sa.Column("first_response_agent_id", sa.Uuid(), nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("close_reason", sa.String(length=20), nullable=True),
        sa.Column("disposition_code", sa.String(length=100), nullable=True),
        sa.Column("disposition_amount", sa.String(length=40), nullable=True),
        sa.Column("disposition_date", sa.String(length=10), nullable=True),
        sa.Column("reopened_at", TS, nullable=True),
        sa.Column("follow_up_of", sa.String(length=40), nullable=True),
        sa.Column("first_text", sa.String(), nullable=True),
        sa.Column("offers", sa.Integer(), nullable=False),
        sa.Column("declines", sa.Integer(), nullable=False),
        sa.Column("timeouts", sa.Integer(), nullable=False),
        sa.Column("assignments", sa.Integer(), nullable=False),
        sa.Column("agent_replies", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Integer(), nullable=False),
        sa.Column("transfers", sa.Integer(), nullable=False),
        sa.Column("requeues", sa.Integer(), nullable=False),
        sa.Column("active_s", sa.Float(), nullable=False),
        sa.Column("survey_kind", sa.String(length=10), nullable=True),
        sa.Column("survey_sent_at", TS, nullable=True),
        sa.Column("survey_score", sa.Integer(), nullable=True),
        sa.Column("survey_answered_at", TS, nullable=True),
        sa.Column("survey_comment", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    op.create_index(
        "ix_conversation_report_campaign_opened",
        "conversation_report",
        ["workspace_id", "campaign_id", "opened_at"],
    )
    op.create_index(
        "ix_conversation_report_customer_opened", "conversation_report", ["customer_id", "opened_at"]
    )

    op.create_table(
        "traffic_hour",
        sa.Column("bucket", sa.String(length=200), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("hour", TS, nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket"),
    )
    op.create_index("ix_traffic_hour_workspace_hour", "traffic_hour", ["workspace_id", "hour"])

    # A closed conversation's survey, due to be sent (cleared when a sender claims it).
    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("survey_due_at", TS, nullable=True))
        batch.create_index("ix_conversation_survey_due_at", ["survey_due_at"], unique=False)
    _append_only()  # last: SQLite's batch mode above recreates audit_log, which drops its triggers


def downgrade() -> None:
    _drop_append_only()
    with op.batch_alter_table("conversation") as batch:
        batch.drop_index("ix_conversation_survey_due_at")
        batch.drop_column("survey_due_at")
    op.drop_index("ix_traffic_hour_workspace_hour", table_name="traffic_hour")
    op.drop_table("traffic_hour")
    op.drop_index("ix_conversation_report_customer_opened", table_name="conversation_report")
    op.drop_index("ix_conversation_report_campaign_opened", table_name="conversation_report")
    op.drop_table("conversation_report")
    for name in (
        "ix_audit_agent_at",
        "ix_audit_customer_at",
        "ix_audit_conversation_at",
        "ix_audit_workspace_at",
    ):
        op.drop_index(name, table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint("uq_audit_log_dedupe", type_="unique")
        for column in ("dedupe", "queue_id", "campaign_id", "agent_id", "customer_id", "conversation_id"):
            batch.drop_column(column)
