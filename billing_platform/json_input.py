"""JSON sent to Tripod, read in one way: the API's parser, the device-cloud webhooks, the usage events
and the back-office's JSON fields all go through ``json_load``, so that one nesting limit holds
everywhere.

Nothing Tripod stores is nested more than a few levels (a matrix charge is the deepest, at about
six), so ``settings.TRIPOD["JSON_MAX_DEPTH"]`` levels leave room to spare. Deeper JSON is refused
before anything walks it: recursive code (Python's ``json``, ``orjson.dumps`` past 254 levels,
DRF's renderers, PostgreSQL's jsonb) fails on it deep enough, and a body that cannot be stored
whole is better refused whole.
"""

import json
from typing import Any

from django.conf import settings

from billing_platform.errors import DomainError


class JsonTooDeep(DomainError):
    status = 400
    code = "json_too_deep"
    title = "Malformed request"


def max_json_depth() -> int:
    return int(settings.TRIPOD["JSON_MAX_DEPTH"])


def too_deep_message(limit: int | None = None) -> str:
    return "JSON nested deeper than %d levels is not accepted." % (limit or max_json_depth())


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` has containers nested deeper than ``limit`` levels: ``{"a": 1}`` is one
    level, ``{"a": [1]}`` two. Walked without recursion, and stopped at the first level too deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_load(text: str | bytes, *, max_depth: int | None = None, **kwargs: Any) -> Any:
    """``json.loads`` that refuses JSON nested deeper than ``max_depth`` levels (by default the
    setting) with ``JsonTooDeep``; bad JSON raises ``ValueError`` as ``json.loads`` does."""
    limit = max_json_depth() if max_depth is None else max_depth
    try:
        value = json.loads(text, **kwargs)
    except RecursionError:  # deeper than the decoder itself can go
        raise JsonTooDeep(too_deep_message(limit)) from None
    if json_depth_exceeds(value, limit):
        raise JsonTooDeep(too_deep_message(limit))
    return value
