"""deal quotes: the quote given for a campaign and its approval

Revision ID: 0011_i15
Revises: 0011_i11
Create Date: 2026-12-02 14:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0011_i15"
down_revision: str | None = "0011_i11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dealquote",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("quote_number", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("vat_rate", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("prices", sa.JSON(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("verdict", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("override_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("quoted_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("quoted_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("approved_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["feasibilityrun.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "quote_number"),
    )
    op.create_index(op.f("ix_dealquote_client_id"), "dealquote", ["client_id"], unique=False)
    op.create_index(op.f("ix_dealquote_campaign_id"), "dealquote", ["campaign_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_dealquote_campaign_id"), table_name="dealquote")
    op.drop_index(op.f("ix_dealquote_client_id"), table_name="dealquote")
    op.drop_table("dealquote")
