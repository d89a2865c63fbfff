"""The ``ezla`` command. Each domain's ``cli.py`` contributes its verbs."""

from __future__ import annotations

import click

from ezla.clikit import emit, json_option, settings


@click.group()
@click.version_option(package_name="ezla")
def main() -> None:
    """ezla: e-ZLA sick-leave service, CA and tools."""


@main.group("db")
def db() -> None:
    """The node database."""


@db.command("upgrade")
@json_option
def db_upgrade(as_json: bool) -> None:
    """Apply alembic migrations up to head."""
    from ezla.migrate import upgrade

    s = settings()
    upgrade(s.database_url)
    emit(as_json, {"upgraded": True, "database": s.database_url.split("@")[-1]}, "database at head")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--node-id", default=None, help="Overrides EZLA_NODE_ID.")
@click.option("--workers/--no-workers", default=True, help="Run delivery workers in this node.")
@json_option
def serve(host: str, port: int, node_id: str | None, workers: bool, as_json: bool) -> None:
    """Run one node (logs are JSON lines; --json is accepted for symmetry with every verb)."""
    from ezla.server import run_node

    run_node(host=host, port=port, node_id=node_id, workers=workers)


@main.command("account")
@click.argument("action", type=click.Choice(["add"]))
@click.option("--role", type=click.Choice(["operator", "employer", "patient"]), required=True)
@click.option("--nip", default=None, help="Employer's NIP (role employer).")
@click.option("--pesel", default=None, help="Patient's PESEL (role patient), or a person-employer's PESEL.")
@click.option("--label", default=None)
@json_option
def account(action: str, role: str, nip: str | None, pesel: str | None, label: str | None, as_json: bool) -> None:
    """Create an account; prints its bearer token once."""
    from ezla.auth.service import Role, create_account
    from ezla.clikit import db_session, fail
    from ezla.db import utcnow
    from ezla.errors import BadRequest, EzlaError
    from ezla.identifiers import nip_valid, pesel_valid

    try:
        if nip is not None and not nip_valid(nip):
            raise BadRequest("NIP fails its check digit")
        if pesel is not None and not pesel_valid(pesel):
            raise BadRequest("PESEL fails its check digit")
        with db_session() as session:
            acc, token = create_account(session, Role(role), now=utcnow(), nip=nip, pesel=pesel, label=label)
            acc_id = acc.id
    except EzlaError as exc:
        fail(as_json, exc)
    emit(as_json, {"id": acc_id, "role": role, "token": token}, token)


def _register() -> None:
    from ezla.ca.cli import audit, doctor, enroll, pki, renew, revoke
    from ezla.distribution.cli import register as register_distribution
    from ezla.issuance.cli import register as register_issuance
    from ezla.registry.cli import register as register_registry

    for cmd in (pki, doctor, audit, enroll, renew, revoke):
        main.add_command(cmd)
    register_issuance(main)
    register_distribution(main)
    register_registry(main)


_register()
