"""What the API answers to requests it cannot take, whatever the route: too large, nested too deep,
a tampered cursor, the same Idempotency-Key twice at once. Always a problem+json 4xx, never a 500,
and nothing stored."""

import base64
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from billing_platform.models import IdempotencyRecord
from customers.models import Customer
from customers.tests.factories import DUPONT
from tenancy.models import Tenant

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


def cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "path", ["/api/v1/customers", "/api/v1/plans", "/api/v1/invoices", "/api/v1/device_cloud_webhooks"]
)
@pytest.mark.parametrize("tampered", ["p=not-a-date", "r=1&p=2026-13-45", "o=5&p=0001-01-01"])
def test_a_tampered_cursor_is_a_422_problem_on_every_list(api: APIClient, path: str, tampered: str) -> None:
    # a cursor decodes to any position: one that is not a timestamp failed the page's query (500)
    response = api.get(path, {"cursor": cursor(tampered)})
    assert response.status_code == 422, response.content
    assert problem(response)["errors"] == [
        {"field": "cursor", "code": "invalid", "message": "The cursor is not valid; use the `next` value of a list."}
    ]


@pytest.mark.django_db(transaction=True)
def test_the_same_idempotency_key_twice_at_once_with_a_refused_body_is_never_a_500(
    tenant: Tenant, make_client: Callable[..., APIClient]
) -> None:
    # given: a body the API refuses (an unknown currency), sent twice at the same instant, in rounds
    body = {**DUPONT, "currency": "EUX"}
    statuses: list[int] = []
    errors: list[BaseException] = []
    for round_ in range(8):
        barrier = threading.Barrier(2)

        def send(key: str = "same-%d" % round_, barrier: threading.Barrier = barrier) -> None:
            client = make_client(tenant)
            client.raise_request_exception = False
            try:
                barrier.wait()
                response = client.post("/api/v1/customers", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
                statuses.append(response.status_code)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=send) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # then: each is refused for its body (or told the other is in progress), and no key is held
    assert errors == []
    assert len(statuses) == 16
    assert set(statuses) <= {409, 422}, statuses
    assert not IdempotencyRecord.objects.filter(tenant=tenant).exists()
    assert not Customer.objects.filter(tenant=tenant).exists()


@pytest.mark.parametrize(
    ("path", "query", "allowed"),
    [
        ("/api/v1/products", {"kind": "gadget"}, "hardware, service, usage, fee"),
        ("/api/v1/invoices", {"status": "paid-ish"}, "draft, finalized, paid, void"),
        ("/api/v1/subscriptions", {"status": "alive"}, "pending_activation, active, past_due, suspended"),
        ("/api/v1/device_cloud_webhooks", {"status": "done"}, "received, applied, ignored, rejected, failed"),
    ],
)
def test_a_filter_outside_its_values_is_a_422_not_an_empty_list(
    api: APIClient, path: str, query: dict[str, str], allowed: str
) -> None:
    # the schema lists the values as an enum; another value matched nothing and answered 200 []
    response = api.get(path, data=query)
    assert response.status_code == 422
    [error] = problem(response)["errors"]
    [name] = query
    assert (error["field"], error["code"]) == (name, "invalid_choice")
    assert error["message"].startswith("Must be one of: " + allowed)


def test_every_unknown_filter_value_is_reported_at_once_and_known_ones_filter(api: APIClient) -> None:
    response = api.get("/api/v1/invoices", data={"status": "x", "kind": "y"})
    assert [e["field"] for e in problem(response)["errors"]] == ["status", "kind"]
    # an empty value is no value of the enum: refused too
    empty = api.get("/api/v1/invoices", data={"status": "", "kind": "credit_note"})
    assert [(e["field"], e["code"]) for e in problem(empty)["errors"]] == [("status", "invalid_choice")]
    # a known one filters (no invoice yet: an empty page)
    assert api.get("/api/v1/invoices", data={"kind": "credit_note"}).json() == {
        "results": [],
        "next": None,
    }


@pytest.mark.parametrize("path", ["/api/v1/plans", "/api/v1/meters", "/api/v1/bill_runs", "/api/v1/tax_rates"])
def test_a_body_that_is_not_utf8_is_a_400_problem(api: APIClient, path: str) -> None:
    # bytes that are no UTF-8 text (found by schemathesis): this was a 500
    response = api.post(path, data=b"\x80{\xe3\xbc", content_type="application/json")
    assert response.status_code == 400
    assert problem(response)["code"] == "malformed_request"
