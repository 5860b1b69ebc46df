"""Cursor pagination: ``{"results": [...], "next": "<cursor>" | null}``; ``?cursor=``, ``?limit=`` (<= 500)."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

from drf_spectacular.utils import inline_serializer
from rest_framework import pagination, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing_platform.errors import invalid

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


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

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except Exception:  # DRF raises NotFound for a garbled cursor; it is bad input, not a missing page
            raise invalid("cursor", "invalid", "The cursor is not valid; use the `next` value of a list.") from None

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


def paginated(serializer_class: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The OpenAPI shape of a list response: ``{"results": [...], "next": cursor | null}``."""
    return inline_serializer(
        name=name,
        fields={
            "results": serializer_class(many=True),
            "next": serializers.CharField(allow_null=True, help_text="Pass as ?cursor= for the next page."),
        },
    )
