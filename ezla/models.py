"""Import every domain's models so that ``Base.metadata`` is complete (alembic, tests)."""

from __future__ import annotations


def import_all() -> None:
    import ezla.auth.models
    import ezla.ca.models
    import ezla.distribution.models
    import ezla.idempotency
    import ezla.issuance.models  # noqa: F401
