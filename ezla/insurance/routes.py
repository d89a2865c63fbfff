"""HTTP surface of insurance relations: payers report, doctors look up (audited, rate-limited)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, put
from litestar.datastructures import State
from litestar.params import QueryParameter

from ezla.auth.guards import principal_of, requires
from ezla.auth.service import Principal, Role
from ezla.business_time import local_date
from ezla.db import transaction, utcnow
from ezla.insurance import schemas, service
from ezla.insurance.service import EmploymentIn, FamilyIn, Purpose
from ezla.ratelimit import bucket


def _payer(principal: Principal) -> str:
    return f"nip:{principal.nip}"


class EmployeesController(Controller):
    path = "/v1/employer/employees"
    tags = ["employer"]
    guards = [requires(Role.EMPLOYER)]

    @put(
        "/{pesel:str}",
        status_code=200,
        sync_to_thread=True,
        summary="Report (or update) that this payer insures a person",
        description="Body `{payer_name, from, to}`; `to` null while the relation lasts.",
    )
    def set_employment(
        self, pesel: str, data: EmploymentIn, request: Request[Any, Any, State], state: State
    ) -> schemas.EmploymentOut:
        with transaction(state.sessionmaker) as session:
            answer = service.set_employment(session, _payer(principal_of(request)), pesel, data, now=utcnow())
        return msgspec.convert(answer, schemas.EmploymentOut)

    @delete("/{pesel:str}", status_code=204, sync_to_thread=True, summary="Withdraw a reported relation")
    def end_employment(self, pesel: str, request: Request[Any, Any, State], state: State) -> None:
        with transaction(state.sessionmaker) as session:
            service.end_employment(session, _payer(principal_of(request)), pesel, now=utcnow())

    @put(
        "/{pesel:str}/family",
        status_code=200,
        sync_to_thread=True,
        summary="Report the family members of an insured person (as on the ZCNA form); replaces the list",
    )
    def set_family(
        self, pesel: str, data: FamilyIn, request: Request[Any, Any, State], state: State
    ) -> schemas.FamilyReported:
        with transaction(state.sessionmaker) as session:
            count = service.set_family(session, _payer(principal_of(request)), pesel, data, now=utcnow())
        return schemas.FamilyReported(pesel=pesel, members=count)


class InsuredController(Controller):
    path = "/v1/insured"
    tags = ["clinic look-ups"]
    guards = [requires(Role.DOCTOR)]

    @get(
        "/{pesel:str}/payers",
        sync_to_thread=True,
        opt=bucket("lookup"),
        summary="The payers insuring a patient on a date (NIP and name only); audited",
        description="`purpose` (issuing, correction, family-care) is recorded with the doctor's NPWZ; "
        "`on` defaults to today.",
    )
    def payers(
        self,
        pesel: str,
        request: Request[Any, Any, State],
        state: State,
        purpose: Purpose,
        on: Annotated[date | None, QueryParameter()] = None,
    ) -> schemas.Payers:
        now = utcnow()
        npwz = principal_of(request).npwz or ""
        with transaction(state.sessionmaker) as session:
            found = service.payers_of(session, pesel, on=on or local_date(now), npwz=npwz, purpose=purpose, now=now)
        return msgspec.convert({"payers": [p.as_json() for p in found]}, schemas.Payers)

    @get(
        "/{pesel:str}/family",
        sync_to_thread=True,
        opt=bucket("lookup"),
        summary="The family members an insured person reported (names, date of birth, relationship); audited",
    )
    def family(self, pesel: str, request: Request[Any, Any, State], state: State, purpose: Purpose) -> schemas.Family:
        now = utcnow()
        npwz = principal_of(request).npwz or ""
        with transaction(state.sessionmaker) as session:
            members = service.family_of(session, pesel, npwz=npwz, purpose=purpose, now=now)
        return msgspec.convert({"members": members}, schemas.Family)


ROUTES = [EmployeesController, InsuredController]
