"""Insurance relations payers report (``ins_employments``) and the family members reported with
them (``ins_family_members``): what the doctors' look-ups read.

Expand only: new tables, which release N never touches.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

from ezla.db import BigId, UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ins_employments",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("payer_key", sa.String(24), nullable=False),
        sa.Column("payer_name", sa.String(250), nullable=False),
        sa.Column("pesel", sa.String(11), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("payer_key", "pesel"),
    )
    op.create_index("ix_ins_employments_pesel", "ins_employments", ["pesel"])
    op.create_table(
        "ins_family_members",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("payer_key", sa.String(24), nullable=False),
        sa.Column("insured_pesel", sa.String(11), nullable=False),
        sa.Column("given_name", sa.String(100), nullable=False),
        sa.Column("family_name", sa.String(100), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("pesel", sa.String(11), nullable=True),
        sa.Column("relationship", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_ins_family_members_insured", "ins_family_members", ["insured_pesel"])


def downgrade() -> None:
    op.drop_index("ix_ins_family_members_insured", "ins_family_members")
    op.drop_table("ins_family_members")
    op.drop_index("ix_ins_employments_pesel", "ins_employments")
    op.drop_table("ins_employments")
