"""Trust lifecycle: certificate lineage, tokens that expire and can be revoked, stateless challenges,
shared failure counters, and the audit trail's pending queue and signed checkpoints.

Expand only: every column is nullable or defaulted, so release N keeps working beside this schema.
Accounts made before it get an expiry a year from the upgrade (or from creation, if later); while
release N still runs beside it, accounts it creates without an expiry get their role's default
(``auth.service.expiry_of``), and challenges it issued are still spent the old way.

Revision ID: 0007
Revises: 0006
"""
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from ezla.db import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ca_certificates") as batch:
        batch.add_column(sa.Column("renewed_from", sa.String(40), nullable=True))
        batch.add_column(sa.Column("invalid_since", UtcDateTime(), nullable=True))
        batch.create_index("ix_ca_certificates_renewed_from", ["renewed_from"])
    with op.batch_alter_table("ca_activation_codes") as batch:
        batch.add_column(sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("auth_accounts") as batch:
        batch.add_column(sa.Column("certificate_serial", sa.String(40), nullable=True))
        batch.add_column(sa.Column("last_used_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("revoked_at", UtcDateTime(), nullable=True))
        batch.create_index("ix_auth_accounts_certificate_serial", ["certificate_serial"])
    accounts = sa.table(
        "auth_accounts",
        sa.column("id", sa.Integer()),
        sa.column("created_at", UtcDateTime()),
        sa.column("expires_at", UtcDateTime()),
    )
    conn = op.get_bind()
    now = datetime.now(UTC)
    for account_id, created_at in conn.execute(
        sa.select(accounts.c.id, accounts.c.created_at).where(accounts.c.expires_at.is_(None))
    ).all():
        conn.execute(
            accounts.update()
            .where(accounts.c.id == account_id)
            .values(expires_at=max(now, created_at) + timedelta(days=365))
        )
    op.create_index("ix_auth_challenges_expires_at", "auth_challenges", ["expires_at"])
    op.create_table(
        "auth_secrets",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "auth_throttle",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("window_start", UtcDateTime(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
    )
    op.create_table(
        "audit_pending",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("signer_sha256", sa.String(64), nullable=False),
    )
    with op.batch_alter_table("ca_audit_events") as batch:
        batch.alter_column("action", type_=sa.String(40), existing_type=sa.String(32))


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_pending")
    op.drop_table("auth_throttle")
    op.drop_table("auth_secrets")
    op.drop_index("ix_auth_challenges_expires_at", "auth_challenges")
    with op.batch_alter_table("auth_accounts") as batch:
        batch.drop_index("ix_auth_accounts_certificate_serial")
        batch.drop_column("revoked_at")
        batch.drop_column("last_used_at")
        batch.drop_column("certificate_serial")
    with op.batch_alter_table("ca_activation_codes") as batch:
        batch.drop_column("failed_attempts")
    with op.batch_alter_table("ca_certificates") as batch:
        batch.drop_index("ix_ca_certificates_renewed_from")
        batch.drop_column("invalid_since")
        batch.drop_column("renewed_from")
