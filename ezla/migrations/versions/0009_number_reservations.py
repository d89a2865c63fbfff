"""Number reservations for offline work (``ezla_number_reservations``), and an index for a doctor's
list of e-ZLA, newest first.

Expand only: a new table and an index; release N neither reads nor writes them, so this runs while
it still serves (the index CONCURRENTLY on PostgreSQL).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

from ezla.db import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DOCTOR_INDEX = "ix_ezla_sick_leaves_doctor_accepted"


def upgrade() -> None:
    op.create_table(
        "ezla_number_reservations",
        sa.Column("series", sa.String(2), primary_key=True),
        sa.Column("number", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("doctor_npwz", sa.String(7), nullable=False),
        sa.Column("reserved_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.Column("ezla_id", sa.String(36), nullable=True),
    )
    op.create_index("ix_ezla_number_reservations_doctor", "ezla_number_reservations", ["doctor_npwz", "expires_at"])
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(
                DOCTOR_INDEX,
                "ezla_sick_leaves",
                ["doctor_npwz", "accepted_at"],
                postgresql_concurrently=True,
                if_not_exists=True,
            )
    else:
        op.create_index(DOCTOR_INDEX, "ezla_sick_leaves", ["doctor_npwz", "accepted_at"])


def downgrade() -> None:
    op.drop_index(DOCTOR_INDEX, "ezla_sick_leaves")
    op.drop_index("ix_ezla_number_reservations_doctor", "ezla_number_reservations")
    op.drop_table("ezla_number_reservations")
