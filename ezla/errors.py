"""One error tree for the whole service.

Every class carries a stable ``code`` (part of the public contract: clients switch on it) and an
HTTP ``status``. ``ezla.app`` renders them as RFC 9457 ``application/problem+json``; 5xx hides
the detail.
"""

from __future__ import annotations

from typing import Any, ClassVar


class EzlaError(Exception):
    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


# --- generic request problems -------------------------------------------------------------
class BadRequest(EzlaError):
    code, status, title = "bad-request", 400, "Bad request"


class PayloadTooLarge(EzlaError):
    code, status, title = "payload-too-large", 413, "Request body too large"


class UnsupportedMediaType(EzlaError):
    code, status, title = "unsupported-media-type", 415, "Unsupported media type"


class NotFound(EzlaError):
    code, status, title = "not-found", 404, "Not found"


class Conflict(EzlaError):
    code, status, title = "conflict", 409, "Conflict"


class Unprocessable(EzlaError):
    code, status, title = "unprocessable", 422, "Unprocessable content"


class ServiceUnavailable(EzlaError):
    code, status, title = "unavailable", 503, "Service unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    code, title = "database-unavailable", "The database is unavailable; retry shortly"


# --- authentication and authorization -----------------------------------------------------
class Unauthenticated(EzlaError):
    code, status, title = "unauthenticated", 401, "Authentication required"


class Forbidden(EzlaError):
    code, status, title = "forbidden", 403, "Not allowed"


class ChallengeInvalid(Unauthenticated):
    code, title = "challenge-invalid", "Challenge unknown, used or expired"


class ProofInvalid(Unauthenticated):
    code, title = "proof-invalid", "Signature over the challenge does not verify"


class RateLimited(EzlaError):
    """Answered with ``Retry-After`` (seconds, also in the body as ``retry_after``)."""

    code, status, title = "rate-limited", 429, "Too many requests; retry later"


class AccountNotFound(NotFound):
    code, title = "account-not-found", "No account with this id"


# --- certificate authority ----------------------------------------------------------------
class CsrMalformed(BadRequest):
    code, title = "csr-malformed", "The CSR cannot be parsed"


class CsrSignatureInvalid(Unprocessable):
    code, title = "csr-signature-invalid", "The CSR's proof of possession does not verify"


class KeyTooWeak(Unprocessable):
    code, title = "key-too-weak", "Key type or size not allowed (RSA >= 2048 or EC P-256+)"


class KeyExponentNotAllowed(KeyTooWeak):
    code, title = "key-exponent-not-allowed", "RSA keys must use the public exponent 65537"


class Pkcs12PasswordWeak(BadRequest):
    code, title = "pkcs12-password-weak", "The PKCS#12 password is too short or too easy to guess"


class KeyCertificateMismatch(Unprocessable):
    code, title = "key-certificate-mismatch", "The private key does not belong to the certificate"


class CsrSubjectMismatch(Unprocessable):
    code, title = "csr-subject-mismatch", "The CSR subject disagrees with the registered doctor"


class ActivationCodeInvalid(Forbidden):
    code, title = "activation-code-invalid", "Activation code unknown, used or expired"


class ActivationCodeLocked(Forbidden):
    code, title = "activation-code-locked", "Too many wrong codes for this doctor; ask the operator for a new one"


class DoctorExists(Conflict):
    code, title = "doctor-exists", "A doctor with this NPWZ is already registered"


class CertificateUnknown(NotFound):
    code, title = "certificate-unknown", "No certificate with this serial"


class CertificateAlreadyRevoked(Conflict):
    code, title = "certificate-already-revoked", "The certificate is already revoked"


class OcspRequestMalformed(BadRequest):
    code, title = "ocsp-request-malformed", "The OCSP request cannot be parsed"


class PkiNotInitialised(ServiceUnavailable):
    code, title = "pki-not-initialised", "The PKI has not been initialised (run `ezla pki init`)"


class PkiPassphraseWrong(ServiceUnavailable):
    code, title = "pki-passphrase-wrong", "The CA key passphrase does not open the CA keys"


class TokenKeyExists(ServiceUnavailable):
    code, title = "token-key-exists", "The PKCS#11 token already holds a CA key of that role"


class LintFailed(EzlaError):
    code, title = "lint-failed", "The to-be-issued object failed linting"


# --- signatures and documents -------------------------------------------------------------
class XmlMalformed(BadRequest):
    code, title = "xml-malformed", "The body is not well-formed XML"


class XmlForbiddenConstruct(BadRequest):
    code, title = "xml-forbidden-construct", "DTDs, entities and processing of external resources are refused"


class XmlTooDeep(BadRequest):
    code, title = "xml-too-deep", "The XML nesting is too deep"


class XmlTooManyNamespaces(BadRequest):
    code, title = "xml-too-many-namespaces", "Too many namespace declarations"


class XmlTooManyAttributes(BadRequest):
    code, title = "xml-too-many-attributes", "Too many attributes on one element"


class XmlTooManyElements(BadRequest):
    code, title = "xml-too-many-elements", "More elements than any document of this kind can have"


class XmlTextTooLong(BadRequest):
    code, title = "xml-text-too-long", "A text node is longer than any field allows"


class SchemaInvalid(Unprocessable):
    code, title = "schema-invalid", "The document does not follow the schema"


class WrongNamespace(SchemaInvalid):
    code, title = "wrong-namespace", "The root element is not in urn:ezla:sick-leave:1"


class SignatureInvalid(Unprocessable):
    code, title = "signature-invalid", "The XAdES signature does not verify"


class SignatureMissing(SignatureInvalid):
    code, title = "signature-missing", "The document carries no signature"


class SignatureScope(SignatureInvalid):
    code, title = "signature-scope", "The signature must cover the whole document"


class SignatureAlgorithmWeak(SignatureInvalid):
    code, title = "signature-algorithm-weak", "Weak signature or digest algorithm"


class SignatureTooManyReferences(SignatureInvalid):
    code, title = "signature-too-many-references", "More References than an enveloped XAdES-BES needs"


class UnsignedPropertiesRefused(SignatureInvalid):
    code, title = "unsigned-properties", "Unsigned properties are refused: only signed content is stored"


class SigningTimeInvalid(SignatureInvalid):
    code, title = "signing-time-invalid", "SigningTime is not an xs:dateTime"


class SigningTimeMissing(SigningTimeInvalid):
    code, title = "signing-time-missing", "The signed properties carry no SigningTime"


class SigningTimeInFuture(SigningTimeInvalid):
    code, title = "signing-time-in-future", "SigningTime is later than the time of receipt (beyond clock skew)"


class SigningTimeBeforeCertificate(SigningTimeInvalid):
    code, title = "signing-time-before-certificate", "SigningTime is before the signer certificate's notBefore"


class SigningTimeTooOld(SigningTimeInvalid):
    code, title = "signing-time-too-old", "SigningTime is earlier than the submission delay allows"


class SigningCertificateMismatch(SignatureInvalid):
    code, title = "signing-certificate-mismatch", "SigningCertificate does not match the signer"


class CertificateUntrusted(SignatureInvalid):
    code, title = "certificate-untrusted", "The signer certificate does not chain to the ezla CA"


class CertificateExpired(SignatureInvalid):
    code, title = "certificate-expired", "The signer certificate is expired"


class CertificateNotYetValid(SignatureInvalid):
    code, title = "certificate-not-yet-valid", "The signer certificate is not yet valid"


class CertificateRevoked(SignatureInvalid):
    code, title = "certificate-revoked", "The signer certificate is revoked"


class CertificateNotForSigning(SignatureInvalid):
    code, title = "certificate-not-for-signing", "The certificate is not a document-signing certificate"


class SignerNotDoctor(Forbidden):
    code, title = "signer-not-doctor", "The signer is not the doctor named in the document"


class DoctorNameMismatch(SignerNotDoctor):
    code, title = "doctor-name-mismatch", "The doctor's names in the document differ from the signer certificate's"


# --- e-ZLA business rules (issuance/rules.py): 422, one class per rule ----------------------
class RuleViolation(Unprocessable):
    """Base of every business-rule error (422), so callers can catch them together."""

    code, title = "rule-violation", "The document breaks a business rule"


class NpwzInvalid(RuleViolation):
    code, title = "npwz-invalid", "The doctor's NPWZ has a wrong check digit"


class RegonInvalid(RuleViolation):
    code, title = "regon-invalid", "The clinic's REGON has a wrong check digit"


class PeselInvalid(RuleViolation):
    code, title = "pesel-invalid", "The patient's PESEL has a wrong check digit or date of birth"


class NipInvalid(RuleViolation):
    code, title = "nip-invalid", "The payer's NIP has a wrong check digit"


class PayerPeselInvalid(RuleViolation):
    code, title = "payer-pesel-invalid", "The payer's PESEL has a wrong check digit or date of birth"


class FamilyMemberPeselInvalid(RuleViolation):
    code, title = (
        "family-member-pesel-invalid",
        "The family member's PESEL has a wrong check digit or date of birth",
    )


class PatientBirthDateInvalid(RuleViolation):
    code, title = "patient-birth-date-invalid", "The patient's date of birth is after the date of issue"


class FamilyMemberBirthDateInvalid(RuleViolation):
    code, title = (
        "family-member-birth-date-invalid",
        "The family member's date of birth is after the date of issue",
    )


class IssueDateInFuture(RuleViolation):
    code, title = "issue-date-in-future", "The date of issue is in the future"


class SubmissionTooLate(RuleViolation):
    code, title = "submission-too-late", "The e-ZLA must reach ezla at most 3 days after its date of issue"


class CodeInvalid(RuleViolation):
    code, title = "code-invalid", "Letter codes must be distinct letters A to E"


class IncapacityPeriodReversed(RuleViolation):
    code, title = "incapacity-period-reversed", "The incapacity ends before it starts"


class IncapacityTooLong(RuleViolation):
    code, title = "incapacity-too-long", "One e-ZLA covers at most 182 days (270 with code B or D)"


class IncapacityBackdated(RuleViolation):
    code, title = (
        "incapacity-backdated",
        "The incapacity may start at most 3 days before the date of issue (unless psychiatric)",
    )


class HospitalPeriodReversed(RuleViolation):
    code, title = "hospital-period-reversed", "The hospital stay ends before it starts"


class HospitalOutsidePeriod(RuleViolation):
    code, title = "hospital-outside-period", "The hospital stay must lie inside the period of incapacity"


class FamilyCareHouseholdMissing(RuleViolation):
    code, title = (
        "family-care-household-missing",
        "Care of a spouse, parent or other household member requires a shared household",
    )


class BackdatingJustificationMissing(RuleViolation):
    code, title = (
        "backdating-justification-missing",
        "An incapacity starting more than 3 days before the date of issue needs a BackdatingJustification",
    )


class DiagnosisUnknown(RuleViolation):
    code, title = "diagnosis-unknown", "The diagnosis is not a category or subcategory of ICD-10 (WHO edition)"


class PregnancyCodeNotFemale(RuleViolation):
    code, title = "pregnancy-code-not-female", "Code B (pregnancy) is only for a female patient"


class CancellationReasonMissing(RuleViolation):
    code, title = "cancellation-reason-missing", "A cancellation must give a reason"


# --- e-ZLA records (issuance/service.py) -------------------------------------------------------
class DocumentIdConflict(Unprocessable):
    code, title = "document-id-conflict", "This DocumentId was already used for different content"


class AlreadyCancelled(Conflict):
    code, title = "already-cancelled", "This e-ZLA is already cancelled"


class CancellationMismatch(Unprocessable):
    code, title = "cancellation-mismatch", "The cancellation names another e-ZLA (DocumentId, series or number)"


class EzlaNotFound(NotFound):
    code, title = "ezla-not-found", "No such e-ZLA"


class ReplacedEzlaNotFound(Unprocessable):
    code, title = "replaced-ezla-not-found", "The e-ZLA named in Replaces does not exist"


class CorrectionPatientMismatch(Unprocessable):
    code, title = "correction-patient-mismatch", "A correction must be for the same patient as the e-ZLA it replaces"


class ReservedNumberUnknown(Unprocessable):
    code, title = "reserved-number-unknown", "This series and number were not reserved by the doctor named"


class ReservedNumberExpired(Unprocessable):
    code, title = "reserved-number-expired", "The reservation of this number had expired by the date of issue"


class ReservedNumberUsed(Conflict):
    code, title = "reserved-number-used", "This reserved number is already on another e-ZLA"


# --- Idempotency-Key (idempotency.py) ---------------------------------------------------------
class IdempotencyKeyInvalid(BadRequest):
    code, title = "idempotency-key-invalid", "Idempotency-Key must be 1-255 visible ASCII characters"


class IdempotencyInFlight(Conflict):
    code, title = "idempotency-in-flight", "A request with this key is in progress"


class IdempotencyKeyReused(Unprocessable):
    code, title = "idempotency-key-reused", "This Idempotency-Key was used for another request"


# --- the registry (registry/evidence.py) --------------------------------------------------------
class EvidenceMismatch(Unprocessable):
    code, title = "evidence-mismatch", "The signed parts of this ingest do not belong together"


# Polish titles, by code, for the rules catalogue (GET /v1/rules), the problem pages and the Polish
# web pages. A test holds every class and every code problems.py answers with to having one.
TITLES_PL: dict[str, str] = {
    "internal": "Błąd wewnętrzny",
    "bad-request": "Nieprawidłowe żądanie",
    "validation-failed": "Żądanie nie jest zgodne ze schematem",
    "body-malformed": "Nie można odczytać treści żądania",
    "method-not-allowed": "Metoda niedozwolona dla tego adresu",
    "not-acceptable": "Nie można odpowiedzieć w żądanym formacie",
    "http-error": "Błąd żądania HTTP",
    "csr-malformed": "Nie można odczytać wniosku CSR",
    "pkcs12-password-weak": "Hasło PKCS#12 jest za krótkie lub zbyt łatwe do odgadnięcia",
    "ocsp-request-malformed": "Nie można odczytać żądania OCSP",
    "xml-malformed": "Treść nie jest poprawnym dokumentem XML",
    "xml-forbidden-construct": "Deklaracje DTD, encje i zasoby zewnętrzne są odrzucane",
    "xml-too-deep": "Zbyt głębokie zagnieżdżenie XML",
    "xml-too-many-namespaces": "Zbyt wiele deklaracji przestrzeni nazw",
    "xml-too-many-attributes": "Zbyt wiele atrybutów jednego elementu",
    "xml-too-many-elements": "Więcej elementów, niż może mieć dokument tego rodzaju",
    "xml-text-too-long": "Tekst dłuższy, niż dopuszcza jakiekolwiek pole",
    "idempotency-key-invalid": "Idempotency-Key musi mieć od 1 do 255 widocznych znaków ASCII",
    "payload-too-large": "Treść żądania jest za duża",
    "unsupported-media-type": "Nieobsługiwany typ treści",
    "not-found": "Nie znaleziono",
    "account-not-found": "Nie ma konta o tym identyfikatorze",
    "certificate-unknown": "Nie ma certyfikatu o tym numerze seryjnym",
    "ezla-not-found": "Nie ma takiego e-ZLA",
    "replaced-ezla-not-found": "e-ZLA wskazane w Replaces nie istnieje",
    "correction-patient-mismatch": "Korekta musi dotyczyć tego samego pacjenta co zastępowane e-ZLA",
    "reserved-number-unknown": "Ta seria i numer nie zostały zarezerwowane przez wskazanego lekarza",
    "reserved-number-expired": "Rezerwacja tego numeru wygasła przed datą wystawienia",
    "reserved-number-used": "Ten zarezerwowany numer jest już na innym e-ZLA",
    "conflict": "Konflikt",
    "doctor-exists": "Lekarz o tym NPWZ jest już zarejestrowany",
    "certificate-already-revoked": "Certyfikat jest już unieważniony",
    "already-cancelled": "To e-ZLA jest już anulowane",
    "idempotency-in-flight": "Żądanie z tym kluczem jest w toku",
    "unprocessable": "Nie można przetworzyć treści",
    "csr-signature-invalid": "Podpis wniosku CSR (dowód posiadania klucza) jest nieprawidłowy",
    "key-too-weak": "Niedozwolony rodzaj lub długość klucza (RSA co najmniej 2048 lub EC P-256+)",
    "key-exponent-not-allowed": "Klucze RSA muszą mieć wykładnik publiczny 65537",
    "key-certificate-mismatch": "Klucz prywatny nie należy do certyfikatu",
    "csr-subject-mismatch": "Dane we wniosku CSR różnią się od danych zarejestrowanego lekarza",
    "schema-invalid": "Dokument nie jest zgodny ze schematem",
    "wrong-namespace": "Element główny nie należy do przestrzeni nazw urn:ezla:sick-leave:1",
    "signature-invalid": "Podpis XAdES jest nieprawidłowy",
    "signature-missing": "Dokument nie jest podpisany",
    "signature-scope": "Podpis musi obejmować cały dokument",
    "signature-algorithm-weak": "Słaby algorytm podpisu lub skrótu",
    "signature-too-many-references": "Więcej odwołań (Reference), niż potrzebuje podpis XAdES-BES",
    "unsigned-properties": "Właściwości niepodpisane są odrzucane: przechowywana jest tylko treść podpisana",
    "signing-time-invalid": "SigningTime nie jest poprawną datą i czasem (xs:dateTime)",
    "signing-time-missing": "Właściwości podpisane nie zawierają SigningTime",
    "signing-time-in-future": "SigningTime jest późniejszy niż czas otrzymania (ponad dopuszczalną różnicę zegarów)",
    "signing-time-before-certificate": "SigningTime jest wcześniejszy niż początek ważności certyfikatu",
    "signing-time-too-old": "SigningTime jest wcześniejszy, niż pozwala termin przesłania",
    "signing-certificate-mismatch": "SigningCertificate nie wskazuje certyfikatu podpisującego",
    "certificate-untrusted": "Certyfikat podpisującego nie pochodzi z CA ezla",
    "certificate-expired": "Certyfikat podpisującego wygasł",
    "certificate-not-yet-valid": "Certyfikat podpisującego nie jest jeszcze ważny",
    "certificate-revoked": "Certyfikat podpisującego jest unieważniony",
    "certificate-not-for-signing": "Certyfikat nie służy do podpisywania dokumentów",
    "rule-violation": "Dokument narusza regułę biznesową",
    "npwz-invalid": "NPWZ lekarza ma błędną cyfrę kontrolną",
    "regon-invalid": "REGON placówki ma błędną cyfrę kontrolną",
    "pesel-invalid": "PESEL pacjenta ma błędną cyfrę kontrolną lub datę urodzenia",
    "nip-invalid": "NIP płatnika ma błędną cyfrę kontrolną",
    "payer-pesel-invalid": "PESEL płatnika ma błędną cyfrę kontrolną lub datę urodzenia",
    "family-member-pesel-invalid": "PESEL członka rodziny ma błędną cyfrę kontrolną lub datę urodzenia",
    "patient-birth-date-invalid": "Data urodzenia pacjenta jest późniejsza niż data wystawienia",
    "family-member-birth-date-invalid": "Data urodzenia członka rodziny jest późniejsza niż data wystawienia",
    "issue-date-in-future": "Data wystawienia jest w przyszłości",
    "submission-too-late": "e-ZLA musi dotrzeć do ezla najpóźniej 3 dni po dacie wystawienia",
    "code-invalid": "Kody literowe muszą być różnymi literami od A do E",
    "incapacity-period-reversed": "Niezdolność do pracy kończy się przed początkiem",
    "incapacity-too-long": "Jedno e-ZLA obejmuje najwyżej 182 dni (270 z kodem B lub D)",
    "incapacity-backdated": "Niezdolność może zaczynać się najwyżej 3 dni przed datą wystawienia (poza psychiatrią)",
    "hospital-period-reversed": "Pobyt w szpitalu kończy się przed początkiem",
    "hospital-outside-period": "Pobyt w szpitalu musi mieścić się w okresie niezdolności",
    "family-care-household-missing": "Opieka nad małżonkiem, rodzicem lub innym domownikiem wymaga wspólnego gospodarstwa",
    "backdating-justification-missing": "Niezdolność zaczynająca się ponad 3 dni przed datą wystawienia wymaga uzasadnienia (BackdatingJustification)",
    "diagnosis-unknown": "Rozpoznanie nie jest kategorią ani podkategorią ICD-10 (wydanie WHO)",
    "pregnancy-code-not-female": "Kod B (ciąża) dotyczy tylko pacjentki",
    "cancellation-reason-missing": "Anulowanie musi podawać przyczynę",
    "document-id-conflict": "Ten DocumentId został już użyty dla innej treści",
    "cancellation-mismatch": "Anulowanie wskazuje inne e-ZLA (DocumentId, seria lub numer)",
    "idempotency-key-reused": "Ten Idempotency-Key został użyty dla innego żądania",
    "evidence-mismatch": "Podpisane części tego przekazu nie należą do siebie",
    "unavailable": "Usługa niedostępna",
    "database-unavailable": "Baza danych jest niedostępna; spróbuj ponownie za chwilę",
    "pki-not-initialised": "PKI nie zostało zainicjowane (uruchom `ezla pki init`)",
    "pki-passphrase-wrong": "Hasło kluczy CA nie otwiera kluczy CA",
    "token-key-exists": "Token PKCS#11 ma już klucz CA tej roli",
    "evidence-missing": "Dokument nie ma dowodów długoterminowych (znacznika czasu podpisu)",
    "revocation-evidence-invalid": "Brak ważnej odpowiedzi OCSP dla podpisującego z chwili znacznika czasu",
    "unauthenticated": "Wymagane uwierzytelnienie",
    "challenge-invalid": "Wyzwanie nieznane, wykorzystane lub wygasłe",
    "proof-invalid": "Podpis wyzwania jest nieprawidłowy",
    "forbidden": "Brak uprawnień",
    "activation-code-invalid": "Kod aktywacyjny nieznany, wykorzystany lub wygasły",
    "activation-code-locked": "Zbyt wiele błędnych kodów dla tego lekarza; poproś operatora o nowy",
    "signer-not-doctor": "Podpisujący nie jest lekarzem wskazanym w dokumencie",
    "doctor-name-mismatch": "Imię i nazwisko lekarza w dokumencie różnią się od danych w certyfikacie",
    "rate-limited": "Zbyt wiele żądań; spróbuj ponownie później",
    "too-many-requests": "Zbyt wiele żądań; spróbuj ponownie później",
    "lint-failed": "Wystawiany obiekt nie przeszedł kontroli (lint)",
    "timestamp-invalid": "Znacznik czasu podpisu jest nieprawidłowy",
}


# --- time-stamps (xades/timestamps.py) --------------------------------------------------------
class EvidenceMissing(SignatureInvalid):
    code, title = "evidence-missing", "The document carries no long-term evidence (signature time-stamp)"


class RevocationEvidenceInvalid(SignatureInvalid):
    code, title = "revocation-evidence-invalid", "No valid OCSP response for the signer at the time-stamp"


class TimeStampInvalid(SignatureInvalid):
    code, title = "timestamp-invalid", "The signature time-stamp does not verify"
