"""call attempts: the gateway's handle on an answered call (for SIP, its dialog), so a pacer
taking a campaign over ends the calls its dead predecessor left up

Revision ID: 0023_gateway_handle
Revises: 0022_alternates
Create Date: 2026-12-04 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_gateway_handle"
down_revision: str | None = "0022_alternates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("callattempt") as batch:
        batch.add_column(sa.Column("gateway_handle", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callattempt") as batch:
        batch.drop_column("gateway_handle")
