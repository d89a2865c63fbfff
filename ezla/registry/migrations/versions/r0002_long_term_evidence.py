"""Each e-ZLA's XAdES-LT form (its time-stamp, chain and OCSP status at acceptance).

Expand only: a nullable column; records ingested before it keep verifying as they did.

Revision ID: r0002
Revises: r0001
"""

import sqlalchemy as sa
from alembic import op

revision = "r0002"
down_revision = "r0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registry_ezla") as batch:
        batch.add_column(sa.Column("evidence_xml", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registry_ezla") as batch:
        batch.drop_column("evidence_xml")
