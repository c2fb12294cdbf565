"""live metrics: partial indexes for the calls in flight and the abandon window's live answers

Revision ID: 0011_i11live
Revises: 0010
Create Date: 2026-12-02 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_i11live"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IN_FLIGHT_SQL = "status = 'started'"
LIVE_ANSWER_SQL = "amd_result = 'human' AND (abandoned OR agent_connected_at IS NOT NULL)"


def upgrade() -> None:
    op.create_index(
        "ix_callattempt_in_flight",
        "callattempt",
        ["campaign_id"],
        postgresql_where=sa.text(IN_FLIGHT_SQL),
        sqlite_where=sa.text(IN_FLIGHT_SQL),
    )
    op.create_index(
        "ix_callattempt_live_answers",
        "callattempt",
        ["campaign_id", "ended_at", "abandoned", "client_id"],
        postgresql_where=sa.text(LIVE_ANSWER_SQL),
        sqlite_where=sa.text(LIVE_ANSWER_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_callattempt_live_answers", table_name="callattempt")
    op.drop_index("ix_callattempt_in_flight", table_name="callattempt")
