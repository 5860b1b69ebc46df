"""What the API answers to requests it cannot take, whatever the route: too large, nested too deep.
Always a problem+json 4xx, never a 500, and nothing stored."""

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def problem(response: Any) -> dict[str, Any]:
    assert response["Content-Type"] == "application/problem+json", response.content[:300]
    return dict(response.json())


@pytest.mark.parametrize("path", ["/api/v1/customers", "/api/v1/events"])
def test_a_body_over_the_size_limit_is_a_413_problem(api: APIClient, path: str) -> None:
    # 3 MB, over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB): this was Django's HTML 400 page
    body = json.dumps({"name": "x" * 3_000_000})
    response = api.post(path, data=body, content_type="application/json")
    assert response.status_code == 413
    assert problem(response)["code"] == "request_too_large"


@pytest.mark.parametrize("path", ["/api/v1/customers", "/api/v1/plans", "/api/v1/price_quotes"])
def test_a_body_nested_too_deep_is_a_400_problem(api: APIClient, path: str) -> None:
    # 1,000 levels went past the JSON decoder's recursion limit: a 500
    body = '{"name": %s}' % ("[" * 1000 + "]" * 1000)
    response = api.post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert problem(response) == {
        "type": "https://tripod.dev/problems/json_too_deep",
        "title": "Malformed request",
        "status": 400,
        "detail": "JSON nested deeper than 32 levels is not accepted.",
        "code": "json_too_deep",
    }


def test_32_levels_are_read_and_33_are_not(api: APIClient) -> None:
    def nested(levels: int) -> Any:
        value: Any = "x"
        for _ in range(levels):  # the body itself is the first level
            value = {"n": value}
        return value

    # a body of 32 levels is read (and refused for what it holds), one level more is not
    assert api.post("/api/v1/customers", nested(32), format="json").status_code == 422
    assert api.post("/api/v1/customers", nested(33), format="json").status_code == 400
