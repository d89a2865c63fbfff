"""Deliveries carry their recipient's address and body as of the event (expand only: nullable).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dist_deliveries") as batch:
        batch.add_column(sa.Column("address", sa.String(24), nullable=True))
        batch.add_column(sa.Column("payload", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dist_deliveries") as batch:
        batch.drop_column("payload")
        batch.drop_column("address")
