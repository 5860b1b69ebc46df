"""What the OpenAPI schema says of every operation, added once here rather than in each view.

- ``AutoSchema`` (``DEFAULT_SCHEMA_CLASS``): a request body read by a ``StrictSerializer`` refuses
  unknown fields, so its schema says ``additionalProperties: false``; a POST decorated with
  ``idempotent`` declares its ``Idempotency-Key`` header.
- ``declare_problems`` (a postprocessing hook): every error leaves the API as RFC 9457
  ``application/problem+json`` (``billing_platform.errors``), so every 4xx response is declared with
  that content type and the ``Problem`` schema, and each operation lists the errors it can answer
  whatever its view does: 400 (malformed, an unknown query parameter), 401 and 403 (key, scope),
  404 (a path naming nothing), 409 (an ``Idempotency-Key`` reused), 413 and 415 (a body too large,
  of a type not read), 422 (a field refused) and 429 (rate limits).
"""

from http import HTTPStatus
from typing import Any

from drf_spectacular import openapi
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiParameter

from billing_platform.api.fields import CountryField, CurrencyField
from billing_platform.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from billing_platform.api.idempotency import KEY_PATTERN, accepts_idempotency_key
from billing_platform.api.serializers import StrictSerializer
from billing_platform.errors import PROBLEM_CONTENT_TYPE

CODE_FIELDS = (CountryField, CurrencyField)
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_COMPONENTS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details: every error of the API. Members other than these may be "
        "added (e.g. the stored `webhook` of a refused device-cloud webhook).",
        "properties": {
            "type": {"type": "string", "format": "uri", "example": "https://tripod.dev/problems/invalid_input"},
            "title": {"type": "string", "example": "Invalid input"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599, "example": 422},
            "detail": {"type": "string"},
            "code": {"type": "string", "description": "stable, machine-readable: the last part of `type`"},
            "errors": {
                "type": "array",
                "description": "one entry per refused field (validation errors only)",
                "items": {"$ref": "#/components/schemas/ProblemError"},
            },
        },
        "required": ["type", "title", "status", "detail", "code"],
    },
    "ProblemError": {
        "type": "object",
        "properties": {
            "field": {
                "type": "string",
                "description": "the field's path as the request wrote it (`components[0].charge.amount`), "
                "a query parameter's or a header's name; empty for the body as a whole",
            },
            "code": {"type": "string"},
            "message": {"type": "string"},
        },
        "required": ["field", "code", "message"],
    },
}

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
    OpenApiParameter.HEADER,
    description="A key of your own (e.g. a UUID), 1 to 255 visible ASCII characters: a replay with the same key "
    "and body returns the first response (header `Idempotent-Replayed: true`); the same key with another "
    "request is a 409.",
)


class AutoSchema(openapi.AutoSchema):
    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        result: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(force_instance(serializer), StrictSerializer):
            result["additionalProperties"] = False
        return result

    def _get_serializer_field_meta(self, field: Any, direction: Any) -> dict[str, Any]:
        meta: dict[str, Any] = super()._get_serializer_field_meta(field, direction)
        if isinstance(field, CODE_FIELDS):
            # The named enum (CountryCode, CurrencyCode) says it all: a length beside its $ref would
            # wrap it in allOf for nothing.
            meta.pop("minLength", None)
        return meta

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        handler = getattr(self.view, (self.method or "").lower(), None)
        if accepts_idempotency_key(handler):
            parameters.append(IDEMPOTENCY_PARAMETER)
        return parameters


def code_components() -> dict[str, Any]:
    """The codes the API takes (``CountryField``, ``CurrencyField``), as named schemas. A pattern,
    not an enum of every code: the server reads either case, and an enum of 249 countries and 300
    currencies would be a type of its own in every generated client."""
    return {
        "CountryCode": {
            "type": "string",
            "pattern": "^[A-Za-z]{2}$",
            "example": "FR",
            "description": "ISO 3166-1 alpha-2, an assigned code (read in either case): codes that name no "
            "country (ZZ, EU, XA, XK, UK) are refused with 422 `unknown_country`",
        },
        "CurrencyCode": {
            "type": "string",
            "pattern": "^[A-Za-z]{3}$",
            "example": "EUR",
            "description": "ISO 4217 alphabetic code (read in either case); an unknown one is refused with 422 "
            "`unknown_currency`",
        },
    }


# Headers an error may carry (never required: a 401 of the device-cloud webhook's signature has no
# WWW-Authenticate, a 429 without a known wait no Retry-After).
PROBLEM_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": '`Bearer realm="api"`: send `Authorization: Bearer <api key>`',
        }
    },
    429: {
        "Retry-After": {
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
            "description": "seconds to wait before retrying",
        }
    },
}


def _problem_response(status: int, description: str = "") -> dict[str, Any]:
    response: dict[str, Any] = {
        "content": {PROBLEM_CONTENT_TYPE: {"schema": dict(PROBLEM_REF)}},
        "description": description or HTTPStatus(status).phrase,
    }
    if status in PROBLEM_HEADERS:
        response["headers"] = PROBLEM_HEADERS[status]
    return response


REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "present on a replay: the first response to this Idempotency-Key, returned again",
    }
}


def _takes_idempotency_key(operation: dict[str, Any]) -> bool:
    return any(p.get("in") == "header" and p.get("name") == IDEMPOTENCY_HEADER for p in operation.get("parameters", []))


def _statuses_of(operation: dict[str, Any]) -> set[int]:
    parameters = operation.get("parameters", [])
    located = {p.get("in") for p in parameters}
    statuses = {400, 429}
    security = operation.get("security") or []
    if any(requirement for requirement in security):
        statuses |= {401, 403}
    if "path" in located:
        statuses.add(404)
    if _takes_idempotency_key(operation):
        statuses |= {409, 422}  # a key already used with another body; a key that is not 1-255 visible ASCII
    if "requestBody" in operation:
        statuses |= {413, 415, 422}
    if "query" in located:
        statuses.add(422)
    return statuses


def declare_problems(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the ``Problem`` schema, and every 4xx of every operation
    as ``application/problem+json``, in status order."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(PROBLEM_COMPONENTS)
    schemas.update(code_components())
    result["components"]["schemas"] = dict(sorted(schemas.items()))
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = dict(operation["responses"])
            for status in _statuses_of(operation):
                responses.setdefault(str(status), {})
            for code, response in responses.items():
                if code.isdigit() and 400 <= int(code) < 500:
                    responses[code] = {
                        **_problem_response(int(code), response.get("description", "")),
                        **{k: v for k, v in response.items() if k not in ("content", "description")},
                    }
            if "409" in responses and _takes_idempotency_key(operation):
                for code, response in responses.items():
                    if code.startswith("2"):
                        response.setdefault("headers", {}).update(REPLAYED_HEADER)
            operation["responses"] = dict(sorted(responses.items(), key=lambda item: item[0]))
    return result
