"""Room for patients identified by passport: the columns holding a patient's key (a PESEL, or
``passport:<country>:<number>``) widen to 40 characters, a delivery's address to 48.

Expand only. On PostgreSQL a longer varchar is a catalogue change (no table rewrite); SQLite does
not enforce lengths, so there is nothing to do. Release N keeps working beside it: it never writes
a longer key. Accepting passport patients while a release-N node still serves would show it records
it cannot read, so a cluster upgrades every node before clinics send them.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

WIDEN = (
    ("ezla_sick_leaves", "patient_pesel", 11, 40),
    ("dist_patient_inbox", "pesel", 11, 40),
    ("auth_accounts", "pesel", 11, 40),
    ("dist_deliveries", "address", 24, 48),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, old, new in WIDEN:
        op.alter_column(table, column, type_=sa.String(new), existing_type=sa.String(old))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, old, new in WIDEN:
        op.alter_column(table, column, type_=sa.String(old), existing_type=sa.String(new))
