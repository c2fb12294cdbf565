"""test interviews: an is_test flag on interviews and their response records

Test interviews and previews of drafts were told apart only by ``mode = 'test'``, which hid
the real mode and was filtered in Python after loading every record. ``is_test`` says it
once, lets results and exports filter in SQL, and keeps the real mode (cati, ivr).

Revision ID: 0011_i16
Revises: 0010
Create Date: 2026-12-02 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_i16"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("interview", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_test", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("interviewresponse", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_test", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Interviews started with mode 'test' before this revision are test interviews.
    op.execute("UPDATE interview SET is_test = true WHERE mode = 'test'")
    op.execute(
        "UPDATE interviewresponse SET is_test = true WHERE interview_id IN "
        "(SELECT id FROM interview WHERE is_test)"
    )


def downgrade() -> None:
    with op.batch_alter_table("interviewresponse", schema=None) as batch_op:
        batch_op.drop_column("is_test")
    with op.batch_alter_table("interview", schema=None) as batch_op:
        batch_op.drop_column("is_test")
