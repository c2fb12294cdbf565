"""campaign.questionnaire_version_id references questionnaireversion.id; apikey.secret_sha256

Revision ID: 0011_i18
Revises: 0011_i11live
Create Date: 2026-12-02 14:10:00

Campaigns accepted any questionnaire_version_id (another client's, or a random UUID). The
service now checks the reference in the caller's scope; the foreign key keeps a dangling one
out whatever writes the row. References that already point nowhere are cleared first, since
no interview can ever run on them.

API keys gain a SHA-256 of the key, checked in constant time instead of argon2 on every
uncached request (a timing signal and a CPU drain); existing keys gain it on first use.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011_i18"
down_revision: str | None = "0011_i11live"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK_NAME = "fk_campaign_questionnaire_version_id"


def upgrade() -> None:
    with op.batch_alter_table("apikey", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("secret_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    op.execute(
        sa.text(
            "UPDATE campaign SET questionnaire_version_id = NULL "
            "WHERE questionnaire_version_id IS NOT NULL AND NOT EXISTS ("
            "SELECT 1 FROM questionnaireversion v "
            "WHERE v.id = campaign.questionnaire_version_id "
            "AND v.client_id = campaign.client_id)"
        )
    )
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_questionnaire_version_id"),
            ["questionnaire_version_id"],
            unique=False,
        )
        batch_op.create_foreign_key(
            FK_NAME, "questionnaireversion", ["questionnaire_version_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_constraint(FK_NAME, type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_campaign_questionnaire_version_id"))
    with op.batch_alter_table("apikey", schema=None) as batch_op:
        batch_op.drop_column("secret_sha256")
