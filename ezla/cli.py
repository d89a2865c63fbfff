"""The ``ezla`` command. Each domain's ``cli.py`` contributes its verbs, loaded when named.

Commands are found by name in ``COMMANDS`` and imported only when run (click's documented lazy
group): ``ezla sign`` on a clinic workstation need not load the CA's linters or the web server.
"""

from __future__ import annotations

import importlib

import click

from ezla.clikit import EXIT_CODES_HELP, config_defaults, emit_upgrade, json_option, settings
from ezla.migrate import upgrade

COMMANDS = {
    "account": "ezla.auth.cli:account",
    "assistants": "ezla.issuance.clinic_cli:assistants",
    "audit": "ezla.ca.cli:audit",
    "cancel": "ezla.issuance.cli:cancel",
    "deliveries": "ezla.distribution.cli:deliveries",
    "demo": "ezla.issuance.demo:demo",
    "dictionary": "ezla.issuance.clinic_cli:dictionary",
    "doctor": "ezla.ca.cli:doctor",
    "drafts": "ezla.issuance.clinic_cli:drafts",
    "employees": "ezla.insurance.cli:employees",
    "enroll": "ezla.ca.cli:enroll",
    "example": "ezla.issuance.cli:example",
    "insured": "ezla.issuance.clinic_cli:insured",
    "list": "ezla.issuance.clinic_cli:list_ezla",
    "numbers": "ezla.issuance.clinic_cli:numbers",
    "pki": "ezla.ca.cli:pki",
    "registry": "ezla.registry.cli:registry",
    "related": "ezla.issuance.clinic_cli:related",
    "renew": "ezla.ca.cli:renew",
    "revoke": "ezla.ca.cli:revoke",
    "rules": "ezla.issuance.clinic_cli:rules",
    "serve": "ezla.server:serve",
    "sign": "ezla.issuance.cli:sign",
    "submit": "ezla.issuance.cli:submit",
    "validate": "ezla.issuance.clinic_cli:validate",
    "verify": "ezla.issuance.cli:verify",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module, _, attr = COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, epilog=EXIT_CODES_HELP)
@click.version_option(package_name="ezla")
def main() -> None:
    """ezla: e-ZLA sick-leave service, CA and tools."""
    config_defaults()


@main.group("db")
def db() -> None:
    """The node database."""


@db.command("upgrade")
@click.option(
    "--contract",
    is_flag=True,
    help="Also apply contract migrations (they require or remove what the previous release uses): "
    "only once every node runs this release.",
)
@json_option
def db_upgrade(contract: bool, as_json: bool) -> None:
    """Apply the expand migrations (all of them on a new database)."""
    s = settings()
    done = upgrade(s.database_url, contract=contract)
    emit_upgrade(as_json, done, s.database_url)
