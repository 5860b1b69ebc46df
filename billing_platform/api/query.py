"""Unknown query parameters are refused, as unknown body fields are: ``?stauts=draft`` is a 400 that
names ``stauts``, not a list that silently ignores the filter.

The parameters an operation takes are those its OpenAPI schema declares (``extend_schema``
``parameters``): the published schema is the one list, so the server cannot take a parameter the
schema does not tell clients about, nor the reverse. The schema is generated once per process, on
the first API request that carries a query string.
"""

import functools
import re
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from billing_platform.errors import PROBLEM_CONTENT_TYPE, Problem

# ``<str:external_id>`` -> ``{external_id}``: a Django route as the OpenAPI schema writes its path.
_CONVERTER = re.compile(r"<(?:[^>:]+:)?(\w+)>")


@functools.cache
def declared_query_parameters() -> dict[tuple[str, str], frozenset[str]]:
    """``(path, METHOD) -> names`` of the query parameters of every operation of the schema."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    declared: dict[tuple[str, str], frozenset[str]] = {}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict):
                names = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
                declared[(path, method.upper())] = frozenset(names)
    return declared


def unknown_query_parameters(request: HttpRequest) -> tuple[list[str], frozenset[str]] | None:
    """The request's query parameters its operation does not declare (sorted) and those it does;
    None when the route is not an operation of the schema (the schema itself, a 404, a 405)."""
    match = request.resolver_match
    if match is None or not request.GET:
        return None
    # drf-spectacular writes a primary key as {id} (SCHEMA_COERCE_PATH_PK)
    path = "/" + _CONVERTER.sub(r"{\1}", match.route).replace("{pk}", "{id}")
    allowed = declared_query_parameters().get((path, request.method or ""))
    if allowed is None:
        return None
    unknown = sorted(set(request.GET) - allowed)
    return (unknown, allowed) if unknown else None


def unknown_query_problem(unknown: list[str], allowed: frozenset[str]) -> HttpResponse:
    takes = ", ".join(sorted(allowed)) if allowed else "none"
    problem = Problem(
        400,
        "unknown_query_parameter",
        "Unknown query parameter",
        "Unknown query parameter%s: %s. This operation takes: %s."
        % ("s" if len(unknown) > 1 else "", ", ".join(unknown), takes),
        errors=[
            {"field": name, "code": "unknown_query_parameter", "message": "Unknown query parameter."}
            for name in unknown
        ],
    )
    return JsonResponse(problem.as_dict(), status=400, content_type=PROBLEM_CONTENT_TYPE)


class UnknownQueryParametersMiddleware:
    """Answers 400 ``unknown_query_parameter`` (problem+json) to an API request whose query string
    holds a parameter its operation does not declare."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Callable[..., Any], *args: Any) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        found = unknown_query_parameters(request)
        if found is None:
            return None
        return unknown_query_problem(*found)
