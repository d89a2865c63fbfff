"""Alembic environment for the registry's own database."""

from __future__ import annotations

from alembic import context

from ezla.db import make_engine
from ezla.registry.models import RegistryBase

config = context.config
connectable = make_engine(config.get_main_option("sqlalchemy.url") or "")
with connectable.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=RegistryBase.metadata,
        render_as_batch=True,
        version_table="registry_alembic_version",
    )
    with context.begin_transaction():
        context.run_migrations()
connectable.dispose()
