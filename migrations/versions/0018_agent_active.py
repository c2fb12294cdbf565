"""agents: an active flag, so an operator can deactivate an agent without deleting its history

Revision ID: 0017_agent_active
Revises: 0017_sipmedia
Create Date: 2026-12-02 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_agent_active"
down_revision: str | None = "0017_sipmedia"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "agentseat",
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    op.drop_column("agentseat", "active")
