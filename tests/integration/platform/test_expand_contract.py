"""Expand/contract migrations (ezla.migrate): on an existing database ``upgrade`` applies the expand
steps and holds the contract ones back until asked; a new database gets everything. 0008 adds the
incapacity period nullable (release N keeps inserting without it), 0012 back-fills the rows release
N wrote, from their stored signed content, and then requires the columns."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from ezla.db import make_engine, make_sessionmaker, transaction
from ezla.document import model as document
from ezla.issuance.models import SickLeaveRecord
from ezla.issuance.samples import sample_sick_leave
from ezla.migrate import alembic_config, current_revision, upgrade
from tests.conftest import pg_create, pg_drop


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0008(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database migrated to 0008 only: where a rolling upgrade stands while release N still serves."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/ezla.sqlite3"
        command.upgrade(alembic_config(url), "0008")
        yield url
        return
    name = f"ezla_xc_{secrets.token_hex(4)}"
    url = pg_create(name)
    command.upgrade(alembic_config(url), "0008")
    yield url
    pg_drop(name)


def _insert_as_release_n(url: str, start: date, end: date) -> str:
    """A row as release N writes it: no incapacity columns."""
    sick_leave = sample_sick_leave(today=start, incapacity=document.Incapacity(start=start, end=end))
    engine = make_engine(url)
    ezla_id = str(uuid.uuid4())
    with transaction(make_sessionmaker(engine)) as session:
        session.add(
            SickLeaveRecord(
                id=ezla_id,
                document_id=sick_leave.document_id,
                series="ZA",
                number=secrets.randbelow(10**7),
                status="issued",
                doctor_npwz=sick_leave.doctor.npwz,
                patient_pesel=sick_leave.patient.pesel,
                payer_nip=sick_leave.payer.nip,
                payer_pesel=sick_leave.payer.pesel,
                issue_date=sick_leave.issue_date,
                incapacity_from=None,  # type: ignore[arg-type]  # what release N leaves
                incapacity_to=None,  # type: ignore[arg-type]
                signer_serial="01",
                document_sha256="0" * 64,
                signed_xml=b"<SickLeave/>",
                data_json=json.dumps(document.as_builtins(sick_leave)),
                receipt_xml=b"<Receipt/>",
                accepted_at=datetime.now(UTC),
                accepted_by_node="N",
            )
        )
    engine.dispose()
    return ezla_id


def test_contract_waits_for_the_flag_then_backfills_and_requires(at_0008: str) -> None:
    ids = {_insert_as_release_n(at_0008, date(2026, 11, d), date(2026, 11, d + 4)): d for d in (2, 9, 16)}

    held = upgrade(at_0008)  # what `ezla db upgrade` does on a running cluster
    # Expand steps apply at once; the contraction (kept last in the line) waits for the flag.
    assert (held.before, held.after, held.held_back) == ("0008", "0011", ["0012"])

    done = upgrade(at_0008, contract=True)
    assert (done.after, done.held_back) == (held.held_back[-1], [])
    engine = make_engine(at_0008)
    with engine.connect() as conn:
        rows = conn.execute(select(SickLeaveRecord.id, SickLeaveRecord.incapacity_from, SickLeaveRecord.incapacity_to))
        filled = {r[0]: (r[1], r[2]) for r in rows}
        nullable = {c["name"]: c["nullable"] for c in inspect(conn).get_columns("ezla_sick_leaves")}
        # Required now: a row without the period (release N's insert) is refused.
        with pytest.raises(Exception, match=r"(?i)null"):
            conn.execute(text("UPDATE ezla_sick_leaves SET incapacity_to = NULL"))
    engine.dispose()
    assert filled == {i: (date(2026, 11, d), date(2026, 11, d + 4)) for i, d in ids.items()}
    assert nullable["incapacity_from"] is False and nullable["incapacity_to"] is False


def test_a_new_database_gets_every_migration(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.sqlite3"
    done = upgrade(url)
    assert (done.before, done.held_back) == (None, [])
    assert done.after == current_revision(url)
    assert done.after is not None and done.after >= "0012"
