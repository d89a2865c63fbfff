"""The CA as one running node sees it: its online keys, profile, URLs and node number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from ezla.audit import service as audit
from ezla.ca import profile, serials
from ezla.ca.keystore import OnlineKeys
from ezla.ca.models import Certificate, CertificateStatus
from ezla.ca.profile import Profile, Urls
from ezla.settings import Settings


@dataclass(frozen=True)
class CaContext:
    """What the CA needs from the running node: its keys, profile, URLs and node number."""

    keys: OnlineKeys
    profile: Profile
    urls: Urls
    node_number: int
    crl_validity: timedelta = timedelta(hours=24)

    @classmethod
    def from_settings(cls, settings: Settings) -> CaContext:
        return cls(
            keys=OnlineKeys.load(settings.pki_dir, settings.ca_key_passphrase),
            profile=profile.Profile.load(settings.pki_dir),
            urls=profile.Urls(settings.public_url),
            node_number=settings.node_number,
            crl_validity=timedelta(hours=settings.crl_validity_hours),
        )


def register_pki_certificates(session: Session, ctx: CaContext, *, now: datetime) -> None:
    """Record the certificates issued at the ceremony (OCSP responder, receipt seal, audit signer,
    TSA) so OCSP knows them."""
    responders = [("ocsp", g.ocsp) for g in ctx.keys.all_generations]  # every generation's, after a rollover
    for kind, cert in (
        *responders,
        ("service", ctx.keys.service),
        ("audit", ctx.keys.audit),
        ("tsa", ctx.keys.tsa),
    ):
        hexs = serials.to_hex(cert.serial_number)
        if session.get(Certificate, hexs) is None:
            session.add(
                Certificate(
                    serial=hexs,
                    doctor_id=None,
                    kind=kind,
                    status=CertificateStatus.ISSUED,
                    der=cert.public_bytes(serialization.Encoding.DER),
                    not_before=cert.not_valid_before_utc,
                    not_after=cert.not_valid_after_utc,
                    created_at=now,
                )
            )
            audit.record(session, "pki_certificate_recorded", hexs, {"kind": kind}, now=now)
