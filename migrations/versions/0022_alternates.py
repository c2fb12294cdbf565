"""campaign leads: which of the lead's numbers is being dialed (0 the main one, k its k-th
alternate), so a non-working number moves the lead on to its next alternate

Revision ID: 0022_alternates
Revises: 0021_callback_group
Create Date: 2026-12-03 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_alternates"
down_revision: str | None = "0021_callback_group"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaignlead") as batch:
        batch.add_column(
            sa.Column("phone_index", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("campaignlead") as batch:
        batch.drop_column("phone_index")
