"""Customers' ``partner`` in the API (a partner's code, or null), and the deprecated ``reseller``
it replaces: answered as the partner's code (or ""), and read as a partner's code, else its name in
any case, else a new partner of that name."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from customers.models import Customer, Partner
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

BODY: dict[str, Any] = {
    "external_id": "dupont",
    "name": "Transports Dupont",
    "email": "compta@dupont.test",
    "country": "FR",
}


def _partner(tenant: Tenant, code: str, name: str) -> Partner:
    return Partner.objects.create(tenant=tenant, code=code, name=name, currency="EUR")


def _create(api: APIClient, **body: Any) -> dict[str, Any]:
    response = api.post("/api/v1/customers", {**BODY, **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_customer_is_created_and_moved_with_a_partners_code(api: APIClient, tenant: Tenant) -> None:
    _partner(tenant, "alpnet", "AlpNet")
    _partner(tenant, "geosat", "Geo Sat")
    body = _create(api, partner="alpnet")
    assert (body["partner"], body["reseller"]) == ("alpnet", "alpnet")
    assert api.get("/api/v1/customers/dupont").json()["partner"] == "alpnet"
    assert [c["partner"] for c in api.get("/api/v1/customers").json()["results"]] == ["alpnet"]
    moved = api.patch("/api/v1/customers/dupont", {"partner": "geosat"}, format="json").json()
    assert (moved["partner"], moved["reseller"]) == ("geosat", "geosat")
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.updated")
    assert (entry.before, entry.after) == ({"partner": "alpnet"}, {"partner": "geosat"})
    # null: a direct customer again
    direct = api.patch("/api/v1/customers/dupont", {"partner": None}, format="json").json()
    assert (direct["partner"], direct["reseller"]) == (None, "")


def test_an_unknown_or_another_tenants_partner_is_refused(api: APIClient, tenant: Tenant, other_tenant: Tenant) -> None:
    _partner(other_tenant, "alpnet", "AlpNet")
    response = api.post("/api/v1/customers", {**BODY, "partner": "alpnet"}, format="json")
    assert response.status_code == 422
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("partner", "unknown_partner")]
    assert not Customer.objects.filter(tenant=tenant).exists()


def test_a_reseller_is_matched_by_code_then_by_name(api: APIClient, tenant: Tenant) -> None:
    alpnet = _partner(tenant, "alpnet", "AlpNet")
    geosat = _partner(tenant, "gs-01", "Geo Sat")
    # by code
    assert _create(api, external_id="a", reseller="alpnet")["partner"] == "alpnet"
    # by name, in any case and with spaces around
    assert _create(api, external_id="b", reseller="  geo SAT ")["partner"] == "gs-01"
    assert Partner.objects.filter(tenant=tenant).count() == 2
    assert Customer.objects.get(external_id="a").partner == alpnet
    assert Customer.objects.get(external_id="b").partner == geosat
    # an empty reseller on a PATCH makes the customer direct
    assert api.patch("/api/v1/customers/a", {"reseller": ""}, format="json").json()["partner"] is None


def test_an_unknown_reseller_becomes_a_partner_as_the_migration_made_them(api: APIClient, tenant: Tenant) -> None:
    _partner(tenant, "north-wind", "Other Name")
    body = _create(api, reseller=" North  Wind ")
    # "North Wind" -> code "north-wind", taken by another partner: "north-wind-2"
    assert (body["partner"], body["reseller"]) == ("north-wind-2", "north-wind-2")
    created = Partner.objects.get(tenant=tenant, code="north-wind-2")
    assert (created.name, created.currency, created.status) == ("North Wind", "EUR", "active")
    assert created.commission_plan == {"hardware": "0", "service": "0", "usage": "0", "fee": "0"}
    assert AuditLogEntry.objects.get(tenant=tenant, action="partner.created").object_id == "north-wind-2"
    # the same name again finds it
    assert _create(api, external_id="martin", reseller="north wind")["partner"] == "north-wind-2"


def test_a_reseller_naming_another_partner_than_partner_is_refused(api: APIClient, tenant: Tenant) -> None:
    _partner(tenant, "alpnet", "AlpNet")
    _partner(tenant, "geosat", "Geo Sat")
    response = api.post("/api/v1/customers", {**BODY, "partner": "alpnet", "reseller": "geosat"}, format="json")
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["reseller"]
    # the same partner both ways is fine
    assert _create(api, partner="alpnet", reseller="alpnet")["partner"] == "alpnet"


def test_a_failed_creation_leaves_no_partner_behind(api: APIClient, tenant: Tenant) -> None:
    _create(api)
    # the service refuses the external_id taken after the reseller was looked up: all is undone
    response = api.post("/api/v1/customers", {**BODY, "reseller": "Brand New"}, format="json")
    assert response.status_code == 409
    assert not Partner.objects.filter(tenant=tenant).exists()


def test_a_reseller_finds_a_name_stored_with_other_spaces(api: APIClient, tenant: Tenant) -> None:
    _partner(tenant, "gs", "Geo  Sat")
    assert _create(api, reseller="geo sat")["partner"] == "gs"
    assert Partner.objects.filter(tenant=tenant).count() == 1
