"""Inbox paging reads (payer or PESEL, id > cursor) ORDER BY id LIMIT n: composite indexes make a
page cost the same at 10k rows and at 1M (bench/inbox_bench.py).

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_dist_employer_inbox_payer_page", "dist_employer_inbox", ["payer_key", "id"])
    op.create_index("ix_dist_patient_inbox_pesel_page", "dist_patient_inbox", ["pesel", "id"])


def downgrade() -> None:
    op.drop_index("ix_dist_patient_inbox_pesel_page", "dist_patient_inbox")
    op.drop_index("ix_dist_employer_inbox_payer_page", "dist_employer_inbox")
