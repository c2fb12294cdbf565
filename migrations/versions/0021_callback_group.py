"""agent dispositions: a callback for the agent's skill group instead of the agent

Revision ID: 0021_callback_group
Revises: 0017_cells
Create Date: 2026-12-02 18:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_callback_group"
down_revision: str | None = "0017_cells"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agentdisposition") as batch:
        batch.add_column(
            sa.Column("callback_to_group", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("agentdisposition") as batch:
        batch.drop_column("callback_to_group")
