"""What SigningTime means (domain.md: "a document signed after revocation is invalid; one signed
before stays valid"), and how revocation and expiry are judged against it.

SigningTime is the signer's claim, so it is only believed inside a window the receiver controls:
no later than receipt plus clock skew, no earlier than the submission delay allows (a clinic that
was offline may send up to three calendar days late). Inside that window:
- the signer certificate (and its path) must be valid at SigningTime;
- revoked for keyCompromise, unspecified or any reason not listed below: everything *received*
  after the revocation is refused, whatever SigningTime says (a thief can write any time);
- revoked for superseded, affiliationChanged or cessationOfOperation: a document signed before the
  revocation is accepted, with a note that says so;
- expired at receipt: judged like a non-compromise revocation at notAfter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

import lxml.etree

from ezla.errors import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    SigningTimeBeforeCertificate,
    SigningTimeInFuture,
    SigningTimeInvalid,
    SigningTimeMissing,
    SigningTimeTooOld,
)
from ezla.xades.algorithms import XADES

# Revocations that say nothing about who held the key: signatures made before them stand.
BENIGN_REASONS = frozenset({"superseded", "affiliationChanged", "cessationOfOperation"})
SIGNED_BEFORE_REVOCATION = "signed-before-revocation"
SIGNED_BEFORE_EXPIRY = "signed-before-expiry"
_SIGNING_TIME = f"{{{XADES}}}SignedSignatureProperties/{{{XADES}}}SigningTime"


@dataclass(frozen=True)
class Revocation:
    at: datetime
    reason: str | None  # RFC 5280 reason name as in ezla.ca.crl.REASONS ("keyCompromise", ...)


@dataclass(frozen=True)
class SigningTimePolicy:
    required: bool = True
    max_skew: timedelta = timedelta(minutes=5)
    # Calendar days the signing date may lie before the day of receipt; None: no bound (archival
    # checks of documents accepted long ago pass the acceptance time as the time of receipt).
    max_delay_days: int | None = 3
    zone: tzinfo = UTC  # whose calendar days (issuance passes Europe/Warsaw)

    def earliest(self, received_at: datetime) -> datetime | None:
        if self.max_delay_days is None:
            return None
        day = received_at.astimezone(self.zone).date() - timedelta(days=self.max_delay_days)
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)


# xs:dateTime with a time zone (a SigningTime without one names no instant), offsets up to 14:00.
_XS_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))"
)


def read_signing_time(props: lxml.etree._Element) -> datetime | None:
    text = props.findtext(_SIGNING_TIME)
    if text is None:
        return None
    found = _XS_DATETIME.fullmatch(text.strip())
    try:
        if found is None:
            raise ValueError(text)
        year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = found.groups()
        offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
        if offset > timedelta(hours=14) or int(off_m or 0) > 59:
            raise ValueError(text)
        end_of_day = (hour, minute, second, fraction or "0") == ("24", "00", "00", "0" * len(fraction or "0"))
        value = datetime(
            int(year),
            int(month),
            int(day),
            0 if end_of_day else int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
        value += timedelta(days=1) if end_of_day else timedelta(0)
        return value - (offset if sign == "+" else -offset) if not zulu else value
    except (ValueError, OverflowError):
        raise SigningTimeInvalid(f"SigningTime {text.strip()[:40]!r} is not an xs:dateTime with a time zone") from None


def judge_signing_time(
    claimed: datetime | None, *, received_at: datetime, not_before: datetime, policy: SigningTimePolicy
) -> datetime:
    """The time at which the certificate path is validated: SigningTime if believable."""
    if received_at + policy.max_skew < not_before:  # not yet valid when received, whatever is claimed
        raise CertificateNotYetValid(f"the signer certificate is valid from {not_before:%Y-%m-%dT%H:%M:%SZ}")
    if claimed is None:
        if policy.required:
            raise SigningTimeMissing()
        return received_at
    if claimed > received_at + policy.max_skew:
        raise SigningTimeInFuture(f"SigningTime {claimed:%Y-%m-%dT%H:%M:%SZ} is after receipt")
    if claimed < not_before:
        raise SigningTimeBeforeCertificate(f"the certificate is valid from {not_before:%Y-%m-%dT%H:%M:%SZ}")
    return min(claimed, received_at)


def judge_expiry(
    signing_time: datetime, not_after: datetime, *, received_at: datetime, policy: SigningTimePolicy
) -> str | None:
    """None if valid at receipt; a note if expired since but signed before and sent in time."""
    if received_at <= not_after:
        return None
    earliest = policy.earliest(received_at)
    if signing_time <= not_after and (earliest is None or signing_time >= earliest):
        return SIGNED_BEFORE_EXPIRY
    raise CertificateExpired(f"the signer certificate expired {not_after:%Y-%m-%d}")


def judge_age(signing_time: datetime, *, received_at: datetime, policy: SigningTimePolicy) -> None:
    earliest = policy.earliest(received_at)
    if earliest is not None and signing_time < earliest:
        raise SigningTimeTooOld(f"signed on {signing_time:%Y-%m-%d}, more than {policy.max_delay_days} days ago")


def judge_revocation(
    revocation: Revocation | None, *, signing_time: datetime, received_at: datetime, policy: SigningTimePolicy
) -> str | None:
    """None if not revoked at receipt; a note if revoked benignly after a timely signature."""
    if revocation is None or revocation.at > received_at:
        return None
    if signing_time >= revocation.at:
        raise CertificateRevoked("the certificate was revoked before the signing time", after_signing=True)
    if revocation.reason not in BENIGN_REASONS:
        raise CertificateRevoked(f"revoked ({revocation.reason or 'unspecified'}): nothing received since is accepted")
    earliest = policy.earliest(received_at)
    if earliest is not None and signing_time < earliest:
        raise CertificateRevoked("signed before the revocation but sent later than the submission delay allows")
    return SIGNED_BEFORE_REVOCATION
