"""A customer's fields are checked in one pass (one answer lists every error), countries are assigned
ISO 3166-1 codes, values keep their JSON type, and a customer carries the integrator's metadata."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from customers.models import Customer
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db


def errors(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    return {e["field"]: e["code"] for e in response.json()["errors"]}


def test_one_answer_lists_every_error_of_a_customer(api: APIClient, customer_body: dict[str, Any]) -> None:
    # Before, this took three round trips: the e-mail first, then the codes, then the VAT number.
    body = {
        **customer_body,
        "external_id": "has/slash",
        "email": "not-an-email",
        "country": "ZZ",
        "currency": "EUX",
        "timezone": "Europe/Pariss",
        "language": "de",
        "billingday": 3,
    }
    assert errors(api.post("/api/v1/customers", body, format="json")) == {
        "external_id": "invalid_format",
        "email": "invalid",
        "country": "unknown_country",
        "currency": "unknown_currency",
        "timezone": "unknown_timezone",
        "language": "unsupported_language",
        "billingday": "unknown_field",
    }


def test_a_vat_typo_is_reported_with_the_other_field_errors(api: APIClient, customer_body: dict[str, Any]) -> None:
    # FR40303265045 is valid; one digit off fails its check digits
    body = {**customer_body, "email": "not-an-email", "tax_id": "FR40303265046"}
    assert errors(api.post("/api/v1/customers", body, format="json")) == {
        "email": "invalid",
        "tax_id": "invalid_tax_id",
    }


@pytest.mark.parametrize("code", ["ZZ", "EU", "XA", "XK", "UK", "zz"])
def test_unassigned_or_reserved_country_codes_are_refused(
    api: APIClient, customer_body: dict[str, Any], code: str
) -> None:
    response = api.post("/api/v1/customers", {**customer_body, "country": code}, format="json")
    assert errors(response) == {"country": "unknown_country"}
    assert response.json()["errors"][0]["message"] == "Unknown ISO 3166-1 alpha-2 country: %s." % code.upper()
    # and on PATCH
    api.post("/api/v1/customers", customer_body, format="json")
    assert errors(api.patch("/api/v1/customers/dupont", {"country": code}, format="json")) == {
        "country": "unknown_country"
    }


def test_a_lower_case_country_is_read_as_its_code(api: APIClient, customer_body: dict[str, Any]) -> None:
    response = api.post("/api/v1/customers", {**customer_body, "country": "de"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["country"] == "DE"


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"reseller": 0}, "reseller"), ({"billing_day": "1"}, "billing_day"), ({"name": ["x"]}, "name")],
)
def test_values_of_another_json_type_are_refused(
    api: APIClient, customer_body: dict[str, Any], changes: dict[str, Any], field: str
) -> None:
    # DRF would have read 0 as "0" and "1" as 1: a client's typing mistake went through
    response = api.post("/api/v1/customers", {**customer_body, **changes}, format="json")
    assert errors(response) == {field: "invalid_type"}


def test_metadata_is_stored_returned_and_merged_on_patch(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    # given
    created = api.post(
        "/api/v1/customers", {**customer_body, "metadata": {"erp_id": "C-0042", "segment": "fleet"}}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["metadata"] == {"erp_id": "C-0042", "segment": "fleet"}
    # when: one key changed, one removed (null), one added; the others are kept
    response = api.patch(
        "/api/v1/customers/dupont", {"metadata": {"erp_id": "C-0043", "segment": None, "rep": "Ana"}}, format="json"
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json()["metadata"] == {"erp_id": "C-0043", "rep": "Ana"}
    assert Customer.objects.get(tenant=tenant, external_id="dupont").metadata == {"erp_id": "C-0043", "rep": "Ana"}
    assert api.get("/api/v1/customers/dupont").json()["metadata"] == {"erp_id": "C-0043", "rep": "Ana"}
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.updated")
    assert entry.before == {"metadata": {"erp_id": "C-0042", "segment": "fleet"}}
    assert entry.after == {"metadata": {"erp_id": "C-0043", "rep": "Ana"}}


def test_a_customer_without_metadata_has_an_empty_object(api: APIClient, customer_body: dict[str, Any]) -> None:
    assert api.post("/api/v1/customers", customer_body, format="json").json()["metadata"] == {}


@pytest.mark.parametrize(
    ("metadata", "field", "code"),
    [
        ({"k%d" % i: "v" for i in range(51)}, "metadata", "too_many_keys"),  # 50 at most
        ({"k" * 41: "v"}, "metadata." + "k" * 41, "invalid_key"),  # keys of 40 characters at most
        ({"": "v"}, "metadata", "invalid_key"),
        ({"a[b]": "v"}, "metadata.a[b]", "invalid_key"),
        ({"erp_id": "v" * 501}, "metadata.erp_id", "too_long"),  # values of 500 at most
        ({"erp_id": 42}, "metadata.erp_id", "invalid_value"),  # values are strings
        ({"erp_id": None}, "metadata.erp_id", "invalid_value"),  # null removes a key on PATCH only
        (["erp_id"], "metadata", "invalid"),
    ],
)
def test_metadata_limits_are_clear_422s(
    api: APIClient, customer_body: dict[str, Any], metadata: Any, field: str, code: str
) -> None:
    response = api.post("/api/v1/customers", {**customer_body, "metadata": metadata}, format="json")
    assert {e["field"]: e["code"] for e in response.json()["errors"]} == {field: code}, response.content
    assert response.status_code == 422


def test_metadata_at_the_limits_is_taken(api: APIClient, customer_body: dict[str, Any]) -> None:
    metadata = {"k%02d" % i: "v" for i in range(49)} | {"k" * 40: "v" * 500}  # 50 keys, 40 and 500 characters
    response = api.post("/api/v1/customers", {**customer_body, "metadata": metadata}, format="json")
    assert response.status_code == 201, response.content
    assert len(response.json()["metadata"]) == 50


def test_a_patch_that_would_pass_50_keys_is_refused(api: APIClient, customer_body: dict[str, Any]) -> None:
    metadata = {"k%02d" % i: "v" for i in range(50)}
    assert api.post("/api/v1/customers", {**customer_body, "metadata": metadata}, format="json").status_code == 201
    response = api.patch("/api/v1/customers/dupont", {"metadata": {"one_more": "v"}}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "metadata", "code": "too_many_keys", "message": "At most 50 keys: this change would leave 51."}
    ]
    # removing one while adding one is fine: 50 - 1 + 1 = 50
    response = api.patch("/api/v1/customers/dupont", {"metadata": {"k00": None, "one_more": "v"}}, format="json")
    assert response.status_code == 200, response.content
    assert len(response.json()["metadata"]) == 50
