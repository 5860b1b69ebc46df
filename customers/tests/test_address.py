"""A customer's postal address in the API: ``address: {line1, line2, postal_code, city, country}``,
whose country is the customer's ``country``."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from customers.models import Customer
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

ADDRESS = {
    "line1": "12 rue des Lilas",
    "line2": "Bâtiment C",
    "postal_code": "69003",
    "city": "Lyon",
    "country": "FR",
}


def test_create_with_an_address_stores_and_returns_it(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    # given: the top-level country FR and the address in FR
    response = api.post("/api/v1/customers", {**customer_body, "address": ADDRESS}, format="json")
    # then
    assert response.status_code == 201, response.content
    assert response.json()["address"] == ADDRESS
    assert response.json()["country"] == "FR"
    customer = Customer.objects.get(tenant=tenant, external_id="dupont")
    assert (customer.address_line1, customer.address_line2, customer.postal_code, customer.city) == (
        "12 rue des Lilas",
        "Bâtiment C",
        "69003",
        "Lyon",
    )
    assert api.get("/api/v1/customers/dupont").json()["address"] == ADDRESS
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.created")
    assert entry.after is not None
    assert (entry.after["postal_code"], entry.after["city"]) == ("69003", "Lyon")


def test_the_country_may_be_given_in_the_address_only(api: APIClient, customer_body: dict[str, Any]) -> None:
    body = {k: v for k, v in customer_body.items() if k != "country"}
    address = {"line1": "Unter den Linden 5", "postal_code": "10117", "city": "Berlin", "country": "de"}
    response = api.post("/api/v1/customers", {**body, "address": address}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["country"] == "DE"
    assert response.json()["address"] == {
        "line1": "Unter den Linden 5",
        "line2": "",
        "postal_code": "10117",
        "city": "Berlin",
        "country": "DE",
    }


def test_a_customer_without_an_address_reads_blank_lines(api: APIClient, customer_body: dict[str, Any]) -> None:
    response = api.post("/api/v1/customers", customer_body, format="json")
    assert response.json()["address"] == {"line1": "", "line2": "", "postal_code": "", "city": "", "country": "FR"}


def test_two_different_countries_are_a_400_naming_address_country(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    response = api.post(
        "/api/v1/customers", {**customer_body, "country": "FR", "address": {**ADDRESS, "country": "BE"}}, format="json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "country_conflict"
    assert body["errors"] == [
        {
            "field": "address.country",
            "code": "country_conflict",
            "message": "address.country (BE) and country (FR) differ: give one of them, or the same.",
        }
    ]
    assert not Customer.objects.filter(tenant=tenant).exists()
    # The same country, in another case, is no conflict.
    same = api.post(
        "/api/v1/customers", {**customer_body, "country": "FR", "address": {**ADDRESS, "country": "fr"}}, format="json"
    )
    assert same.status_code == 201


def test_no_country_at_all_is_a_422(api: APIClient, customer_body: dict[str, Any]) -> None:
    body = {k: v for k, v in customer_body.items() if k != "country"}
    response = api.post("/api/v1/customers", {**body, "address": {"line1": "1 Main St"}}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "country",
            "code": "required",
            "message": "Give the customer's country, as country or address.country.",
        }
    ]


@pytest.mark.parametrize(
    ("address", "field", "code"),
    [
        # FR postal codes are 5 digits.
        ({**ADDRESS, "postal_code": "6900"}, "address.postal_code", "invalid_postal_code"),
        ({**ADDRESS, "postal_code": "69 003"}, "address.postal_code", "invalid_postal_code"),
        ({**ADDRESS, "postal_code": "A" * 17}, "address.postal_code", "max_length"),
        ({**ADDRESS, "line1": "x" * 201}, "address.line1", "max_length"),
        ({**ADDRESS, "city": "y" * 101}, "address.city", "max_length"),
        ({**ADDRESS, "line1": "12 rue\ndes Lilas"}, "address.line1", "control_character"),
        ({**ADDRESS, "city": "Lyon\x07"}, "address.city", "control_character"),
        ({**ADDRESS, "line1": ""}, "address.line1", "required"),
        ({"postal_code": "69003"}, "address.city", "required"),
        ({**ADDRESS, "street": "x"}, "address.street", "unknown_field"),
    ],
)
def test_bad_addresses_get_422_naming_the_field(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any], address: dict[str, Any], field: str, code: str
) -> None:
    response = api.post("/api/v1/customers", {**customer_body, "address": address}, format="json")
    assert response.status_code == 422, response.content
    assert {"field": field, "code": code} in [
        {"field": e["field"], "code": e["code"]} for e in response.json()["errors"]
    ]
    assert not Customer.objects.filter(tenant=tenant).exists()


def test_an_unknown_country_in_the_address_is_named_there(api: APIClient, customer_body: dict[str, Any]) -> None:
    body = {k: v for k, v in customer_body.items() if k != "country"}
    response = api.post("/api/v1/customers", {**body, "address": {**ADDRESS, "country": "XX"}}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "address.country", "code": "unknown_country", "message": "Unknown ISO 3166-1 alpha-2 country: XX."}
    ]


def test_postal_codes_are_checked_against_the_countrys_shape(api: APIClient, customer_body: dict[str, Any]) -> None:
    cases = [
        ("NL", "1012 ab", "1012 AB"),  # upper-cased
        ("GB", "sw1a  1aa", "SW1A 1AA"),  # no shape of its own: letters, digits, single spaces
        ("US", "94105-1804", "94105-1804"),
        ("SE", "114 55", "114 55"),
    ]
    for i, (country, typed, stored) in enumerate(cases):
        address = {"line1": "1 Main Street", "postal_code": typed, "city": "Town", "country": country}
        response = api.post(
            "/api/v1/customers",
            {**customer_body, "external_id": "c%d" % i, "country": country, "address": address},
            format="json",
        )
        assert response.status_code == 201, (country, response.content)
        assert response.json()["address"]["postal_code"] == stored
    bad = {"line1": "1 Main Street", "postal_code": "SW1A/1AA", "city": "London", "country": "GB"}
    response = api.post("/api/v1/customers", {**customer_body, "country": "GB", "address": bad}, format="json")
    assert response.json()["errors"] == [
        {
            "field": "address.postal_code",
            "code": "invalid_postal_code",
            "message": "A postal code has letters, digits, spaces and hyphens only.",
        }
    ]


def test_patch_changes_part_of_the_address_and_keeps_the_rest(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    # given
    api.post("/api/v1/customers", {**customer_body, "address": ADDRESS}, format="json")
    # when: a new postal code and city only
    response = api.patch(
        "/api/v1/customers/dupont", {"address": {"postal_code": "69007", "city": "Lyon 7e"}}, format="json"
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json()["address"] == {**ADDRESS, "postal_code": "69007", "city": "Lyon 7e"}
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.updated")
    assert entry.before == {"postal_code": "69003", "city": "Lyon"}
    assert entry.after == {"postal_code": "69007", "city": "Lyon 7e"}
    # a second line cleared
    response = api.patch("/api/v1/customers/dupont", {"address": {"line2": ""}}, format="json")
    assert response.json()["address"]["line2"] == ""
    assert response.json()["address"]["line1"] == "12 rue des Lilas"


def test_patch_moves_the_customer_to_another_country_through_its_address(
    api: APIClient, customer_body: dict[str, Any]
) -> None:
    api.post("/api/v1/customers", {**customer_body, "address": ADDRESS}, format="json")
    moved = {"line1": "Rue Neuve 10", "line2": "", "postal_code": "1000", "city": "Bruxelles", "country": "BE"}
    response = api.patch("/api/v1/customers/dupont", {"address": moved}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["country"] == "BE"
    assert response.json()["address"] == moved


def test_patch_checks_the_stored_postal_code_against_a_new_country(
    api: APIClient, tenant: Tenant, customer_body: dict[str, Any]
) -> None:
    # given: 69003, a French postal code
    api.post("/api/v1/customers", {**customer_body, "address": ADDRESS}, format="json")
    # when: the country alone becomes Belgium, whose postal codes have 4 digits
    response = api.patch("/api/v1/customers/dupont", {"country": "BE"}, format="json")
    # then
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "address.postal_code",
            "code": "invalid_postal_code",
            "message": "A postal code in BE is 4 digits, e.g. 1000.",
        }
    ]
    assert Customer.objects.get(tenant=tenant, external_id="dupont").country == "FR"


def test_patch_with_two_different_countries_is_a_400(api: APIClient, customer_body: dict[str, Any]) -> None:
    api.post("/api/v1/customers", customer_body, format="json")
    response = api.patch("/api/v1/customers/dupont", {"country": "DE", "address": {"country": "AT"}}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "address.country"
