"""Cost attacks against ``POST /v1/ezla`` (the corpus of ``bench/cost_attacks.py``): each refused
with its own code, before any canonicalisation or cryptography and before any database work, and a
genuine submission sent at the same time is accepted. Timings live in ``make bench``, not here."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from bench.cost_attacks import CORPUS
from ezla.xades import MAX_XML_BYTES
from tests.factories import XML, signed_sick_leave
from tests.integration.issuance.kit import refused

# attack -> (size, code). Sizes are the largest that stay under the body limit (20,000 namespace
# declarations took 35 s before the limits); many_references is refused on count, long values on length.
EXPECTED: dict[str, tuple[int, str]] = {
    "namespace_flood": (20_000, "xml-too-many-namespaces"),
    "namespace_flood_nested": (20_000, "xml-too-deep"),
    "attribute_flood": (20_000, "xml-too-many-attributes"),
    "wide_tree": (20_000, "xml-too-many-elements"),
    "deep_tree": (20_000, "xml-too-deep"),
    "long_base64": (200_000, "xml-text-too-long"),
    "long_text": (200_000, "xml-text-too-long"),
    "many_references": (20, "signature-too-many-references"),
}


@contextmanager
def transactions_begun(session_factory: Any) -> Iterator[list[object]]:
    """Every transaction begun on the node's engine while the block runs."""
    engine = session_factory.kw["bind"]
    begun: list[object] = []

    def on_begin(conn: object) -> None:
        begun.append(conn)

    event.listen(engine, "begin", on_begin)
    try:
        yield begun
    finally:
        event.remove(engine, "begin", on_begin)


def test_the_corpus_is_covered():
    assert set(EXPECTED) == set(CORPUS)


@pytest.mark.parametrize("attack", sorted(CORPUS))
def test_cost_attack_is_refused_before_any_database_work(client, session_factory, signed, attack):
    size, code = EXPECTED[attack]
    body = CORPUS[attack](signed, size)
    assert len(body) <= MAX_XML_BYTES, "the attack must be refused for its shape, not its size"
    with transactions_begun(session_factory) as begun:
        r = client.post("/v1/ezla", content=body, headers=XML)
    assert (r.status_code, r.json()["code"]) in ((400, code), (422, code)), r.text
    assert begun == [], "a refused attack opened a database transaction"
    refused(client, session_factory, body, r.status_code, code)  # and nothing was stored


def test_genuine_submission_is_accepted_while_attacks_run(client, session_factory, doctor, signed):
    attacks = [CORPUS[name](signed, EXPECTED[name][0]) for name in ("namespace_flood", "attribute_flood")]
    codes: list[int] = []

    def attack() -> None:
        for _ in range(10):
            for body in attacks:
                codes.append(client.post("/v1/ezla", content=body, headers=XML).status_code)

    threads = [threading.Thread(target=attack) for _ in range(3)]
    for t in threads:
        t.start()
    genuine = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML)
    for t in threads:
        t.join(timeout=120)
    assert genuine.status_code == 201, genuine.text
    assert codes and set(codes) == {400}


def test_genuine_submission_does_its_cpu_work_outside_transactions(client, session_factory, doctor):
    """The transactions a submission opens are short: none is open while the signature is checked
    or the receipt is signed (both happen between them)."""
    from ezla.issuance import service

    open_now: list[int] = []
    engine = session_factory.kw["bind"]
    state = {"depth": 0}

    def on_begin(conn: object) -> None:
        state["depth"] += 1

    def on_end(conn: object) -> None:
        state["depth"] -= 1

    real_verify, real_receipt = service.verify_enveloped, service.build_receipt

    def verify(*args: Any, **kwargs: Any) -> Any:
        open_now.append(state["depth"])
        return real_verify(*args, **kwargs)

    def receipt(*args: Any, **kwargs: Any) -> Any:
        open_now.append(state["depth"])
        return real_receipt(*args, **kwargs)

    event.listen(engine, "begin", on_begin)
    event.listen(engine, "commit", on_end)
    event.listen(engine, "rollback", on_end)
    try:
        service.verify_enveloped, service.build_receipt = verify, receipt  # type: ignore[assignment]
        r = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML)
    finally:
        service.verify_enveloped, service.build_receipt = real_verify, real_receipt  # type: ignore[assignment]
        event.remove(engine, "begin", on_begin)
        event.remove(engine, "commit", on_end)
        event.remove(engine, "rollback", on_end)
    assert r.status_code == 201, r.text
    assert open_now == [0, 0], "verification or the receipt's signature ran inside a transaction"
