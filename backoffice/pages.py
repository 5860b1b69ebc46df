"""What the list pages of the back-office share: pages of 50 rows, and typed text made safe to query."""

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest

PAGE_SIZE = 50


def page_of(request: HttpRequest, rows: Any) -> Any:
    """The page of ``rows`` the request asks for (``?page=``); a page out of range gives the last."""
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def clean_text(value: str) -> str:
    return value.replace("\x00", "").strip()  # PostgreSQL refuses NUL characters
