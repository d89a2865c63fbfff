"""The rules catalogue: every error code the service answers with and every warning a check can
give, with severity and a description in Polish and English (``GET /v1/rules``); each problem
document's ``type`` (``/problems/{code}``) resolves to the entry's page.

Errors come from the class tree in ``ezla.errors`` (so a new class is listed the day it is
written) plus the codes ``ezla.problems`` gives Litestar's own exceptions; warnings from
``ezla.issuance.findings``.
"""

from __future__ import annotations

import functools

import msgspec

from ezla.errors import TITLES_PL, EzlaError
from ezla.issuance.findings import WARNINGS, Severity
from ezla.problems import FRAMEWORK_CODES, problem_type


class RuleEntry(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    severity: Severity
    status: int | None  # the HTTP status of an error; a warning never refuses anything
    title_en: str
    title_pl: str
    type: str  # the problem type URI, a page explaining the code


def _error_classes() -> list[type[EzlaError]]:
    """The service's error tree: the classes of ``ezla.errors`` (the SDK's ``ApiError`` or a
    test's subclass are not codes the service answers with)."""
    found: list[type[EzlaError]] = [EzlaError]
    for cls in found:  # grows while it is walked: breadth-first over the tree
        found.extend(c for c in cls.__subclasses__() if c not in found)
    return [c for c in found if c.__module__ == EzlaError.__module__]


@functools.cache
def catalogue() -> tuple[RuleEntry, ...]:
    errors: dict[str, RuleEntry] = {}
    for cls in _error_classes():
        errors.setdefault(
            cls.code,
            RuleEntry(
                code=cls.code,
                severity=Severity.ERROR,
                status=cls.status,
                title_en=cls.title,
                title_pl=TITLES_PL[cls.code],
                type=problem_type(cls.code),
            ),
        )
    for code, (status, title) in FRAMEWORK_CODES.items():
        errors.setdefault(
            code,
            RuleEntry(
                code=code,
                severity=Severity.ERROR,
                status=status,
                title_en=title,
                title_pl=TITLES_PL[code],
                type=problem_type(code),
            ),
        )
    warnings = [
        RuleEntry(
            code=w.code,
            severity=Severity.WARNING,
            status=None,
            title_en=w.title_en,
            title_pl=w.title_pl,
            type=problem_type(w.code),
        )
        for w in WARNINGS.values()
    ]
    return (*sorted(errors.values(), key=lambda e: e.code), *warnings)


@functools.cache
def by_code() -> dict[str, RuleEntry]:
    return {e.code: e for e in catalogue()}
