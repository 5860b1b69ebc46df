"""What the list pages of the back-office share: pages of 50 rows, and typed text made safe to query."""

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest

from billing_platform.validation import without_refused_characters

PAGE_SIZE = 50


def page_of(request: HttpRequest, rows: Any) -> Any:
    """The page of ``rows`` the request asks for (``?page=``); a page out of range gives the last."""
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def clean_text(value: str) -> str:
    """Typed text outside a form (a search, a reason) as Tripod takes it: without NUL, which
    PostgreSQL refuses, and with the other control characters made spaces, as no form would take them."""
    return without_refused_characters(value).strip()
