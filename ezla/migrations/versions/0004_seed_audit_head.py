"""Seed the audit head row, so two nodes starting on a fresh database never race to create it.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "INSERT INTO ca_audit_head (id, seq, hash) SELECT 1, 0, :genesis "
            "WHERE NOT EXISTS (SELECT 1 FROM ca_audit_head WHERE id = 1)"
        ).bindparams(genesis="0" * 64)
    )


def downgrade() -> None:
    op.execute("DELETE FROM ca_audit_head WHERE id = 1 AND seq = 0")
