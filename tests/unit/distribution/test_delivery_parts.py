"""Pure parts of delivery: retry timing, the webhook signature, who gets which body."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from ezla.distribution.backoff import next_delay
from ezla.distribution.channels import webhook_signature
from ezla.distribution.outbox import Announcement, idempotency_key, payer_key


def test_backoff_grows_then_stays_under_the_cap() -> None:
    rng = random.Random(7)
    for attempts in range(40):
        ceiling = min(300.0, 0.5 * 2**attempts)
        delays = [next_delay(attempts, rng=rng) for _ in range(200)]
        assert all(timedelta(seconds=ceiling / 4) <= d <= timedelta(seconds=ceiling) for d in delays)
    # Jittered: retries of many rows spread out instead of arriving together.
    assert len({next_delay(10, rng=rng) for _ in range(50)}) == 50


def test_backoff_cap_is_the_operators() -> None:
    assert next_delay(50, cap=2.0, rng=random.Random(1)) <= timedelta(seconds=2)


def test_webhook_signature_matches_openssl() -> None:
    # printf '%s' '1700000000.{"event":"issued"}' | openssl dgst -sha256 -hmac whsec_test
    expected = "289ed71b60bd9d61120f26c894e3f041c98ca9057025fff7d6fc5db9c127b79a"
    assert webhook_signature("whsec_test", "1700000000", b'{"event":"issued"}') == f"sha256={expected}"
    # The timestamp is covered: a replay with a fresh timestamp does not verify.
    assert webhook_signature("whsec_test", "1700000001", b'{"event":"issued"}') != f"sha256={expected}"


def test_announcement_routes_each_body_to_its_recipient() -> None:
    a = Announcement(
        payer_key=payer_key("5260250274", None),
        pesel="44051401359",
        employer={"who": "employer"},
        patient={"who": "patient", "icd10": "J10"},
        registry={"who": "registry", "icd10": "J10"},
    )
    assert a.for_recipient("employer") == ("nip:5260250274", {"who": "employer"})
    assert a.for_recipient("employer_webhook") == ("nip:5260250274", {"who": "employer"})
    assert a.for_recipient("patient")[0] == "44051401359"
    assert a.for_recipient("registry") == (None, {"who": "registry", "icd10": "J10"})
    assert "icd10" not in json.dumps(a.for_recipient("employer")[1])


def test_keys_are_stable_and_distinct() -> None:
    assert payer_key(None, "44051401359") == "pesel:44051401359"
    keys = {idempotency_key("e1", ev, r) for ev in ("issued", "cancelled") for r in ("registry", "employer")}
    assert len(keys) == 4 and idempotency_key("e1", "issued", "registry") == "ezla:e1:issued:registry"


def test_a_failed_attempt_that_cannot_be_recorded_does_not_kill_the_worker(tmp_path) -> None:
    """The database is away (a failover): recording the failure fails too; the worker logs it and
    carries on, and the row's lease expires so it is claimed again."""
    from datetime import UTC, datetime

    from ezla.db import make_engine, make_sessionmaker
    from ezla.distribution.channels import Channels
    from ezla.distribution.outbox import Claim
    from ezla.distribution.worker import Worker
    from ezla.events import EzlaId

    engine = make_engine("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    factory = make_sessionmaker(engine)
    worker = Worker(factory, Channels(registry_url="http://127.0.0.1:1", registry_token=None), node_id="T")
    claim = Claim(
        id=1, ezla_id=EzlaId("e"), event="issued", recipient="registry", idempotency_key="k", fence=1,
        attempts=0, created_at=datetime.now(UTC), address=None, payload="{}",
    )  # fmt: skip
    worker._failed(claim, "registry unreachable")  # no exception
    engine.dispose()


def test_the_node_never_sends_the_registry_a_bigger_batch_than_it_takes() -> None:
    """Separate services, so neither imports the other's limit: this pins them together."""
    from ezla.distribution.channels import REGISTRY_BATCH
    from ezla.registry.app import MAX_BATCH

    assert REGISTRY_BATCH <= MAX_BATCH
