from typing import Any

import pytest
from rest_framework.test import APIClient

from customers.models import Customer
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db


def test_create_customer_returns_it_and_records_the_audit_entry(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    response = api.post("/api/v1/customers", customer_body, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in customer_body} == customer_body
    assert body["tax_id"] == ""
    assert (body["partner"], body["reseller"]) == (None, "")
    customer = Customer.objects.get(tenant=tenant, external_id="dupont")
    assert customer.billing_day == 1
    assert customer.timezone == "Europe/Paris"
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.created")
    assert entry.actor_type == "api_key"
    assert entry.object_id == "dupont"
    assert entry.before is None
    assert entry.after is not None
    assert entry.after["currency"] == "EUR"


def test_currency_and_timezone_default_to_the_tenants(api: APIClient, tenant: Tenant) -> None:
    response = api.post(
        "/api/v1/customers",
        {"external_id": "c1", "name": "C1", "email": "c1@x.test", "country": "DE"},
        format="json",
    )
    assert response.status_code == 201
    assert (response.json()["currency"], response.json()["timezone"], response.json()["language"]) == (
        "EUR",
        "Europe/Paris",
        "en",
    )
    assert response.json()["billing_day"] is None


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"currency": "EUX"}, "currency", "unknown_currency"),
        ({"timezone": "Europe/Pariss"}, "timezone", "unknown_timezone"),
        ({"country": "XX"}, "country", "unknown_country"),
        ({"language": "de"}, "language", "unsupported_language"),
        ({"billing_day": 32}, "billing_day", "max_value"),
        ({"billing_day": 0}, "billing_day", "min_value"),
        ({"email": "not-an-email"}, "email", "invalid"),
        ({"external_id": "has/slash"}, "external_id", "invalid_format"),
        ({"tax_id": "FR00000000000"}, "tax_id", "invalid_tax_id"),
        ({"billingday": 3}, "billingday", "unknown_field"),
    ],
)
def test_bad_customer_fields_get_422_naming_the_field(
    api: APIClient,
    tenant: Tenant,
    customer_body: dict[str, Any],
    changes: dict[str, Any],
    field: str,
    code: str,
) -> None:
    response = api.post("/api/v1/customers", {**customer_body, **changes}, format="json")
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    assert body["type"].endswith("/invalid_input")
    assert {"field": field, "code": code} in [{"field": e["field"], "code": e["code"]} for e in body["errors"]]
    assert not Customer.objects.filter(tenant=tenant).exists()


def test_all_field_errors_come_back_at_once(api: APIClient, customer_body: dict[str, Any]) -> None:
    response = api.post(
        "/api/v1/customers", {**customer_body, "currency": "EUX", "timezone": "Mars/Olympus"}, format="json"
    )
    assert response.status_code == 422
    assert sorted(e["field"] for e in response.json()["errors"]) == ["currency", "timezone"]


def test_valid_eu_vat_number_is_accepted(api: APIClient, customer_body: dict[str, Any]) -> None:
    response = api.post("/api/v1/customers", {**customer_body, "tax_id": "FR 40 303265045"}, format="json")
    assert response.status_code == 201
    assert response.json()["tax_id"] == "FR40303265045"


def test_duplicate_external_id_is_a_409_and_keeps_the_first(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    assert api.post("/api/v1/customers", customer_body, format="json").status_code == 201
    response = api.post("/api/v1/customers", {**customer_body, "name": "Impostor"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "customer_external_id_taken"
    assert Customer.objects.get(tenant=tenant, external_id="dupont").name == "Transports Dupont"


def test_the_same_external_id_may_exist_in_two_tenants(
    api: APIClient, make_client: Any, other_tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    assert api.post("/api/v1/customers", customer_body, format="json").status_code == 201
    assert make_client(other_tenant).post("/api/v1/customers", customer_body, format="json").status_code == 201


def test_patch_changes_fields_and_audits_before_and_after(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    api.post("/api/v1/customers", customer_body, format="json")
    response = api.patch("/api/v1/customers/dupont", {"billing_day": 31, "language": "en"}, format="json")
    assert response.status_code == 200
    assert (response.json()["billing_day"], response.json()["language"]) == (31, "en")
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.updated")
    assert entry.before == {"billing_day": 1, "language": "fr"}
    assert entry.after == {"billing_day": 31, "language": "en"}


def test_patch_refuses_external_id_and_bad_values(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    api.post("/api/v1/customers", customer_body, format="json")
    response = api.patch("/api/v1/customers/dupont", {"external_id": "other"}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "external_id"
    response = api.patch("/api/v1/customers/dupont", {"timezone": "Nowhere/Land"}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "timezone", "code": "unknown_timezone", "message": "Unknown IANA time zone: Nowhere/Land."}
    ]
    assert Customer.objects.get(tenant=tenant, external_id="dupont").timezone == "Europe/Paris"


def test_get_unknown_customer_is_404_problem(api: APIClient) -> None:
    response = api.get("/api/v1/customers/nobody")
    assert response.status_code == 404
    assert response.json() == {
        "type": "https://tripod.dev/problems/customer_not_found",
        "title": "Not found",
        "status": 404,
        "detail": "No customer with external_id nobody.",
        "code": "customer_not_found",
    }


def test_list_is_cursor_paginated_newest_first(api: APIClient, customer_body: dict[str, Any]) -> None:
    for i in range(5):
        api.post("/api/v1/customers", {**customer_body, "external_id": f"c{i}"}, format="json")
    first = api.get("/api/v1/customers?limit=2").json()
    assert [c["external_id"] for c in first["results"]] == ["c4", "c3"]
    second = api.get(f"/api/v1/customers?limit=2&cursor={first['next']}").json()
    assert [c["external_id"] for c in second["results"]] == ["c2", "c1"]
    third = api.get(f"/api/v1/customers?limit=2&cursor={second['next']}").json()
    assert [c["external_id"] for c in third["results"]] == ["c0"]
    assert third["next"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=ten", "cursor=not-a-cursor"])
def test_bad_pagination_parameters_get_422(api: APIClient, query: str) -> None:
    response = api.get(f"/api/v1/customers?{query}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == query.split("=")[0]


def test_list_filters(api: APIClient, customer_body: dict[str, Any]) -> None:
    api.post("/api/v1/customers", customer_body, format="json")
    api.post(
        "/api/v1/customers",
        {
            **customer_body,
            "external_id": "pacific",
            "name": "Pacific Haulage",
            "country": "US",
            "currency": "USD",
            "timezone": "America/Los_Angeles",
            "language": "en",
        },
        format="json",
    )
    assert [c["external_id"] for c in api.get("/api/v1/customers?currency=USD").json()["results"]] == ["pacific"]
    assert [c["external_id"] for c in api.get("/api/v1/customers?country=fr").json()["results"]] == ["dupont"]
    assert [c["external_id"] for c in api.get("/api/v1/customers?q=haul").json()["results"]] == ["pacific"]


def test_idempotency_key_replays_the_first_response(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    first = api.post("/api/v1/customers", customer_body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    replay = api.post("/api/v1/customers", customer_body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == replay.status_code == 201
    assert replay.content == first.content  # byte for byte, keys in the same order
    assert replay["Idempotent-Replayed"] == "true"
    assert Customer.objects.filter(tenant=tenant).count() == 1
    assert AuditLogEntry.objects.filter(tenant=tenant, action="customer.created").count() == 1


def test_idempotency_key_with_another_body_is_409(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    api.post("/api/v1/customers", customer_body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = api.post(
        "/api/v1/customers",
        {**customer_body, "external_id": "other"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert list(Customer.objects.filter(tenant=tenant).values_list("external_id", flat=True)) == ["dupont"]


def test_a_failed_request_does_not_burn_its_idempotency_key(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    bad = api.post("/api/v1/customers", {**customer_body, "currency": "EUX"}, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert bad.status_code == 422
    # the client fixes the body and retries with the same key: it is a new request, not a replay
    fixed = api.post("/api/v1/customers", customer_body, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert fixed.status_code == 201


def test_idempotency_keys_are_per_tenant(
    api: APIClient, make_client: Any, other_tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    assert api.post("/api/v1/customers", customer_body, format="json", HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    other = make_client(other_tenant).post(
        "/api/v1/customers", customer_body, format="json", HTTP_IDEMPOTENCY_KEY="same"
    )
    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other
