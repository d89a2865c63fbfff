"""Retry timing: exponential backoff with full jitter (AWS architecture blog's "full jitter")."""

from __future__ import annotations

import random
from datetime import timedelta

BASE_SECONDS = 0.5
CAP_SECONDS = 300.0


def next_delay(
    attempts: int, *, base: float = BASE_SECONDS, cap: float = CAP_SECONDS, rng: random.Random | None = None
) -> timedelta:
    """Delay before attempt ``attempts + 1``: uniform in [c/4, c], c = min(cap, base * 2**attempts)
    (full jitter, with a floor so a busy receiver is not retried at once)."""
    ceiling = min(cap, base * (2 ** min(attempts, 30)))
    return timedelta(seconds=(rng or random).uniform(ceiling / 4, ceiling))
