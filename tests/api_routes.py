"""Every API route of the URLconf, found by walking it (so a new endpoint is covered automatically)."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

API_PREFIX = "api/v1/"
PUBLIC_ROUTE_NAMES = {"schema", "api-docs"}  # the OpenAPI document and its viewer are public
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class ApiRoute:
    route: str  # e.g. "api/v1/customers/<str:external_id>"
    name: str
    view_class: Any
    params: tuple[str, ...]

    @property
    def methods(self) -> list[str]:
        return [m for m in HTTP_METHODS if hasattr(self.view_class, m)]

    def path(self, **values: str) -> str:
        import re

        return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], self.route)


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def api_routes() -> list[ApiRoute]:
    routes = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith(API_PREFIX) or pattern.name in PUBLIC_ROUTE_NAMES:
            continue
        view_class = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
        assert view_class is not None, f"{route} is not a class-based API view"
        routes.append(ApiRoute(route, pattern.name or route, view_class, tuple(pattern.pattern.converters)))
    return routes
