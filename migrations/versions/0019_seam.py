"""telephony seam: the agent's phone address, and the ``declined`` disposition everywhere

Adds ``agentseat.phone_uri`` (where the dialer calls the agent's phone at sign-in) and
inserts the ``declined`` disposition (SIP 603; see ``campaigns.dispositions``) into every
campaign that does not have it, so gateway failures keep their meaning in old campaigns too.

Revision ID: 0017_seam
Revises: 0017_agent_active
Create Date: 2026-12-02 16:40:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017_seam"
down_revision: str | None = "0017_agent_active"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in campaigns.dispositions (copied: a migration must not change when the code does).
DECLINED = {
    "code": "declined",
    "label": "Declined by the callee's phone (SIP 603)",
    "outcome": "no_answer",
    "contacted": False,
    "human_answered": False,
    "final": False,
    "success": False,
    "dnc": False,
    "callback": False,
    "abandoned": False,
    "retry_delay_minutes": 240,
    "max_attempts": 2,
    "aapor_code": "3.15",
}


def upgrade() -> None:
    with op.batch_alter_table("agentseat", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("phone_uri", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
    bind = op.get_bind()
    campaigns = bind.execute(
        sa.text(
            "SELECT c.id, c.client_id FROM campaign c WHERE NOT EXISTS "
            "(SELECT 1 FROM disposition d WHERE d.campaign_id = c.id AND d.code = 'declined')"
        )
    ).all()
    if not campaigns:
        return
    disposition = sa.table(
        "disposition",
        sa.column("id", sa.Uuid()),
        sa.column("client_id", sa.Uuid()),
        sa.column("campaign_id", sa.Uuid()),
        *(sa.column(name) for name in DECLINED),
    )
    op.bulk_insert(
        disposition,
        [
            {"id": uuid.uuid4(), "client_id": client_id, "campaign_id": campaign_id, **DECLINED}
            for campaign_id, client_id in campaigns
        ],
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM disposition WHERE code = 'declined'"))
    with op.batch_alter_table("agentseat", schema=None) as batch_op:
        batch_op.drop_column("phone_uri")
