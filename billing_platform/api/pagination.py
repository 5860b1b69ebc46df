"""Cursor pagination: ``{"results": [...], "next": "<cursor>" | null}``; ``?cursor=``, ``?limit=`` (<= 500)."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.core.exceptions import FieldDoesNotExist, ValidationError
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import pagination, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing_platform.errors import invalid
from billing_platform.validation import date_in_range

MAX_LIMIT = 500
DEFAULT_LIMIT = 50

# The query parameters of every list operation, with the bounds the paginator enforces.
LIST_PARAMETERS = [
    OpenApiParameter("cursor", str, description="The `next` value of the previous page."),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        description=f"Items per page, 1 to {MAX_LIMIT}.",
    ),
]


class CursorPagination(pagination.CursorPagination):
    page_size = DEFAULT_LIMIT
    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT
    ordering = ("-created_at", "-id")

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get("limit")
        if raw is None:
            return self.page_size
        try:
            value = int(raw)
        except ValueError:
            raise invalid("limit", "invalid", "limit must be an integer between 1 and 500.") from None
        if not 1 <= value <= MAX_LIMIT:
            raise invalid("limit", "out_of_range", "limit must be an integer between 1 and 500.")
        return value

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        self.model = queryset.model  # the cursor's position is read as the ordering field of this model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Any:
        try:
            cursor = super().decode_cursor(request)
        except Exception:  # DRF raises NotFound for a garbled cursor; it is bad input, not a missing page
            raise _invalid_cursor() from None
        if cursor is not None and cursor.position is not None:
            self._check_position(str(cursor.position))
        return cursor

    def _check_position(self, position: str) -> None:
        """A cursor decodes to any text: its position must read as a value of the ordering field
        (a timestamp), or the page's query fails instead of answering."""
        try:
            field = self.model._meta.get_field(self.ordering[0].lstrip("-"))
        except (AttributeError, FieldDoesNotExist):
            return
        try:
            value = field.to_python(position)
        except (ValidationError, ValueError, TypeError, OverflowError):
            raise _invalid_cursor() from None
        if value is None or (hasattr(value, "year") and not date_in_range(value)):
            raise _invalid_cursor()

    def next_cursor(self) -> str | None:
        link = self.get_next_link()
        if link is None:
            return None
        return parse_qs(urlsplit(link).query).get(self.cursor_query_param, [None])[0]

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "next": self.next_cursor()})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {
                    "type": "string",
                    "nullable": True,
                    "description": "Pass as ?cursor= to get the next page; null on the last page.",
                },
            },
        }


def _invalid_cursor() -> Exception:
    return invalid("cursor", "invalid", "The cursor is not valid; use the `next` value of a list.")


def paginated(serializer_class: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The OpenAPI shape of a list response: ``{"results": [...], "next": cursor | null}``."""
    return inline_serializer(
        name=name,
        fields={
            "results": serializer_class(many=True),
            "next": serializers.CharField(allow_null=True, help_text="Pass as ?cursor= for the next page."),
        },
    )
