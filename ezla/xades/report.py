"""A validation report for every verification, in the spirit of ETSI TS 119 102-2.

The indication is TOTAL-PASSED, TOTAL-FAILED or INDETERMINATE; the sub-indication comes from
ETSI EN 319 102-1 table 5. Each check the verifier made is listed with its outcome, so a refusal
says not only which rule failed but which ones had passed before it. Refusals carry the report in
their problem document (``report``); ``ezla verify --report`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from ezla.errors import EzlaError


class Indication(StrEnum):
    TOTAL_PASSED = "TOTAL-PASSED"
    TOTAL_FAILED = "TOTAL-FAILED"
    INDETERMINATE = "INDETERMINATE"


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_CHECKED = "not-checked"


class Check(StrEnum):
    """The checks, in the order the verifier makes them."""

    FORMAT = "format"  # hardened parse, cost limits, XAdES-BES shape
    SCOPE = "scope"  # one signature over the whole document, nothing unsigned
    ALGORITHMS = "algorithms"  # strong signature, digest and key
    SIGNING_CERTIFICATE = "signing-certificate"  # SigningCertificate(V2) digest names the signer
    REFERENCES = "references"  # every Reference digest
    SIGNATURE_VALUE = "signature-value"
    TIMESTAMP = "timestamp"  # signature time-stamps (XAdES-T), when the document carries any
    SIGNING_TIME = "signing-time"
    CHAIN = "chain"  # path to a trusted root, KU/EKU, validity at signing time
    REVOCATION = "revocation"  # status at signing time and at receipt
    DOCTOR_IDENTITY = "doctor-identity"  # NPWZ and names in the document match the certificate


# error code -> (indication, sub-indication) where it cannot be read off the failing check
_BY_CODE: dict[str, tuple[Indication, str]] = {
    "signature-algorithm-weak": (Indication.INDETERMINATE, "CRYPTO_CONSTRAINTS_FAILURE"),
    "certificate-untrusted": (Indication.INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND"),
    "certificate-expired": (Indication.INDETERMINATE, "OUT_OF_BOUNDS_NO_POE"),
    "certificate-not-yet-valid": (Indication.TOTAL_FAILED, "NOT_YET_VALID"),
    "signing-time-before-certificate": (Indication.TOTAL_FAILED, "NOT_YET_VALID"),
    "certificate-not-for-signing": (Indication.INDETERMINATE, "CHAIN_CONSTRAINTS_FAILURE"),
    "signing-certificate-mismatch": (Indication.INDETERMINATE, "NO_SIGNING_CERTIFICATE_FOUND"),
    "signature-missing": (Indication.INDETERMINATE, "SIGNED_DATA_NOT_FOUND"),
}
_BY_CHECK: dict[Check, tuple[Indication, str]] = {
    Check.FORMAT: (Indication.TOTAL_FAILED, "FORMAT_FAILURE"),
    Check.SCOPE: (Indication.TOTAL_FAILED, "FORMAT_FAILURE"),
    Check.ALGORITHMS: (Indication.INDETERMINATE, "CRYPTO_CONSTRAINTS_FAILURE"),
    Check.SIGNING_CERTIFICATE: (Indication.INDETERMINATE, "NO_SIGNING_CERTIFICATE_FOUND"),
    Check.REFERENCES: (Indication.TOTAL_FAILED, "HASH_FAILURE"),
    Check.SIGNATURE_VALUE: (Indication.TOTAL_FAILED, "SIG_CRYPTO_FAILURE"),
    # EN 319 102-1 5.4: a signature time-stamp that cannot be validated leaves no proof of existence.
    Check.TIMESTAMP: (Indication.INDETERMINATE, "SIG_CONSTRAINTS_FAILURE"),
    Check.SIGNING_TIME: (Indication.INDETERMINATE, "SIG_CONSTRAINTS_FAILURE"),
    Check.CHAIN: (Indication.INDETERMINATE, "CHAIN_CONSTRAINTS_FAILURE"),
    Check.REVOCATION: (Indication.INDETERMINATE, "REVOKED_NO_POE"),
    Check.DOCTOR_IDENTITY: (Indication.INDETERMINATE, "SIG_CONSTRAINTS_FAILURE"),
}


def _classify(check: Check, exc: EzlaError) -> tuple[Indication, str]:
    if exc.code == "certificate-revoked" and exc.extra.get("after_signing"):
        return Indication.TOTAL_FAILED, "REVOKED"  # signed after the revocation: no time saves it
    return _BY_CODE.get(exc.code) or _BY_CHECK[check]


@dataclass(frozen=True)
class CheckResult:
    check: Check
    outcome: Outcome
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check.value, "outcome": self.outcome.value}
        if self.detail:
            out["detail"] = self.detail
        return out


_PASSED = {c: CheckResult(c, Outcome.PASSED) for c in Check}


@dataclass(frozen=True)
class ValidationReport:
    indication: Indication
    sub_indication: str | None
    checks: tuple[CheckResult, ...]
    signing_time: datetime | None = None
    signer_serial: str | None = None  # lower-case hex
    notes: tuple[str, ...] = ()  # e.g. "signed-before-revocation": accepted, and why

    def as_dict(self) -> dict[str, Any]:
        return {
            "indication": self.indication.value,
            "sub_indication": self.sub_indication,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "signer_serial": self.signer_serial,
            "checks": [c.as_dict() for c in self.checks],
            "notes": list(self.notes),
        }

    def with_check(self, result: CheckResult, *, note: str | None = None) -> ValidationReport:
        return replace(self, checks=(*self.checks, result), notes=(*self.notes, *([note] if note else [])))


@dataclass
class ReportBuilder:
    """Collects check outcomes while the verifier runs; one per verification, never shared."""

    visited: list[Check] = field(default_factory=lambda: [Check.FORMAT])
    notes: list[str] = field(default_factory=list)
    signing_time: datetime | None = None
    signer_serial: str | None = None

    def enter(self, check: Check) -> Check:
        """The previous step passed; ``check`` is under way (a check may span several steps)."""
        if check not in self.visited:
            self.visited.append(check)
        return check

    def passed_report(self) -> ValidationReport:
        checks = tuple(_PASSED[c] for c in self.visited)
        return ValidationReport(
            Indication.TOTAL_PASSED, None, checks, self.signing_time, self.signer_serial, tuple(self.notes)
        )

    def failed(self, check: Check, exc: EzlaError) -> ValidationReport:
        indication, sub = _classify(check, exc)
        passed = [CheckResult(c, Outcome.PASSED) for c in self.visited if c is not check]
        rest = [CheckResult(c, Outcome.NOT_CHECKED) for c in Check if c not in self.visited and c is not check]
        checks = (*passed, CheckResult(check, Outcome.FAILED, exc.code), *rest)
        return ValidationReport(indication, sub, checks, self.signing_time, self.signer_serial, tuple(self.notes))


def attach(exc: EzlaError, report: ValidationReport) -> EzlaError:
    """Put the report into the error's problem document (``ezla.problems`` renders ``extra``)."""
    exc.extra["report"] = report.as_dict()
    exc.extra.pop("after_signing", None)
    return exc


def failed_report(report: ValidationReport, check: Check, exc: EzlaError) -> ValidationReport:
    """A passed report turned failed by a later check (revocation, doctor identity)."""
    indication, sub = _classify(check, exc)
    checks = (*(c for c in report.checks if c.check is not check), CheckResult(check, Outcome.FAILED, exc.code))
    return replace(report, indication=indication, sub_indication=sub, checks=checks)
