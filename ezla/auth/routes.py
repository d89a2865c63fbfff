"""The login challenge a doctor signs (the token itself comes from the CA: ``ca/routes.py``)."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, get
from litestar.datastructures import State

from ezla.auth import service
from ezla.db import transaction, utcnow


class ChallengeOut(msgspec.Struct):
    challenge: str
    expires_at: datetime


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]

    @get("/challenge", sync_to_thread=True)
    def challenge(self, state: State) -> ChallengeOut:
        with transaction(state.sessionmaker) as session:
            challenge, expires_at = service.issue_challenge(session, now=utcnow())
        return ChallengeOut(challenge, expires_at)
