"""Contract: ``incapacity_from`` and ``incapacity_to`` become required.

Run only once every node runs the release that writes them (0008's); ``ezla db upgrade`` holds this
back until ``--contract``. First the rows written before (by release N) are back-filled from their
stored JSON (the signed content) in small committed batches, so the serving nodes never wait long
on a row lock. Then, on PostgreSQL, NOT NULL is proven by a CHECK constraint added NOT VALID and
validated (which takes no lock that blocks writes), so SET NOT NULL needs no table scan under its
brief exclusive lock; the CHECK is dropped after. SQLite (one node, no concurrent release) rebuilds
the table.

Revision ID: 0012
Revises: 0011
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BATCH = 500
CHECK = "ck_ezla_sick_leaves_period_present"


def _backfill(conn: sa.Connection) -> None:
    select = sa.text(
        "SELECT id, data_json FROM ezla_sick_leaves WHERE incapacity_from IS NULL OR incapacity_to IS NULL "
        "ORDER BY id LIMIT :n"
    )
    update = sa.text("UPDATE ezla_sick_leaves SET incapacity_from = :f, incapacity_to = :t WHERE id = :id")
    while True:
        rows = conn.execute(select, {"n": BATCH}).fetchall()
        if not rows:
            return
        values = []
        for ezla_id, data_json in rows:
            incapacity = json.loads(data_json)["incapacity"]
            values.append({"id": ezla_id, "f": incapacity["from"], "t": incapacity["to"]})
        conn.execute(update, values)  # on PostgreSQL in an autocommit block: a batch is a transaction


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        _backfill(conn)
        with op.batch_alter_table("ezla_sick_leaves") as batch:
            batch.alter_column("incapacity_from", existing_type=sa.Date(), nullable=False)
            batch.alter_column("incapacity_to", existing_type=sa.Date(), nullable=False)
        return
    with op.get_context().autocommit_block():
        _backfill(conn)
        # Raw SQL: alembic's naming convention would rename the constraint. IF EXISTS: a run that
        # failed after this point (its autocommitted steps stay) can simply be repeated.
        op.execute(f"ALTER TABLE ezla_sick_leaves DROP CONSTRAINT IF EXISTS {CHECK}")
        op.execute(
            f"ALTER TABLE ezla_sick_leaves ADD CONSTRAINT {CHECK} "
            "CHECK (incapacity_from IS NOT NULL AND incapacity_to IS NOT NULL) NOT VALID"
        )
        op.execute(f"ALTER TABLE ezla_sick_leaves VALIDATE CONSTRAINT {CHECK}")
    op.alter_column("ezla_sick_leaves", "incapacity_from", existing_type=sa.Date(), nullable=False)
    op.alter_column("ezla_sick_leaves", "incapacity_to", existing_type=sa.Date(), nullable=False)
    op.execute(f"ALTER TABLE ezla_sick_leaves DROP CONSTRAINT IF EXISTS {CHECK}")


def downgrade() -> None:
    with op.batch_alter_table("ezla_sick_leaves") as batch:
        batch.alter_column("incapacity_to", existing_type=sa.Date(), nullable=True)
        batch.alter_column("incapacity_from", existing_type=sa.Date(), nullable=True)
