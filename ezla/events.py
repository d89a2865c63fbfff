"""What happens to an e-ZLA, named once for every package that speaks of it (issuance records it,
distribution delivers it, the registry keeps it): its status is the name of its latest event."""

from __future__ import annotations

from enum import StrEnum
from typing import NewType

EzlaId = NewType("EzlaId", str)  # our UUID for an accepted e-ZLA
DocumentId = NewType("DocumentId", str)  # the clinic's UUID in the document: the idempotency key


class EzlaStatus(StrEnum):
    ISSUED = "issued"
    CANCELLED = "cancelled"
