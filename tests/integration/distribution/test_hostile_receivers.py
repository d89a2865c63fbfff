"""Receivers that misbehave delay only their own rows (issue: delivery no recipient can stall).

Four employers point their webhooks at a receiver that drips its headers a byte at a time, one
that never answers, one that answers with a gzip bomb, and one that fails with 500 for a while.
With the background worker running as on a node, every delivery to the registry and to the inboxes
arrives within a second of its e-ZLA's acceptance, the flaky webhook gets its events once it
recovers, the gzip bomb is taken as the 200 it is without being inflated, and the two receivers
that never finish keep only their own rows pending.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from ezla.auth.service import Role, create_account
from ezla.db import reading, transaction
from ezla.distribution.addresses import WebhookPolicy
from ezla.distribution.channels import Channels
from ezla.distribution.models import Delivery
from ezla.distribution.worker import Worker
from ezla.document.model import Payer
from ezla.identifiers import Nip
from tests.conftest import REGISTRY_TOKEN
from tests.factories import XML, enroll, signed_sick_leave
from tests.identifiers import make_nip

# It measures delivery lag (< 1 s): a second test worker on the same cores would distort it.
pytestmark = pytest.mark.serial

INSECURE = WebhookPolicy(insecure=True)  # test receivers listen on loopback, over http

BOMB = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in about 64 KB


class Receiver:
    """A raw-socket HTTP receiver with one bad habit."""

    def __init__(self, habit: str, *, fail_first: int = 0) -> None:
        self.habit, self.fail_first, self.hits = habit, fail_first, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)  # the request (small; its body is not needed)
            self.hits += 1
            try:
                if self.habit == "drip":
                    conn.sendall(b"HTTP/1.1 200 OK\r\n")
                    while not self.stopped.wait(0.2):
                        conn.sendall(b"X")
                elif self.habit == "silent":
                    self.stopped.wait(30)
                elif self.habit == "gzip":
                    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(BOMB)}\r\n\r\n"
                    conn.sendall(head.encode() + BOMB)
                else:
                    status = "500 Internal Server Error" if self.hits <= self.fail_first else "200 OK"
                    conn.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
            except OSError:
                return  # the worker hung up on us, as it should

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {
        "drip": Receiver("drip"),
        "silent": Receiver("silent"),
        "gzip": Receiver("gzip"),
        "flaky": Receiver("flaky", fail_first=2),
    }
    yield made
    for r in made.values():
        r.close()


def _employer_with_webhook(client, session_factory, nip: str, url: str) -> None:  # type: ignore[no-untyped-def]
    with transaction(session_factory) as s:
        _, token = create_account(s, Role.EMPLOYER, now=datetime.now(UTC), nip=nip)
    r = client.put(
        "/v1/employer/webhook",
        json={"url": url, "secret": "s3cret-s3cret-s3cret"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text


def _nip(i: int) -> str:
    return next(n for k in range(100) if (n := make_nip(f"7{i}{k:02d}00123")))


def _rows(session_factory) -> list[Delivery]:  # type: ignore[no-untyped-def]
    with reading(session_factory) as s:
        return list(s.scalars(select(Delivery)))


def test_hostile_webhooks_delay_only_their_own_rows(  # type: ignore[no-untyped-def]
    client, operator_token, session_factory, registry, receivers
):
    nips = {habit: _nip(i) for i, habit in enumerate(receivers)}
    for habit, receiver in receivers.items():
        _employer_with_webhook(client, session_factory, str(nips[habit]), receiver.url)
    doctor = enroll(client, operator_token)
    channels = Channels(
        registry_url=registry,
        registry_token=REGISTRY_TOKEN,
        deadline=1.5,
        factory=session_factory,
        webhook_policy=INSECURE,
    )
    worker = Worker(session_factory, channels, node_id="T", retry_cap=0.3, concurrency=16, per_destination=2)
    worker.start()
    client.app.state.outbox_committed = worker.wake  # as a node does: deliveries start on commit
    try:
        for _ in range(3):  # the hostile payers' e-ZLA first, so their webhook rows are ahead in line
            for habit in receivers:
                payer = Payer(nip=Nip(str(nips[habit])), name=f"Pracodawca {habit}")
                r = client.post("/v1/ezla", content=signed_sick_leave(doctor, payer=payer), headers=XML)
                assert r.status_code == 201, r.text
        for _ in range(5):  # an employer without a webhook, and everybody's registry and inboxes
            r = client.post("/v1/ezla", content=signed_sick_leave(doctor), headers=XML)
            assert r.status_code == 201, r.text
            worker.wake()  # what the node's own request does after its commit

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = _rows(session_factory)
            plain = [d for d in rows if d.recipient != "employer_webhook"]
            flaky = [d for d in rows if d.recipient == "employer_webhook" and d.address == f"nip:{nips['flaky']}"]
            if all(d.status == "delivered" for d in plain + flaky):
                break
            time.sleep(0.1)
        rows = _rows(session_factory)
    finally:
        worker.stop(timeout=5)

    plain = [d for d in rows if d.recipient != "employer_webhook"]
    assert len(plain) == 17 * 3 and {d.status for d in plain} == {"delivered"}
    lags = sorted((d.delivered_at - d.created_at).total_seconds() for d in plain if d.delivered_at)
    print(f"\n[hostile] lag to registry and inboxes: p50 {lags[len(lags) // 2]:.3f} s, max {lags[-1]:.3f} s")
    assert lags[-1] < 1.0, lags

    by_habit = {
        habit: [d for d in rows if d.recipient == "employer_webhook" and d.address == f"nip:{nips[habit]}"]
        for habit in receivers
    }
    assert {d.status for d in by_habit["flaky"]} == {"delivered"} and receivers["flaky"].hits >= 5
    assert {d.status for d in by_habit["gzip"]} == {"delivered"}  # a 200, however big its body
    for habit in ("drip", "silent"):
        assert {d.status for d in by_habit[habit]} == {"pending"}
        assert all("longer than" in d.last_error for d in by_habit[habit] if d.last_error)
        # Never more than per_destination of a hostile receiver's rows were in flight at once.
        assert receivers[habit].hits <= 2 * (1 + 20 / 1.5)
    assert all(d.created_at > datetime.now(UTC) - timedelta(minutes=5) for d in rows)


def test_one_batch_takes_no_more_than_a_destinations_room(session_factory) -> None:  # type: ignore[no-untyped-def]
    """Ten due rows for one payer's webhook and ten for the registry: a claim keeps two of the
    webhook's (its room) and gives the other eight back untried, lease off, attempt uncounted. The
    registry's rows travel in batches (REGISTRY_BATCH a request), so all ten fit its room."""
    from ezla.distribution.models import Webhook
    from ezla.distribution.outbox import Announcement, enqueue
    from ezla.events import EzlaId, EzlaStatus

    now = datetime.now(UTC)
    with transaction(session_factory) as s:
        s.add(Webhook(payer_key="nip:5260250274", url="https://hook.example/", secret="s" * 20, updated_at=now))
        s.flush()
        announcement = Announcement("nip:5260250274", "44051401359", {}, {}, {})
        for _ in range(10):
            enqueue(s, EzlaId(str(uuid.uuid4())), EzlaStatus.ISSUED, announcement, now=now)
    worker = Worker(
        session_factory,
        Channels(
            registry_url="http://127.0.0.1:9", registry_token="x", factory=session_factory, webhook_policy=INSECURE
        ),
        node_id="T",
        per_destination=2,
    )
    taken = worker._claim(40, {"registry": 1})
    by_destination: dict[str, int] = {}
    for c in taken:
        by_destination[c.recipient] = by_destination.get(c.recipient, 0) + 1
    assert by_destination == {"employer_webhook": 2, "registry": 10, "employer": 10, "patient": 10}
    rows = _rows(session_factory)
    back = [d for d in rows if d.recipient in ("employer_webhook", "registry") and d.id not in {c.id for c in taken}]
    assert len(back) == 8
    assert all(d.lease_until is None and d.attempts == 0 for d in back)
