"""List filters with a fixed set of values (``?status=draft``): an enum in the OpenAPI schema, and
a 422 naming the parameter for a value outside it, rather than an empty list that looks like an
answer."""

from collections.abc import Mapping, Sequence

from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from billing_platform.validation import FieldErrors


def choice_parameter(name: str, values: Sequence[str], description: str = "") -> OpenApiParameter:
    """The OpenAPI query parameter of a choice filter."""
    return OpenApiParameter(name, str, enum=list(values), description=description)


def choice_filters(request: Request, filters: Mapping[str, Sequence[str]]) -> dict[str, str | None]:
    """The value of each choice filter of ``filters`` (name: allowed values), None when absent.
    Unknown values, the empty one included (the schema's enum has none), are refused together, one
    field error each (422, ``invalid_choice``)."""
    errors = FieldErrors()
    found: dict[str, str | None] = {}
    for name, values in filters.items():
        value = request.query_params.get(name)
        if value is not None and value not in values:
            errors.add(name, "invalid_choice", "Must be one of: %s." % ", ".join(values))
        found[name] = value
    errors.raise_if_any()
    return found
