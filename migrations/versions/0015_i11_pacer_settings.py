"""pacer settings stored on the campaign; job progress unit

Revision ID: 0011_i11
Revises: 0011_i13
Create Date: 2026-12-02 14:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011_i11"
down_revision: str | None = "0011_i13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("campaign", sa.Column("pacer_settings", sa.JSON(), nullable=True))
    op.add_column(
        "jobrecord",
        sa.Column("progress_unit", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("jobrecord") as batch_op:
        batch_op.drop_column("progress_unit")
    with op.batch_alter_table("campaign") as batch_op:
        batch_op.drop_column("pacer_settings")
