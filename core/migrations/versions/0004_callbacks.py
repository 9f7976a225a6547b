"""callbacks: calls customers asked us to make back, keeping their place in the queue

Revision ID: 0004_callbacks
Revises: 0003_inbound_routing
Create Date: 2026-11-26 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.db

revision: str = "0004_callbacks"
down_revision: str | None = "0003_inbound_routing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("case_id", _ID, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("requested_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", core.db.UTCDateTime(timezone=True), nullable=False),
        # The caller's place in the queue (the IVR call's entry time, or the time asked for).
        sa.Column("place_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=300), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_result", sa.String(length=32), nullable=True),
        sa.Column("agent", sa.String(length=64), nullable=True),
        sa.Column("context", _JSON, nullable=False),
        sa.Column("interaction_id", _ID, nullable=True),
        sa.Column("callback_interaction_id", _ID, nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('requested', 'waiting', 'dialing', 'connected', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_callbacks_status_known"),
        ),
        sa.CheckConstraint("source IN ('ivr', 'web', 'agent')", name=op.f("ck_callbacks_source_known")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_callbacks_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_callbacks_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["interaction_id"], ["interactions.id"], name=op.f("fk_callbacks_interaction_id_interactions")
        ),
        sa.ForeignKeyConstraint(
            ["callback_interaction_id"],
            ["interactions.id"],
            name=op.f("fk_callbacks_callback_interaction_id_interactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callbacks")),
    )
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.create_index("ix_callbacks_status_next_attempt", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_callbacks_phone_status", ["phone", "status"], unique=False)
        batch_op.create_index("ix_callbacks_customer_id", ["customer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_callbacks_customer_id")
        batch_op.drop_index("ix_callbacks_phone_status")
        batch_op.drop_index("ix_callbacks_status_next_attempt")
    op.drop_table("callbacks")
