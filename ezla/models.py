"""Every table of the main database, so that ``Base.metadata`` is complete (alembic, tests).

Importing this module is what registers the tables; ``import_all`` makes that explicit at call sites.
"""

from __future__ import annotations

import ezla.audit.models
import ezla.auth.models
import ezla.ca.models
import ezla.distribution.models
import ezla.idempotency
import ezla.insurance.models
import ezla.issuance.models  # noqa: F401


def import_all() -> None:
    """Nothing left to do: the imports above ran when this module was loaded."""
