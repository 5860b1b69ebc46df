"""Domain errors and their one mapping to RFC 9457 ``application/problem+json``.

Services raise ``DomainError`` subclasses (never ``Http404`` or DRF exceptions); the API layer's
exception handler below turns them, and DRF's own errors, into problem documents with a stable
``type``/``code`` and field-level ``errors``.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://tripod.dev/problems/"


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str


class DomainError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: Sequence[FieldError] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.errors = list(errors)
        self.extra = dict(extra or {})


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"
    title = "Forbidden"


class InvalidInput(DomainError):
    status = 422
    code = "invalid_input"
    title = "Invalid input"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class GatewayError(DomainError):
    status = 502
    code = "gateway_error"
    title = "Payment gateway error"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


def invalid(field_name: str, code: str, message: str) -> InvalidInput:
    """Shorthand for a single-field 422: ``raise invalid("currency", "unknown_currency", "...")``."""
    return InvalidInput(message, errors=[FieldError(field_name, code, message)])


@dataclass
class Problem:
    status: int
    code: str
    title: str
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def _flatten_drf_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested ``{"field": [ErrorDetail]}`` -> ``[{"field", "code", "message"}]`` (dotted paths)."""
    out: list[dict[str, str]] = []
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            if isinstance(key, int):  # a list serializer's errors are keyed by item index
                name = f"{prefix}[{key}]"
            else:
                name = prefix if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else str(key))
            out.extend(_flatten_drf_errors(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, Mapping | list) for item in detail):
            for item in detail:
                out.append({"field": prefix, "code": str(getattr(item, "code", "invalid")), "message": str(item)})
        else:
            for index, item in enumerate(detail):
                out.extend(_flatten_drf_errors(item, f"{prefix}[{index}]"))
    else:
        out.append({"field": prefix, "code": str(getattr(detail, "code", "invalid")), "message": str(detail)})
    return out


def problem_for(exc: Exception) -> Problem | None:
    if isinstance(exc, DomainError):
        return Problem(
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            errors=[{"field": e.field, "code": e.code, "message": e.message} for e in exc.errors],
            extra=exc.extra,
        )
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = _flatten_drf_errors(exc.detail)
        detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors[:5])
        return Problem(422, "invalid_input", "Invalid input", detail or "Invalid input.", errors)
    if isinstance(exc, drf_exceptions.ParseError):
        return Problem(400, "malformed_request", "Malformed request", str(exc.detail))
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return Problem(415, "unsupported_media_type", "Unsupported media type", str(exc.detail))
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return Problem(401, "unauthenticated", "Unauthenticated", str(exc.detail))
    if isinstance(exc, drf_exceptions.PermissionDenied | DjangoPermissionDenied):
        detail = str(getattr(exc, "detail", "")) or "You do not have permission to perform this action."
        return Problem(403, "permission_denied", "Forbidden", detail)
    if isinstance(exc, drf_exceptions.NotFound | Http404):
        return Problem(404, "not_found", "Not found", "No such resource.")
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return Problem(405, "method_not_allowed", "Method not allowed", str(exc.detail))
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return Problem(406, "not_acceptable", "Not acceptable", str(exc.detail))
    if isinstance(exc, drf_exceptions.Throttled):
        return Problem(429, "rate_limited", "Too many requests", str(exc.detail))
    if isinstance(exc, drf_exceptions.APIException):
        return Problem(exc.status_code, "error", "Error", str(exc.detail))
    return None


def problem_exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """DRF ``EXCEPTION_HANDLER``: every error leaves the API as problem+json."""
    problem = problem_for(exc)
    if problem is None:
        return None  # a bug: Django's 500 handler logs it and answers problem+json too
    headers: dict[str, str] = {}
    wait = getattr(exc, "wait", None)
    if isinstance(exc, drf_exceptions.Throttled) and wait is not None:
        headers["Retry-After"] = str(int(wait) + 1)
    if isinstance(exc, RateLimited) and "retry_after" in exc.extra:
        headers["Retry-After"] = str(exc.extra["retry_after"])
    if problem.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return Response(problem.as_dict(), status=problem.status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_response(status: int, code: str, title: str, detail: str) -> JsonResponse:
    body = Problem(status, code, title, detail).as_dict()
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def _wants_problem(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler404(request: HttpRequest, exception: Exception | None = None) -> Any:
    if _wants_problem(request):
        return problem_response(404, "not_found", "Not found", "No such resource.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Http404())


def handler400(request: HttpRequest, exception: Exception | None = None) -> Any:
    """Django's answer to a request it refuses before any view runs (a body over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``, too many fields): problem+json on the API, 413 for a body too large."""
    if _wants_problem(request):
        if isinstance(exception, RequestDataTooBig):
            return problem_response(
                413,
                "request_too_large",
                "Request too large",
                "The body is larger than %d bytes; send less per request (e.g. smaller batches)."
                % settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
            )
        return problem_response(400, "malformed_request", "Malformed request", "The request could not be read.")
    from django.views.defaults import bad_request

    return bad_request(request, exception or Exception())


def handler500(request: HttpRequest) -> Any:
    if _wants_problem(request):
        return problem_response(500, "internal_error", "Internal error", "An unexpected error occurred.")
    from django.views.defaults import server_error

    return server_error(request)
