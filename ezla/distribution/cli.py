"""``ezla deliveries list|retry``: the operator's dead-letter tools."""

from __future__ import annotations

import click

from ezla.clikit import db_session, emit, json_option
from ezla.db import utcnow
from ezla.distribution.outbox import retry_dead
from ezla.distribution.service import deliveries as rows


@click.group("deliveries")
def deliveries() -> None:
    """The delivery outbox."""


@deliveries.command("list")
@click.option("--status", type=click.Choice(["pending", "delivered", "dead"]), default=None)
@click.option("--limit", default=50, show_default=True)
@json_option
def list_(status: str | None, limit: int, as_json: bool) -> None:
    """Show outbox rows, newest first (``--status dead`` is the dead-letter view)."""

    with db_session() as session:
        items = rows(session, status=status, limit=limit)
    emit(
        as_json,
        {"items": items},
        "\n".join(
            f"{d['id']:>6} {d['status']:<9} {d['recipient']:<16} {d['event']:<9} attempts={d['attempts']} "
            f"{d['ezla_id']} {d['last_error'] or ''}"
            for d in items
        )
        or "no deliveries",
    )


@deliveries.command("retry")
@click.option("--id", "delivery_id", type=int, default=None, help="One delivery; default: every dead one.")
@json_option
def retry(delivery_id: int | None, as_json: bool) -> None:
    """Put dead-lettered deliveries back in the queue."""

    with db_session() as session:
        n = retry_dead(session, now=utcnow(), delivery_id=delivery_id)
    emit(as_json, {"requeued": n}, f"requeued {n} deliveries")
