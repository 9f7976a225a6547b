"""open-case priority: how far up a queue a caller with an open case goes

Revision ID: 0005_open_case_priority
Revises: 0004_callbacks
Create Date: 2026-11-27 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_open_case_priority"
down_revision: str | None = "0004_callbacks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The server default gives the queues that exist the same boost a new queue gets.
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("open_case_priority_boost", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
        batch_op.create_check_constraint(
            "open_case_priority_boost_range", "open_case_priority_boost BETWEEN 0 AND 10"
        )


def downgrade() -> None:
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_queues_open_case_priority_boost_range"), type_="check")
        batch_op.drop_column("open_case_priority_boost")
