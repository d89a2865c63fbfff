from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from ezla.distribution.addresses import WebhookPolicy
from ezla.distribution.channels import Channels
from ezla.distribution.worker import Worker
from tests.conftest import REGISTRY_TOKEN

INSECURE = WebhookPolicy(insecure=True)  # test receivers listen on loopback, over http


@pytest.fixture
def make_worker(session_factory, registry) -> Callable[..., Worker]:  # type: ignore[no-untyped-def]
    def make(registry_url: str | None = None, **kwargs) -> Worker:  # type: ignore[no-untyped-def]
        channels = Channels(
            registry_url=registry_url or registry,
            registry_token=REGISTRY_TOKEN,
            factory=session_factory,
            webhook_policy=INSECURE,
        )
        kwargs.setdefault("lease", timedelta(seconds=10))
        return Worker(session_factory, channels, node_id="T", **kwargs)

    return make


def drain(worker: Worker, rounds: int = 20) -> None:
    """Run the worker until nothing is due (bounded)."""
    for _ in range(rounds):
        if worker.run_once() == 0:
            return
