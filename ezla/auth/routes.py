"""The challenge holders sign (the doctor token itself comes from the CA: ``ca/routes.py``), and the
operator's account API."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.datastructures import CacheControlHeader, State

from ezla.auth import service
from ezla.auth.guards import principal_of, requires
from ezla.auth.service import Role
from ezla.db import reading, transaction, utcnow
from ezla.errors import BadRequest
from ezla.identifiers import nip_valid, pesel_valid
from ezla.problems import ROW_ID
from ezla.ratelimit import bucket

NO_STORE = CacheControlHeader(no_store=True)


def check_identifiers(nip: str | None, pesel: str | None) -> None:
    if nip is not None and not nip_valid(nip):
        raise BadRequest("NIP fails its check digit", field="nip")
    if pesel is not None and not pesel_valid(pesel):
        raise BadRequest("PESEL fails its check digit", field="pesel")


class ChallengeOut(msgspec.Struct):
    challenge: str
    expires_at: datetime


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]

    @get(
        "/challenge",
        sync_to_thread=True,
        opt=bucket("challenge"),
        cache_control=NO_STORE,
        summary="A one-time challenge to sign for logging in or for a holder's proof",
    )
    def challenge(self, state: State) -> ChallengeOut:
        with reading(state.sessionmaker) as session:  # stateless: nothing is stored until it is used
            key = service.challenge_key(session)
        if key is None:  # the very first challenge: the shared key is written once, by a write transaction
            with transaction(state.sessionmaker) as session:
                key = service.ensure_challenge_key(session)
        challenge, expires_at = service.challenge_with(key, now=utcnow())
        return ChallengeOut(challenge, expires_at)


class AccountIn(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["operator", "employer", "patient", "assistant"]
    nip: str | None = None
    pesel: str | None = None
    passport: str | None = None  # a patient without a PESEL: "CC:NUMBER"
    label: str | None = None
    expires_in_days: int | None = None


class NewAccountOut(msgspec.Struct):
    account: service.AccountView  # the domain view as is: never the token, a PESEL only by its last digits
    token: str  # shown once


class AccountsController(Controller):
    """Operators list, create and revoke every kind of token (doctor tokens come from a login)."""

    path = "/v1/accounts"
    tags = ["auth"]
    guards = [requires(Role.OPERATOR)]

    @get("/", sync_to_thread=True, summary="Accounts and their tokens' state (operator)")
    def list_accounts(
        self, state: State, role: Role | None = None, include_inactive: bool = False
    ) -> list[service.AccountView]:
        with reading(state.sessionmaker) as session:
            views = service.list_accounts(session, now=utcnow(), role=role, include_inactive=include_inactive)
        return views

    @post(
        "/",
        status_code=201,
        sync_to_thread=True,
        cache_control=NO_STORE,
        summary="Make an account and its token (operator); the token is shown once",
    )
    def create(self, data: AccountIn, state: State) -> NewAccountOut:
        now = utcnow()
        expires_at = None
        if data.expires_in_days is not None:
            if not 1 <= data.expires_in_days <= 3 * 365:
                raise BadRequest("expires_in_days must be 1..1095", field="expires_in_days")
            expires_at = now + timedelta(days=data.expires_in_days)
        check_identifiers(data.nip, data.pesel)
        with transaction(state.sessionmaker) as session:
            account, token = service.create_account(
                session,
                Role(data.role),
                now=now,
                nip=data.nip,
                pesel=data.pesel,
                passport=data.passport,
                label=data.label,
                expires_at=expires_at,
            )
            view = service.AccountView.of(account, now)
        return NewAccountOut(view, token)

    @delete("/{account_id:int}", status_code=200, sync_to_thread=True, summary="Revoke an account's token (operator)")
    def revoke(
        self, account_id: Annotated[int, ROW_ID], request: Request[Any, Any, State], state: State
    ) -> service.AccountView:
        by = f"operator:{principal_of(request).account_id}"
        with transaction(state.sessionmaker) as session:
            view = service.revoke_account(session, account_id, now=utcnow(), by=by)
        return view
