"""What happens to an e-ZLA, named once for every package that speaks of it (issuance records it,
distribution delivers it, the registry keeps it): its status is the name of its latest event."""

from __future__ import annotations

from enum import StrEnum


class EzlaStatus(StrEnum):
    ISSUED = "issued"
    CANCELLED = "cancelled"
