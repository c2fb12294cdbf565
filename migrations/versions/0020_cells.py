"""lead alternate phones: the other numbers of a phone cell that held several

Revision ID: 0017_cells
Revises: 0017_seam
Create Date: 2026-12-02 16:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_cells"
down_revision: str | None = "0017_seam"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Leads imported before have none: an empty list, not NULL.
    op.add_column(
        "lead",
        sa.Column("alternate_phones", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    with op.batch_alter_table("lead") as batch_op:
        batch_op.drop_column("alternate_phones")
