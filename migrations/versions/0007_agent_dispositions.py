"""agent dispositions: what agents say about dialer calls, applied by the dial loop

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 10:12:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agentdisposition",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("attempt_id", sa.Uuid(), nullable=False),
        sa.Column("agent_seat_id", sa.Uuid(), nullable=True),
        sa.Column("agent_code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("call_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("disposition", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("callback_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("submitted_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("applied_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["agent_seat_id"], ["agentseat.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["attempt_id"], ["callattempt.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("attempt_id"),
    )
    with op.batch_alter_table("agentdisposition", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agentdisposition_agent_seat_id"), ["agent_seat_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_agentdisposition_client_id"), ["client_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("agentdisposition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agentdisposition_client_id"))
        batch_op.drop_index(batch_op.f("ix_agentdisposition_agent_seat_id"))

    op.drop_table("agentdisposition")
