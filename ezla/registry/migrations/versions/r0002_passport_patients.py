"""Room for patients identified by passport: ``patient_pesel`` holds the patient's key (a PESEL,
or ``passport:<country>:<number>``), up to 40 characters. Expand only; a catalogue change on
PostgreSQL, nothing on SQLite (lengths are not enforced).

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
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("registry_ezla", "patient_pesel", type_=sa.String(40), existing_type=sa.String(11))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("registry_ezla", "patient_pesel", type_=sa.String(11), existing_type=sa.String(40))
