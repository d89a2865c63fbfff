"""The client SDK used by clinic software, ``ezla enroll``/``submit``/``cancel`` and the tests.

It knows every node URL and fails over: a connection error, a timeout or a 502/503/504 moves to the
next node and retries with the same idempotency key after a jittered exponential backoff, so a
node loss is invisible to the caller. Only requests that are safe to repeat are retried (GETs,
submissions keyed by ``DocumentId``, and requests carrying an ``Idempotency-Key``).
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ezla.errors import EzlaError
from ezla.files import write_private
from ezla.proof import check_challenge, holder_message, login_message, sign_proof

RETRY_STATUSES = frozenset({502, 503, 504})


class ApiError(EzlaError):
    """A problem document from the service, with its stable code."""

    def __init__(self, status: int, code: str, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status
        self.api_code = code
        self.body = body or {}

    @property
    def code(self) -> str:  # type: ignore[override]
        return self.api_code

    @property
    def status(self) -> int:  # type: ignore[override]
        return self.status_code


class Unreachable(EzlaError):
    code, status, title = "unreachable", 503, "No node answered"


def _code(resp: httpx.Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


class EzlaClient:
    def __init__(
        self,
        urls: Sequence[str],
        *,
        token: str | None = None,
        timeout: float = 10.0,
        attempts: int = 10,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
    ) -> None:
        if not urls:
            raise ValueError("at least one URL")
        self.urls = [u.rstrip("/") for u in urls]
        self.token = token
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.failovers = 0  # how many times a request moved on to another node (tests print it)
        self._preferred = 0
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EzlaClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- transport -------------------------------------------------------------------------
    def request(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        last: Exception | None = None
        attempts = self.attempts if retry else 1
        for attempt in range(attempts):
            # Each failure moves the preference on, so attempt n+1 goes to the next node (never the
            # one that just failed, which may be hung and cost a whole timeout again).
            index = self._preferred % len(self.urls)
            base = self.urls[index]
            try:
                resp = self._http.request(method, base + path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                last = exc
            else:
                if resp.status_code == 409 and retry and _code(resp) == "idempotency-in-flight":
                    # The first try is still running (or died with its node): wait and ask again.
                    last = ApiError(409, "idempotency-in-flight", "still in flight")
                    time.sleep(min(self.max_backoff, self.backoff * 2**attempt))
                    continue
                if resp.status_code not in RETRY_STATUSES or not retry:
                    self._preferred = index
                    return self._check(resp)
                last = ApiError(resp.status_code, "unavailable", f"node answered {resp.status_code}")
            self.failovers += 1
            self._preferred = (index + 1) % len(self.urls)
            if attempt + 1 < attempts and attempt >= len(self.urls) - 1:
                # Every node has failed once: back off before going round again. Equal jitter (half
                # the delay, plus up to half at random) spreads clients yet guarantees the retries
                # span a database failover (about 3-5 s): at least ~5 s over the default attempts.
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - len(self.urls) + 1))
                time.sleep(delay / 2 + random.uniform(0, delay / 2))  # noqa: S311
        raise Unreachable(f"no node answered after {attempts} attempts: {type(last).__name__}")

    @staticmethod
    def _check(resp: httpx.Response) -> httpx.Response:
        if resp.status_code < 400:
            return resp
        try:
            body = resp.json()
        except ValueError:
            body = {}
        raise ApiError(
            resp.status_code, body.get("code", "http-error"), body.get("detail") or body.get("title", ""), body
        )

    # --- CA --------------------------------------------------------------------------------
    def enroll_csr(self, activation_code: str, csr_pem: str) -> dict[str, Any]:
        # Not retried across nodes: a lost response would leave the code spent. The caller may
        # ask the operator for a new code; certificates are cheap, duplicate keys are not.
        resp = self.request(
            "POST", "/v1/ca/enrollments", retry=False, json={"activation_code": activation_code, "csr_pem": csr_pem}
        )
        return resp.json()  # type: ignore[no-any-return]

    def enroll_pkcs12(self, activation_code: str, password: str) -> tuple[str, bytes]:
        resp = self.request(
            "POST",
            "/v1/ca/enrollments",
            retry=False,
            json={"activation_code": activation_code, "pkcs12_password": password},
        )
        return resp.headers["X-Ezla-Serial"], resp.content

    def challenge(self) -> str:

        return check_challenge(str(self.request("GET", "/v1/auth/challenge").json()["challenge"]))

    def doctor_login(self, cert: x509.Certificate, key: PrivateKeyTypes) -> str:

        challenge = self.challenge()
        resp = self.request(
            "POST",
            "/v1/auth/doctor-token",
            json={
                "certificate_pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
                "challenge": challenge,
                "signature": base64.b64encode(sign_proof(key, login_message(challenge))).decode(),
            },
        )
        self.token = resp.json()["token"]
        return self.token

    def revoke_as_holder(self, cert: x509.Certificate, key: PrivateKeyTypes, reason: str) -> dict[str, Any]:

        serial = format(cert.serial_number, "x")
        challenge = self.challenge()
        sig = sign_proof(key, holder_message("revoke", serial, challenge, reason))
        resp = self.request(
            "POST",
            f"/v1/ca/certificates/{serial}/revocation",
            json={"reason": reason, "challenge": challenge, "signature": base64.b64encode(sig).decode()},
        )
        return resp.json()  # type: ignore[no-any-return]

    def renew(self, cert: x509.Certificate, key: PrivateKeyTypes, csr_pem: str) -> dict[str, Any]:

        serial = format(cert.serial_number, "x")
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        digest = hashlib.sha256(csr.public_bytes(serialization.Encoding.DER)).hexdigest()
        challenge = self.challenge()
        sig = sign_proof(key, holder_message("renew", serial, challenge, digest))
        resp = self.request(
            "POST",
            f"/v1/ca/certificates/{serial}/renewal",
            retry=False,
            json={"csr_pem": csr_pem, "challenge": challenge, "signature": base64.b64encode(sig).decode()},
        )
        return resp.json()  # type: ignore[no-any-return]

    # --- e-ZLA -----------------------------------------------------------------------------
    def submit(self, signed_xml: bytes) -> dict[str, Any]:
        """Safe to retry anywhere: the DocumentId inside is the idempotency key. ``created`` is False
        when this document was accepted before (then ``status`` is its state now)."""
        resp = self.request("POST", "/v1/ezla", content=signed_xml, headers={"Content-Type": "application/xml"})
        return {**resp.json(), "created": resp.status_code == 201}

    def cancel(self, ezla_id: str, signed_xml: bytes) -> dict[str, Any]:
        resp = self.request(
            "POST",
            f"/v1/ezla/{ezla_id}/cancellation",
            content=signed_xml,
            headers={"Content-Type": "application/xml", "Idempotency-Key": str(uuid.uuid4())},
        )
        return resp.json()  # type: ignore[no-any-return]

    # --- the clinic interface (a doctor's token: ``doctor_login`` first) ----------------------
    def validate(self, xml: bytes) -> dict[str, Any]:
        """Dry run of a signed or unsigned SickLeave or Cancellation: ``{valid, findings, report}``."""
        resp = self.request("POST", "/v1/ezla/validation", content=xml, headers={"Content-Type": "application/xml"})
        return resp.json()  # type: ignore[no-any-return]

    def doctor_ezla(
        self,
        *,
        status: str | None = None,
        issued_from: str | None = None,
        issued_to: str | None = None,
        number: str | None = None,
        page_size: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """The doctor's e-ZLA, newest first, following the cursor to the last page; ``number`` (as
        printed, "ZA 0000123") finds one."""
        params: dict[str, Any] = {"limit": page_size}
        filters = (("status", status), ("from", issued_from), ("to", issued_to), ("number", number))
        params.update({k: v for k, v in filters if v})
        while True:
            page = self.request("GET", "/v1/doctor/ezla", params=params).json()
            yield from page["items"]
            if page["next_cursor"] is None:
                return
            params["after"] = page["next_cursor"]

    def related(self, ezla_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/v1/ezla/{ezla_id}/related").json()["items"]  # type: ignore[no-any-return]

    def reserve_numbers(self, count: int) -> list[dict[str, Any]]:
        """Retried safely: the Idempotency-Key makes a repeat answer with the first reservation."""
        resp = self.request(
            "POST",
            "/v1/ezla/number-reservations",
            json={"count": count},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        return resp.json()["reservations"]  # type: ignore[no-any-return]

    def reserved_numbers(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/ezla/number-reservations").json()["reservations"]  # type: ignore[no-any-return]

    def insured_payers(self, pesel: str, *, purpose: str, on: str | None = None) -> list[dict[str, Any]]:
        """The patient's payers (NIP, name) on ``on`` (default today); the look-up is audited."""
        params = {"purpose": purpose, **({"on": on} if on else {})}
        return self.request("GET", f"/v1/insured/{pesel}/payers", params=params).json()["payers"]  # type: ignore[no-any-return]

    def insured_family(self, pesel: str, *, purpose: str) -> list[dict[str, Any]]:
        resp = self.request("GET", f"/v1/insured/{pesel}/family", params={"purpose": purpose})
        return resp.json()["members"]  # type: ignore[no-any-return]

    # --- assistants and drafts -------------------------------------------------------------
    def authorise_assistant(self, cert: x509.Certificate, key: PrivateKeyTypes, assistant_id: int) -> dict[str, Any]:
        """Sign the authorisation with the doctor's key (the doctor is logged in)."""
        serial = format(cert.serial_number, "x")
        challenge = self.challenge()
        sig = sign_proof(key, holder_message("authorise-assistant", serial, challenge, str(assistant_id)))
        body = {
            "assistant_id": assistant_id,
            "serial": serial,
            "challenge": challenge,
            "signature": base64.b64encode(sig).decode(),
        }
        return self.request("POST", "/v1/doctor/assistants", json=body).json()  # type: ignore[no-any-return]

    def revoke_assistant(self, assistant_id: int) -> None:
        self.request("DELETE", f"/v1/doctor/assistants/{assistant_id}")

    def assistants(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/doctor/assistants").json()["items"]  # type: ignore[no-any-return]

    def save_draft(self, xml: bytes, *, doctor: str | None = None) -> dict[str, Any]:
        """A doctor's own draft, or (an assistant) one for ``doctor``; answers with its findings."""
        resp = self.request(
            "POST",
            "/v1/drafts",
            params={"doctor": doctor} if doctor else None,
            content=xml,
            headers={"Content-Type": "application/xml", "Idempotency-Key": str(uuid.uuid4())},
        )
        return resp.json()  # type: ignore[no-any-return]

    def update_draft(self, draft_id: str, xml: bytes) -> dict[str, Any]:
        resp = self.request("PUT", f"/v1/drafts/{draft_id}", content=xml, headers={"Content-Type": "application/xml"})
        return resp.json()  # type: ignore[no-any-return]

    def drafts(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/drafts").json()["items"]  # type: ignore[no-any-return]

    def draft_xml(self, draft_id: str) -> bytes:
        return self.get_bytes(f"/v1/drafts/{draft_id}", "application/xml")

    def delete_draft(self, draft_id: str) -> None:
        self.request("DELETE", f"/v1/drafts/{draft_id}")

    # --- a payer's reports (an employer's token) --------------------------------------------
    def report_employee(
        self, pesel: str, *, payer_name: str, valid_from: str, valid_to: str | None = None
    ) -> dict[str, Any]:
        body = {"payer_name": payer_name, "from": valid_from, "to": valid_to}
        return self.request("PUT", f"/v1/employer/employees/{pesel}", json=body).json()  # type: ignore[no-any-return]

    def remove_employee(self, pesel: str) -> None:
        self.request("DELETE", f"/v1/employer/employees/{pesel}")

    def report_family(self, pesel: str, members: list[dict[str, Any]]) -> int:
        resp = self.request("PUT", f"/v1/employer/employees/{pesel}/family", json={"members": members})
        return int(resp.json()["members"])

    # --- reference data (anyone) -----------------------------------------------------------
    def dictionaries(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/dictionaries").json()["dictionaries"]  # type: ignore[no-any-return]

    def dictionary(self, name: str, prefix: str | None = None) -> dict[str, Any]:
        params = {"prefix": prefix} if prefix else None
        return self.request("GET", f"/v1/dictionaries/{name}", params=params).json()  # type: ignore[no-any-return]

    def rules(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/rules").json()["rules"]  # type: ignore[no-any-return]

    def get_json(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None).json()

    def get_bytes(self, path: str, accept: str = "*/*") -> bytes:
        return self.request("GET", path, headers={"Accept": accept}).content


def new_key(key_type: str) -> PrivateKeyTypes:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key: PrivateKeyTypes) -> str:
    """An empty-subject CSR: the CA takes the subject from the registration (it must not disagree)."""
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def save_key(path: Path, key: PrivateKeyTypes, passphrase: str | None) -> None:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))


def enroll_with_new_key(
    client: EzlaClient,
    activation_code: str,
    out_dir: Path,
    *,
    key_type: str = "ec",
    key_passphrase: str | None = None,
    name: str | None = None,
) -> dict[str, str]:
    """A key made here, its CSR enrolled; saves NAME.key, NAME.pem and NAME.chain.pem (NAME defaults
    to the certificate's serial, with the key as SERIAL.key.pem)."""
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise ValueError("a file name of letters, digits, '.', '_' or '-'")
    key = new_key(key_type)
    result = client.enroll_csr(activation_code, make_csr(key))
    out_dir.mkdir(parents=True, exist_ok=True)
    serial = str(result["serial"])
    if not re.fullmatch(r"[0-9a-f]{1,40}", serial):  # it names files: never trust it as a path
        raise ApiError(502, "bad-response", "the server returned a malformed serial")
    key_path, cert_path, chain_path = (
        out_dir / (f"{name}.key" if name else f"{serial}.key.pem"),
        out_dir / f"{name or serial}.pem",
        out_dir / f"{name or serial}.chain.pem",
    )
    save_key(key_path, key, key_passphrase)
    cert_path.write_text(result["certificate_pem"])
    chain_path.write_text(result["chain_pem"])
    return {"serial": serial, "key": str(key_path), "certificate": str(cert_path), "chain": str(chain_path)}
