"""The period of incapacity as columns of ``ezla_sick_leaves`` (``incapacity_from``, ``incapacity_to``),
indexed by patient: what the look-ups by patient and period (earlier leaves for code A, lists) need
without reading every record's JSON.

Expand: both columns nullable, so release N, which does not write them, keeps working beside this
schema; release N+1 writes them. The index is built CONCURRENTLY on PostgreSQL, so the inserts of
the nodes still serving never wait for it. 0012 back-fills the rows release N wrote and makes the
columns required, once no node of release N is left.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "ix_ezla_sick_leaves_patient_period"


def upgrade() -> None:
    with op.batch_alter_table("ezla_sick_leaves") as batch:
        batch.add_column(sa.Column("incapacity_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("incapacity_to", sa.Date(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(
                INDEX,
                "ezla_sick_leaves",
                ["patient_pesel", "incapacity_from"],
                postgresql_concurrently=True,
                if_not_exists=True,
            )
    else:
        op.create_index(INDEX, "ezla_sick_leaves", ["patient_pesel", "incapacity_from"])


def downgrade() -> None:
    op.drop_index(INDEX, "ezla_sick_leaves")
    with op.batch_alter_table("ezla_sick_leaves") as batch:
        batch.drop_column("incapacity_to")
        batch.drop_column("incapacity_from")
