"""Medical assistants' authorisations (``ezla_assistant_authorisations``) and drafts
(``ezla_drafts``).

Expand only: new tables, which release N never touches.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

from ezla.db import BigId, UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ezla_assistant_authorisations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("doctor_npwz", sa.String(7), nullable=False),
        sa.Column("assistant_id", sa.Integer(), nullable=False),
        sa.Column("certificate_serial", sa.String(40), nullable=False),
        sa.Column("challenge", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("granted_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_ezla_assistant_authorisations_doctor", "ezla_assistant_authorisations", ["doctor_npwz"])
    op.create_index("ix_ezla_assistant_authorisations_assistant", "ezla_assistant_authorisations", ["assistant_id"])
    op.create_table(
        "ezla_drafts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("doctor_npwz", sa.String(7), nullable=False),
        sa.Column("document_id", sa.String(36), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("xml", sa.LargeBinary(), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("findings_json", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("submitted_ezla_id", sa.String(36), nullable=True),
    )
    op.create_index("ix_ezla_drafts_doctor", "ezla_drafts", ["doctor_npwz", "updated_at"])
    op.create_index("ix_ezla_drafts_document_id", "ezla_drafts", ["document_id"])


def downgrade() -> None:
    op.drop_table("ezla_drafts")
    op.drop_table("ezla_assistant_authorisations")
