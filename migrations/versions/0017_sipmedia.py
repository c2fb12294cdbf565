"""call recordings, linked to their attempts

Revision ID: 0017_sipmedia
Revises: 0011_i15
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0017_sipmedia"
down_revision: str | None = "0011_i15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recording",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("attempt_id", sa.Uuid(), nullable=False),
        sa.Column("format", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "storage",
            sa.Enum("database", "directory", name="recordingstorage", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("storage_key", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["attempt_id"], ["callattempt.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("attempt_id"),
    )
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recording_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recording_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recording_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_recording_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("recording")
