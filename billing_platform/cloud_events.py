"""CloudEvents in HTTP binary content mode, as the CloudEvents SDKs send them by default: the event's
attributes travel as ``ce-*`` headers (``ce-id``, ``ce-type``, ``ce-source``, ``ce-specversion``,
``ce-time``, ``ce-subject``, extensions), the body is the event's data and ``Content-Type`` its
``datacontenttype``. Read here once for the device-cloud webhook and the usage events.

The headers are checked with the CloudEvents SDK (``cloudevents.core.bindings.http``): version 1.0,
the required attributes present, extension names and the time well formed. ``id`` is required of
the sender (the SDK would invent one, and an id is a replay key); ``time`` is kept as sent, so that
each endpoint reads it with its own rules.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from cloudevents.core.bindings.http import HTTPMessage, from_binary_event
from cloudevents.core.exceptions import BaseCloudEventException, CloudEventValidationError

from billing_platform.errors import FieldError, InvalidInput
from billing_platform.json_input import json_load

CE_PREFIX = "ce-"
SPECVERSION = "1.0"
REQUIRED_ATTRIBUTES = ("id", "source", "type", "specversion")
# The headers of binary mode that the OpenAPI schema declares, with what each carries.
BINARY_HEADERS = {
    "ce-specversion": "`1.0`: its presence selects binary mode",
    "ce-id": "the event's id",
    "ce-type": "the event's type",
    "ce-source": "a URI naming the sender",
    "ce-time": "when it happened, RFC 3339 with an offset",
    "ce-subject": "what it is about",
}


@dataclass(frozen=True)
class BinaryCloudEvent:
    attributes: dict[str, str]  # percent-decoded header values by attribute name ("id", "time"...)
    data: Any  # the JSON body, None when empty


def is_binary_mode(headers: Mapping[str, str]) -> bool:
    """A request carrying any ``ce-*`` header is a CloudEvent in binary mode (as the SDK reads it):
    a stray ``ce-time`` is then checked and refused, never silently ignored."""
    return any(name.lower().startswith(CE_PREFIX) for name in headers)


# RFC 3339 ``date-time``, as the OpenAPI schema's ``format: date-time`` says (Python's own parser
# takes more: a date alone, no offset).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")


def _time_error(value: str) -> FieldError | None:
    if _RFC3339.match(value):
        try:
            datetime.fromisoformat(value.upper())
        except ValueError:
            pass
        else:
            return None
    return FieldError(
        "ce-time", "invalid", "ce-time is an RFC 3339 instant with its offset, e.g. 2026-03-16T10:00:00Z."
    )


def cloud_event_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``ce-*`` headers of a request, lower-cased: what a stored binary-mode event keeps."""
    return {name.lower(): value for name, value in headers.items() if name.lower().startswith(CE_PREFIX)}


def binary_event_read(headers: Mapping[str, str], body: bytes) -> BinaryCloudEvent:
    """The attributes and data of a binary-mode CloudEvent, or ``InvalidInput`` naming every header at
    fault (``ce-id`` missing, ``ce-specversion`` not 1.0...) and a body that is not JSON."""
    ce_headers = cloud_event_headers(headers)
    errors = [
        FieldError(CE_PREFIX + name, "required", "Binary mode requires the %s%s header." % (CE_PREFIX, name))
        for name in REQUIRED_ATTRIBUTES
        if not ce_headers.get(CE_PREFIX + name, "").strip()
    ]
    time = ce_headers.get("ce-time")
    time_error = _time_error(unquote(time)) if time is not None else None
    if time_error is not None:
        errors.append(time_error)
    if not errors:
        try:
            # Attributes only: the body is read below with the API's JSON rules (nesting limit).
            from_binary_event(HTTPMessage(headers=ce_headers, body=b""))
        except CloudEventValidationError as exc:
            for name, problems in sorted(exc.errors.items()):
                message = "; ".join(str(problem) for problem in problems)
                errors.append(FieldError(CE_PREFIX + name, "invalid", message))
        except (BaseCloudEventException, ValueError, OverflowError) as exc:  # e.g. a ce-time that is no time
            errors.append(FieldError("ce-time", "invalid", "Not a CloudEvents attribute value: %s." % exc))
    data: Any = None
    if body.strip():
        try:
            data = json_load(body)
        except ValueError:
            errors.append(FieldError("body", "invalid_json", "The body (the event's data) is not JSON."))
    if errors:
        raise InvalidInput("; ".join("%s: %s" % (e.field, e.message) for e in errors), errors=errors)
    attributes = {name[len(CE_PREFIX) :]: unquote(value) for name, value in ce_headers.items()}
    return BinaryCloudEvent(attributes=attributes, data=data)
