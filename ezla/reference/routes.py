"""HTTP surface of the reference data: dictionaries and the rules catalogue (JSON, cacheable by
ETag), and one page per problem code (the ``type`` of every problem document)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Template

from ezla.document import dictionaries
from ezla.document.schema import schema_source
from ezla.errors import BadRequest, NotFound
from ezla.reference.catalogue import RuleEntry, by_code, catalogue

# Reference data changes only with a release: a day in caches, revalidated by ETag after that.
_CACHE = "public, max-age=86400"
MAX_PREFIX = 16


@dataclass(frozen=True)
class Published:
    """A body built once, with its ETag hashed once (ICD-10 is over a megabyte)."""

    body: bytes
    media_type: str = "application/json"

    @functools.cached_property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'


def _cached(request: Request[Any, Any, Any], published: Published) -> Response[bytes]:
    headers = {"ETag": published.etag, "Cache-Control": _CACHE}
    if published.etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(b"", status_code=304, headers=headers)
    return Response(published.body, media_type=published.media_type, headers=headers)


class DictionarySummary(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    title_pl: str
    title_en: str
    version: str  # changes whenever an entry does: cache by it
    entries: int
    href: str


class DictionaryIndex(msgspec.Struct, frozen=True, kw_only=True):
    dictionaries: list[DictionarySummary]


class DictionaryOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    title_pl: str
    title_en: str
    version: str
    entries: list[dictionaries.Entry]


class RulesOut(msgspec.Struct, frozen=True, kw_only=True):
    rules: list[RuleEntry]


# The bodies are encoded once (ETag) from these types, which the API reference shows.
def _spec(container: type, what: str) -> dict[int, ResponseSpec]:
    return {
        200: ResponseSpec(data_container=container, generate_examples=False, description=what),
        304: ResponseSpec(None, generate_examples=False, description="Not modified: the If-None-Match ETag is current"),
    }


@functools.cache
def _index() -> Published:
    return Published(
        msgspec.json.encode(
            DictionaryIndex(
                dictionaries=[
                    DictionarySummary(
                        name=d.name,
                        title_pl=d.title_pl,
                        title_en=d.title_en,
                        version=d.version,
                        entries=len(d.entries),
                        href=f"/v1/dictionaries/{d.name}",
                    )
                    for d in dictionaries.dictionaries().values()
                ]
            )
        )
    )


@functools.lru_cache(maxsize=64)
def _dictionary(name: str, prefix: str) -> Published | None:
    d = dictionaries.get(name)
    if d is None:
        return None
    entries = [e for e in d.entries if e.code.startswith(prefix)] if prefix else list(d.entries)
    out = DictionaryOut(name=d.name, title_pl=d.title_pl, title_en=d.title_en, version=d.version, entries=entries)
    return Published(msgspec.json.encode(out))


@functools.cache
def _rules() -> Published:
    return Published(msgspec.json.encode(RulesOut(rules=list(catalogue()))))


@functools.cache
def _xsd() -> Published:
    return Published(schema_source(), media_type="application/xml")


class ReferenceController(Controller):
    path = "/v1"
    tags = ["reference data"]

    @get(
        "/dictionaries",
        sync_to_thread=False,
        summary="The dictionaries and their versions",
        responses=_spec(DictionaryIndex, "Every dictionary, with its version"),
    )
    def index(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return _cached(request, _index())

    @get(
        "/dictionaries/{name:str}",
        sync_to_thread=False,
        summary="One dictionary: ICD-10, letter codes, relationships, indications, cancellation reasons",
        description="`prefix` narrows ICD-10 (or any dictionary) to the codes starting with it, such as `J06`.",
        responses=_spec(DictionaryOut, "The dictionary's entries"),
    )
    def dictionary(self, request: Request[Any, Any, Any], name: str, prefix: str = "") -> Response[bytes]:
        if len(prefix) > MAX_PREFIX:
            raise BadRequest(f"prefix is at most {MAX_PREFIX} characters")
        body = _dictionary(name, prefix.upper())
        if body is None:
            raise NotFound(f"no dictionary {name!r}; see /v1/dictionaries")
        return _cached(request, body)

    @get(
        "/xsd/sickleave.xsd",
        sync_to_thread=False,
        media_type="application/xml",
        summary="The e-ZLA XML schema (SickLeave, Cancellation, Receipt; namespace urn:ezla:sick-leave:1)",
    )
    def xsd(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return _cached(request, _xsd())

    @get(
        "/rules",
        sync_to_thread=False,
        summary="Every error and warning code, in Polish and English",
        responses=_spec(RulesOut, "The catalogue of problem and warning codes"),
    )
    def rules(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return _cached(request, _rules())


@get("/problems/{code:str}", sync_to_thread=False, include_in_schema=False)
def problem_page(code: str) -> Template:
    entry = by_code().get(code)
    if entry is None:
        raise NotFound("no such problem code; see /v1/rules")
    return Template(template_name="problem.html", context={"entry": entry}, headers={"Cache-Control": _CACHE})


ROUTES: list[type[Controller] | HTTPRouteHandler] = [ReferenceController, problem_page]
