"""One structured log line per request, with a request id that is also returned as a header."""

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from billing_platform.rls import request_scope

logger = logging.getLogger("tripod.request")


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        tenant = getattr(request, "tenant", None)
        logger.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "tenant_id": str(tenant.pk) if tenant is not None else None,
            },
        )
        response["X-Request-Id"] = request_id
        return response


class RejectNulMiddleware:
    """PostgreSQL cannot store or compare text containing NUL (U+0000). A NUL in the path, the query
    string or a JSON body is refused here with a 400 instead of failing deep in a query."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        has_nul = "\x00" in request.path or "%00" in query or "\x00" in query
        if not has_nul and "json" in (request.content_type or "") and request.method in ("POST", "PUT", "PATCH"):
            body = request.body
            has_nul = b"\\u0000" in body or b"\x00" in body
        if not has_nul:
            return self.get_response(request)
        from billing_platform.errors import problem_response

        if request.path.startswith("/api/"):
            return problem_response(400, "nul_character", "Malformed request", "NUL characters are not allowed.")
        return HttpResponseBadRequest("NUL characters are not allowed.")


class TenantScopeMiddleware:
    """The request runs as the application's database role with no tenant set, until the code that
    learns the tenant sets it (``billing_platform.rls.tenant_activate``: the API key, the webhook's
    tenant slug, the back-office membership); at the end the connection is put back as it was. So a
    request never sees what the previous request on the same connection had set. The switch is made
    just before the request's first query (``rls.request_scope``): a request that reads nothing
    costs nothing, and a database that does not answer fails that first query as it would anyway.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_scope():
            return self.get_response(request)


class ApiTransactionMiddleware:
    """An API request that may write (any method but GET, HEAD and OPTIONS) is one transaction, and
    an error answer rolls it back: a request answered 4xx or 5xx leaves nothing behind, even when
    the error comes after a write (a response that cannot be rendered, a check made late). The
    last middleware, so it wraps the view alone.

    A view that keeps what it stored while answering an error says so with a class attribute
    ``keeps_writes_on_error = True`` (the device-cloud webhook keeps a refused webhook); its
    services' own transactions still apply.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("GET", "HEAD", "OPTIONS") or not request.path.startswith("/api/"):
            return self.get_response(request)
        with transaction.atomic():
            response = self.get_response(request)
            if response.status_code >= 400 and not getattr(request, "keeps_writes_on_error", False):
                transaction.set_rollback(True)
        return response

    def process_view(self, request: HttpRequest, view_func: Callable[..., Any], *args: Any) -> None:
        view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        request.keeps_writes_on_error = bool(getattr(view_class, "keeps_writes_on_error", False))  # type: ignore[attr-defined]


class RateLimitHeadersMiddleware:
    """``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds) on every API
    answer that a rate limit counted, for the limit closest to being reached
    (``billing_platform.ratelimit.rate_limit`` keeps it on the request)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        count = getattr(request, "rate_limit", None)
        if count is not None:
            response["RateLimit-Limit"] = str(count.limit.rate.requests)
            response["RateLimit-Remaining"] = str(count.remaining)
            response["RateLimit-Reset"] = str(count.reset)
        return response
