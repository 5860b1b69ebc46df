"""What the OpenAPI schema says of every operation, added once here rather than in each view."""

from typing import Any

# Refusals that come before any view reads the body: 400 (not JSON, or nested deeper than
# settings.TRIPOD["JSON_MAX_DEPTH"]) and 413 (larger than DATA_UPLOAD_MAX_MEMORY_SIZE).
BODY_REFUSALS = ("400", "413")


def _problem() -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}, "description": ""}


def declare_body_refusals(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: each operation that takes a body declares the problem
    responses of a body refused before its view runs, among its responses in status order."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            responses = operation["responses"]
            for status in BODY_REFUSALS:
                if status in responses:
                    continue
                later = [code for code in responses if str(code) > status]
                items = list(responses.items())
                at = items.index((later[0], responses[later[0]])) if later else len(items)
                items.insert(at, (status, _problem()))
                responses = dict(items)
            operation["responses"] = responses
    return result


def declare_rate_limits(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation may answer 429 (a rate limit per API
    key or per tenant, ``tenancy.throttling``), with ``Retry-After``."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "429" not in responses:
                later = [code for code in responses if str(code) > "429"]
                items = list(responses.items())
                at = items.index((later[0], responses[later[0]])) if later else len(items)
                items.insert(at, ("429", _problem()))
                responses = dict(items)
            responses["429"] = {**responses["429"], "headers": {"Retry-After": RETRY_AFTER}}
            operation["responses"] = responses
    return result


RETRY_AFTER = {
    "description": "Seconds until the window of the exceeded limit ends.",
    "schema": {"type": "integer", "minimum": 1},
}
