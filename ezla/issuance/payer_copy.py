"""The payer's copy of an e-ZLA as a document: the payer's cut of it (``document.codec``) sealed with
the service seal, as ZUS hands payers their e-ZLA as signed files. Verifiable by anyone with the
CA chain (GET /v1/ca/chain), like a receipt; its Status is the e-ZLA's status when it was made."""

from __future__ import annotations

from datetime import datetime

from ezla.ca.keystore import OnlineKeys
from ezla.document.codec import payer_copy_element
from ezla.document.schema import validate
from ezla.issuance.views import EzlaView
from ezla.xades import sign_enveloped


def payer_copy(view: EzlaView, keys: OnlineKeys, *, now: datetime) -> bytes:
    root = payer_copy_element(
        view.sick_leave,
        series=view.series,
        number=f"{view.number:07d}",
        status=view.status,
        accepted_at=view.accepted_at,
        cancelled_at=view.cancelled_at,
    )
    validate(root)
    return sign_enveloped(root, keys.service_key, keys.service, (), signing_time=now)
