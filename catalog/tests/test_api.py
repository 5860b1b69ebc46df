"""The catalog through its API, with the numbers of specs/pricing.md and billing.md."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from catalog.models import ComponentPrice, Meter, Plan, PriceOverride, PriceVersion, Product
from catalog.tests.factories import smart_fleet_catalog_posted
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db


def post(api: APIClient, path: str, body: Any) -> Any:
    response = api.post(path, body, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()


@pytest.fixture
def smart_fleet(api: APIClient) -> dict[str, Any]:
    return smart_fleet_catalog_posted(api)


def quote(api: APIClient, body: dict[str, Any]) -> Any:
    return api.post("/api/v1/price_quotes", body, format="json")


def test_smart_fleet_plan_is_created_exactly_as_api_md_sends_it(api: APIClient, smart_fleet: dict[str, Any]) -> None:
    assert [c["product"] for c in smart_fleet["components"]] == ["eld-200", "fleet-platform", "data-overage"]
    assert smart_fleet["components"][0] == {
        "product": "eld-200",
        "kind": "hardware",
        "position": 0,
        "instalments": 12,
        "bill_on": "signature",
    }
    assert smart_fleet["components"][2]["included_per_device"] == "1024.00"
    [version] = smart_fleet["price_versions"]
    assert (version["currency"], version["regions"], version["effective_from"]) == ("EUR", [], None)
    prices = {c["product"]: c for c in version["components"]}
    assert prices["eld-200"]["price"] == "240.00"
    assert prices["fleet-platform"]["charge"]["model"] == "flat"
    product = api.get("/api/v1/products/eld-200").json()
    assert (product["revenue_treatment"], product["ssp"]) == (
        "point_in_time",
        [{"currency": "EUR", "amount": "240.00"}],
    )
    assert api.get("/api/v1/products/fleet-platform").json()["revenue_treatment"] == "ratable"


def test_smart_fleet_quote_for_three_devices(api: APIClient, smart_fleet: dict[str, Any]) -> None:
    response = quote(
        api,
        {
            "plan": "smart-fleet",
            "currency": "EUR",
            "region": "FR",
            "devices": 3,
            "usage": [{"meter": "data_mb", "quantity": "14000"}],
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    amounts = {line["product"]: line["amount"] for line in body["lines"]}
    # 240.00 / 12 = 20.00 per device x 3; 25.00 x 3; (14000 - 3 x 1024) = 10928 -> 10000 x 0.010 + 928 x 0.005
    assert amounts == {"eld-200": "60.00", "fleet-platform": "75.00", "data-overage": "104.64"}
    usage_line = body["lines"][2]
    assert (usage_line["quantity"], usage_line["detail"]["allowance"]) == ("10928", "3072")
    assert (usage_line["detail"]["metered_quantity"], usage_line["detail"]["billable_quantity"]) == ("14000", "10928")
    assert [t["units"] for t in usage_line["detail"]["tiers"]] == ["10000", "928"]
    # net 239.64; VAT 20 % = 47.928 -> 47.93; total 287.57
    assert body["net_total"] == "239.64"
    assert body["taxes"] == [
        {
            "category": "standard",
            "rate": "20.00",
            "base": "239.64",
            "amount": "47.93",
            "vat_category": "S",
            "exemption_reason_code": "",
            "exemption_reason": "",
        }
    ]
    assert body["total"] == "287.57"


def test_march_usage_of_the_smart_fleet_scenario(api: APIClient, smart_fleet: dict[str, Any]) -> None:
    # billing.md, invoice of 1 April: 3800 MB - 2 x 1024 = 1752 MB x 0.010 = 17.52
    body = quote(
        api,
        {"plan": "smart-fleet", "currency": "EUR", "devices": 2, "usage": [{"meter": "data_mb", "quantity": "3800"}]},
    ).json()
    assert body["lines"][2]["amount"] == "17.52"
    assert body["taxes"] == []  # no country given: net only


def test_matrix_example_of_pricing_md(api: APIClient, smart_fleet: dict[str, Any]) -> None:
    post(api, "/api/v1/products", {"code": "data-matrix", "name": "Data by device type", "kind": "usage"})
    post(
        api,
        "/api/v1/plans",
        {
            "code": "matrix-plan",
            "name": "Matrix",
            "prices": [{"currency": "EUR"}],
            "components": [
                {
                    "product": "data-matrix",
                    "meter": "data_mb",
                    "charge": {
                        "model": "matrix",
                        "dimensions": ["device_type", "region"],
                        "cells": [
                            {
                                "match": {"device_type": "tracker", "region": "EU"},
                                "charge": {"model": "per_unit", "unit_amount": "0.0010"},
                            },
                            {
                                "match": {"device_type": "tracker", "region": "US"},
                                "charge": {"model": "per_unit", "unit_amount": "0.0012"},
                            },
                            {
                                "match": {"device_type": "camera", "region": "*"},
                                "charge": {"model": "per_unit", "unit_amount": "0.0030"},
                            },
                        ],
                        "default": {"model": "per_unit", "unit_amount": "0.0015"},
                    },
                }
            ],
        },
    )
    usage = [
        {"meter": "data_mb", "quantity": "10000", "dimensions": {"device_type": "tracker", "region": "EU"}},
        {"meter": "data_mb", "quantity": "5000", "dimensions": {"device_type": "tracker", "region": "US"}},
        {"meter": "data_mb", "quantity": "2000", "dimensions": {"device_type": "camera", "region": "EU"}},
        {"meter": "data_mb", "quantity": "1000", "dimensions": {"device_type": "sensor", "region": "APAC"}},
    ]
    body = quote(api, {"plan": "matrix-plan", "currency": "EUR", "devices": 4, "usage": usage}).json()
    # 10.00 + 6.00 + 6.00 + 1.50
    assert body["lines"][0]["amount"] == "23.50"
    assert body["net_total"] == "23.50"


def test_jpy_per_unit_rounds_to_whole_yen(api: APIClient) -> None:
    post(api, "/api/v1/products", {"code": "api-calls", "name": "API calls", "kind": "usage"})
    post(api, "/api/v1/meters", {"code": "calls", "name": "Calls", "aggregation": "count"})
    post(
        api,
        "/api/v1/plans",
        {
            "code": "jp",
            "name": "JP",
            "prices": [{"currency": "JPY"}],
            "components": [
                {"product": "api-calls", "meter": "calls", "charge": {"model": "per_unit", "unit_amount": "0.7"}}
            ],
        },
    )
    body = quote(
        api, {"plan": "jp", "currency": "JPY", "devices": 1, "usage": [{"meter": "calls", "quantity": "5"}]}
    ).json()
    assert body["lines"][0]["amount"] == "4"  # 3.5 -> 4, JPY has no minor unit
    assert body["net_total"] == "4"


def test_sub_cent_unit_price_is_kept_until_the_line_is_rounded(api: APIClient) -> None:
    # pitfalls #10: 0.067 x 55 = 3.685 -> 3.69 (half-up, once)
    post(api, "/api/v1/products", {"code": "sms", "name": "SMS", "kind": "usage"})
    post(api, "/api/v1/meters", {"code": "sms", "name": "SMS", "aggregation": "count"})
    post(
        api,
        "/api/v1/plans",
        {
            "code": "sms",
            "name": "SMS",
            "prices": [{"currency": "EUR"}],
            "components": [{"product": "sms", "meter": "sms", "charge": {"model": "per_unit", "unit_amount": "0.067"}}],
        },
    )
    body = quote(
        api, {"plan": "sms", "currency": "EUR", "devices": 1, "usage": [{"meter": "sms", "quantity": "55"}]}
    ).json()
    assert body["lines"][0]["amount"] == "3.69"


def test_vat_is_computed_once_on_the_sum_of_rounded_lines(api: APIClient) -> None:
    # pitfalls #9: three lines of 0.03 at 20 %: per-line VAT would be 3 x 0.01 = 0.03; EN 16931 gives
    # 20 % x 0.09 = 0.018 -> 0.02
    for code in ("f1", "f2", "f3"):
        post(api, "/api/v1/products", {"code": code, "name": code, "kind": "fee"})
    post(api, "/api/v1/tax_rates", {"country": "FR", "tax_category": "standard", "rate": "20"})
    post(
        api,
        "/api/v1/plans",
        {
            "code": "fees",
            "name": "Fees",
            "prices": [{"currency": "EUR"}],
            "components": [{"product": c, "price": "0.03"} for c in ("f1", "f2", "f3")],
        },
    )
    body = quote(api, {"plan": "fees", "currency": "EUR", "region": "FR", "devices": 1}).json()
    assert body["net_total"] == "0.09"
    assert body["taxes"][0]["amount"] == "0.02"
    assert body["total"] == "0.11"


def test_a_one_time_fee_is_per_subscription_or_per_device_from_the_signature_or_the_activation(
    api: APIClient,
) -> None:
    # pricing.md: billed once per subscription (the default) or per device, from the signature (the
    # default) or the first activation
    for code in ("setup", "activation"):
        post(api, "/api/v1/products", {"code": code, "name": code.title(), "kind": "fee"})
    plan = post(
        api,
        "/api/v1/plans",
        {
            "code": "fees",
            "name": "Fees",
            "prices": [{"currency": "EUR"}],
            "components": [
                {"product": "setup", "price": "50.00"},
                {"product": "activation", "price": "15.00", "per_device": True, "starts_on": "activation"},
            ],
        },
    )
    assert [(c["product"], c["per_device"], c["starts_on"]) for c in plan["components"]] == [
        ("setup", False, "subscription_start"),
        ("activation", True, "activation"),
    ]
    # quoted for 3 devices: 50.00 once, 3 x 15.00 = 45.00
    body = quote(api, {"plan": "fees", "currency": "EUR", "devices": 3}).json()
    assert [(line["quantity"], line["amount"]) for line in body["lines"]] == [("1", "50.00"), ("3", "45.00")]
    assert body["net_total"] == "95.00"
    response = api.post(
        "/api/v1/plans",
        {
            "code": "bad",
            "name": "Bad",
            "prices": [{"currency": "EUR"}],
            "components": [{"product": "setup", "price": "1.00", "starts_on": "shipment", "per_device": "yes"}],
        },
        format="json",
    )
    assert response.status_code == 422
    assert sorted(e["field"] for e in response.json()["errors"]) == [
        "components[0].per_device",
        "components[0].starts_on",
    ]


SIMPLE_PLAN = {
    "code": "basic",
    "name": "Basic",
    "prices": [{"currency": "EUR"}],
    "components": [{"product": "fleet-platform", "charge": {"model": "flat", "amount": "25.00"}}],
}


@pytest.fixture
def basic(api: APIClient) -> None:
    post(api, "/api/v1/products", {"code": "fleet-platform", "name": "Fleet platform", "kind": "service"})
    post(api, "/api/v1/plans", SIMPLE_PLAN)


def flat_amount(api: APIClient, **extra: Any) -> tuple[str, str]:
    response = quote(api, {"plan": "basic", "currency": "EUR", "devices": 1, **extra})
    assert response.status_code == 200, response.content
    body = response.json()
    return body["lines"][0]["amount"], body["price_source"]


def test_a_version_effective_next_monday_prices_periods_from_monday_on(api: APIClient, basic: None) -> None:
    monday = "2026-11-30T00:00:00+01:00"
    response = api.post(
        "/api/v1/plans/basic/price_versions",
        {
            "currency": "EUR",
            "effective_from": monday,
            "components": [{"product": "fleet-platform", "charge": {"model": "flat", "amount": "30.00"}}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    # a period starting Sunday 23:59 Paris keeps the old price; one starting Monday 00:00 gets the new one
    assert flat_amount(api, at="2026-11-29T23:59:00+01:00") == ("25.00", "default")
    assert flat_amount(api, at=monday) == ("30.00", "default")
    assert flat_amount(api, at="2027-01-01T00:00:00+01:00") == ("30.00", "default")
    versions = api.get("/api/v1/plans/basic/price_versions").json()["results"]
    assert sorted(v["effective_from"] or "" for v in versions) == ["", "2026-11-29T23:00:00Z"]


def test_override_beats_region_which_beats_default(api: APIClient, basic: None) -> None:
    post(
        api,
        "/api/v1/plans/basic/price_versions",
        {
            "currency": "EUR",
            "regions": ["DE", "AT"],
            "components": [{"product": "fleet-platform", "charge": {"model": "flat", "amount": "22.00"}}],
        },
    )
    for external_id, country in (("berlin", "DE"), ("munich", "DE"), ("paris", "FR")):
        post(
            api,
            "/api/v1/customers",
            {"external_id": external_id, "name": external_id, "email": "a@b.test", "country": country},
        )
    post(
        api,
        "/api/v1/plans/basic/price_overrides",
        {
            "customer": "berlin",
            "product": "fleet-platform",
            "charge": {"model": "flat", "amount": "20.00"},
        },
    )
    assert flat_amount(api, customer="berlin") == ("20.00", "override")
    assert flat_amount(api, customer="munich") == ("22.00", "region")
    assert flat_amount(api, customer="paris") == ("25.00", "default")
    assert flat_amount(api, region="AT") == ("22.00", "region")


def test_no_price_in_the_customers_currency_is_a_clear_error(api: APIClient, basic: None) -> None:
    response = quote(api, {"plan": "basic", "currency": "USD", "devices": 1})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "no_price_for_currency"
    assert body["detail"].startswith("Plan basic has no price in USD in effect on ")


def test_a_customer_is_quoted_in_its_own_currency_only(api: APIClient, basic: None) -> None:
    post(
        api,
        "/api/v1/customers",
        {
            "external_id": "us",
            "name": "US",
            "email": "a@b.test",
            "country": "US",
            "currency": "USD",
            "timezone": "America/New_York",
        },
    )
    response = quote(api, {"plan": "basic", "currency": "EUR", "devices": 1, "customer": "us"})
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "currency",
        "code": "currency_mismatch",
        "message": "The customer's currency is USD.",
    }


@pytest.mark.parametrize(
    ("component", "field", "code"),
    [
        (
            {
                "product": "fleet-platform",
                "charge": {
                    "model": "graduated",
                    "tiers": [
                        {"up_to": 100, "unit_amount": "1"},
                        {"up_to": 50, "unit_amount": "1"},
                        {"up_to": None, "unit_amount": "1"},
                    ],
                },
            },
            "components[0].charge.tiers[1].up_to",
            "tiers_not_increasing",
        ),
        (
            {
                "product": "fleet-platform",
                "charge": {"model": "graduated", "tiers": [{"up_to": 100, "unit_amount": "1"}]},
            },
            "components[0].charge.tiers[0].up_to",
            "last_tier_must_be_open",
        ),
        (
            {"product": "fleet-platform", "charge": {"model": "flat", "amount": "-1"}},
            "components[0].charge.amount",
            "negative",
        ),
        (
            {"product": "fleet-platform", "charge": {"model": "bogus"}},
            "components[0].charge.model",
            "unknown_charge_model",
        ),
        ({"product": "nope", "charge": {"model": "flat", "amount": "1"}}, "components[0].product", "unknown_product"),
        ({"product": "fleet-platform", "kind": "hardware", "price": "1"}, "components[0].kind", "kind_mismatch"),
        ({"product": "fleet-platform", "price": "1"}, "components[0].price", "unknown_field"),
    ],
)
def test_bad_plans_get_422_naming_the_field(
    api: APIClient, tenant: Tenant, component: dict[str, Any], field: str, code: str
) -> None:
    post(api, "/api/v1/products", {"code": "fleet-platform", "name": "Fleet platform", "kind": "service"})
    response = api.post(
        "/api/v1/plans",
        {"code": "bad", "name": "Bad", "components": [component], "prices": [{"currency": "EUR"}]},
        format="json",
    )
    assert response.status_code == 422, response.content
    assert {"field": field, "code": code} in [
        {"field": e["field"], "code": e["code"]} for e in response.json()["errors"]
    ]
    assert not Plan.objects.filter(tenant=tenant).exists()


def test_unknown_meter_and_currency_are_named(api: APIClient, tenant: Tenant) -> None:
    post(api, "/api/v1/products", {"code": "data", "name": "Data", "kind": "usage"})
    response = api.post(
        "/api/v1/plans",
        {
            "code": "p",
            "name": "P",
            "prices": [{"currency": "EUX"}],
            "components": [
                {"product": "data", "meter": "nope", "charge": {"model": "per_unit", "unit_amount": "0.01"}}
            ],
        },
        format="json",
    )
    assert response.status_code == 422
    fields = {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert fields == {("components[0].meter", "unknown_meter"), ("prices[0].currency", "unknown_currency")}
    assert not PriceVersion.objects.exists()
    assert not ComponentPrice.objects.exists()


def test_duplicate_codes_are_409(api: APIClient, basic: None) -> None:
    assert api.post("/api/v1/plans", SIMPLE_PLAN, format="json").status_code == 409
    response = api.post("/api/v1/products", {"code": "fleet-platform", "name": "x", "kind": "service"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "code_taken")


def test_a_second_version_with_the_same_date_is_409(api: APIClient, basic: None) -> None:
    body = {
        "currency": "EUR",
        "effective_from": "2027-01-01T00:00:00Z",
        "components": [{"product": "fleet-platform", "charge": {"model": "flat", "amount": "30.00"}}],
    }
    assert api.post("/api/v1/plans/basic/price_versions", body, format="json").status_code == 201
    response = api.post("/api/v1/plans/basic/price_versions", body, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "price_version_exists")


def test_a_price_version_must_price_every_component_and_name_an_instant(api: APIClient, basic: None) -> None:
    response = api.post(
        "/api/v1/plans/basic/price_versions",
        {"currency": "EUR", "effective_from": "2027-01-01T00:00", "components": []},
        format="json",
    )
    assert response.status_code == 422
    codes = {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert codes == {("effective_from", "naive_datetime"), ("components", "missing_component_price")}


@pytest.mark.parametrize(
    ("meter", "field", "code"),
    [
        ({"aggregation": "sum"}, "field", "required"),
        ({"aggregation": "count", "field": "mb"}, "field", "not_allowed"),
        ({"aggregation": "median", "field": "mb"}, "aggregation", "invalid_choice"),
        (
            {"aggregation": "sum", "field": "mb", "time_bands": {"peak": ["8:00", "20:00"]}},
            "time_bands.peak",
            "invalid",
        ),
        (
            {"aggregation": "sum", "field": "mb", "time_bands": {"off_peak": ["08:00", "20:00"]}},
            "time_bands.off_peak",
            "reserved",
        ),
        ({"aggregation": "sum", "field": "mb", "dimensions": ["region", "region"]}, "dimensions", "duplicate"),
    ],
)
def test_bad_meters_get_422(api: APIClient, meter: dict[str, Any], field: str, code: str) -> None:
    response = api.post("/api/v1/meters", {"code": "m", "name": "M", **meter}, format="json")
    assert response.status_code == 422, response.content
    assert {"field": field, "code": code} in [
        {"field": e["field"], "code": e["code"]} for e in response.json()["errors"]
    ]


def test_tax_rate_is_set_then_changed(api: APIClient) -> None:
    post(api, "/api/v1/tax_rates", {"country": "fr", "tax_category": "standard", "rate": "20"})
    post(api, "/api/v1/tax_rates", {"country": "FR", "tax_category": "standard", "rate": "19.6"})
    results = api.get("/api/v1/tax_rates?country=FR").json()["results"]
    assert [(r["country"], r["tax_category"], r["rate"]) for r in results] == [("FR", "standard", "19.60")]
    response = api.post(
        "/api/v1/tax_rates", {"country": "FR", "tax_category": "standard", "rate": "120"}, format="json"
    )
    assert (response.status_code, response.json()["errors"][0]["code"]) == (422, "out_of_range")


def test_product_patch_changes_ssp_but_not_kind(api: APIClient) -> None:
    post(api, "/api/v1/products", {"code": "eld", "name": "ELD", "kind": "hardware"})
    response = api.patch("/api/v1/products/eld", {"ssp": [{"currency": "EUR", "amount": "199"}]}, format="json")
    assert response.status_code == 200
    assert response.json()["ssp"] == [{"currency": "EUR", "amount": "199.00"}]
    response = api.patch("/api/v1/products/eld", {"kind": "service"}, format="json")
    assert response.status_code == 422


@pytest.mark.parametrize("bad", [["a"], {"x": 1}, 12, None])
def test_non_string_references_are_422_not_500(api: APIClient, bad: Any) -> None:
    post(api, "/api/v1/products", {"code": "data", "name": "Data", "kind": "usage"})
    for component in (
        {"product": bad, "charge": {"model": "flat", "amount": "1"}},
        {"product": "data", "meter": bad, "charge": {"model": "flat", "amount": "1"}},
    ):
        response = api.post(
            "/api/v1/plans",
            {"code": "p", "name": "P", "components": [component], "prices": [{"currency": "EUR"}]},
            format="json",
        )
        assert response.status_code == 422, response.content


# --- dates out of range, control characters --------------------------------------------------

# 1 January of year 1 at +14:00 is 31 December of year 0 in UTC: PostgreSQL stores it, Python cannot
# read it back, and every page that loads the plan failed.
YEAR_ZERO = "0001-01-01T00:00:00+14:00"


def test_a_price_book_effective_in_year_zero_is_422_and_stores_no_plan(api: APIClient, tenant: Tenant) -> None:
    post(api, "/api/v1/products", {"code": "fleet-platform", "name": "Fleet platform", "kind": "service"})
    before = AuditLogEntry.objects.filter(tenant=tenant).count()
    # when
    response = api.post(
        "/api/v1/plans", {**SIMPLE_PLAN, "prices": [{"currency": "EUR", "effective_from": YEAR_ZERO}]}, format="json"
    )
    # then: refused with the field, and nothing of the plan is stored
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == [
        {
            "field": "prices[0].effective_from",
            "code": "out_of_range",
            "message": "Use a date between the years 1900 and 9999.",
        }
    ]
    assert not Plan.objects.filter(tenant=tenant).exists()
    assert AuditLogEntry.objects.filter(tenant=tenant).count() == before
    # and the pages that read plans still answer
    assert api.get("/api/v1/plans").status_code == 200
    assert api.post("/api/v1/plans", SIMPLE_PLAN, format="json").status_code == 201


@pytest.mark.parametrize(
    ("effective_from", "accepted"),
    [
        ("1900-01-01T00:00:00Z", True),
        ("1900-01-01T00:00:00+01:00", False),  # 31 December 1899 in UTC
        ("9999-12-31T10:00:00+14:00", True),
        ("9999-12-31T23:00:00-02:00", False),  # year 10000 in UTC
    ],
)
def test_an_override_effective_outside_1900_to_9999_is_422_and_not_saved(
    api: APIClient, basic: None, tenant: Tenant, effective_from: str, accepted: bool
) -> None:
    post(api, "/api/v1/customers", {"external_id": "berlin", "name": "B", "email": "b@b.test", "country": "DE"})
    response = api.post(
        "/api/v1/plans/basic/price_overrides",
        {
            "customer": "berlin",
            "product": "fleet-platform",
            "charge": {"model": "flat", "amount": "20.00"},
            "effective_from": effective_from,
        },
        format="json",
    )
    if accepted:
        assert response.status_code == 201, response.content
        assert PriceOverride.objects.filter(tenant=tenant).count() == 1
        return
    assert response.status_code == 422, response.content
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("effective_from", "out_of_range")]
    assert not PriceOverride.objects.filter(tenant=tenant).exists()
    assert api.get("/api/v1/plans/basic/price_overrides").status_code == 200


def test_every_date_field_of_the_api_keeps_to_1900_to_9999(api: APIClient, basic: None) -> None:
    # a quote "as of" 1850 used to be priced with the plan's first version
    response = quote(api, {"plan": "basic", "currency": "EUR", "devices": 1, "at": "1850-06-01T00:00:00Z"})
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == [
        {"field": "at", "code": "out_of_range", "message": "Use a date between the years 1900 and 9999."}
    ]


def test_control_characters_are_refused_in_every_text_field(api: APIClient, tenant: Tenant) -> None:
    # a name with U+0001 was stored, then its invoices could not be made into Factur-X nor mailed
    response = api.post("/api/v1/products", {"code": "p", "name": "Ctl\u0001Name", "kind": "fee"}, format="json")
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == [
        {
            "field": "name",
            "code": "control_character",
            "message": "Control characters (line breaks and tabs included) are not allowed: U+0001 at position 4.",
        }
    ]
    # in a list of the body, in a nested serializer, and inside a JSON field, DEL and NUL's kin too
    ssp = api.post(
        "/api/v1/products",
        {"code": "p", "name": "P", "kind": "fee", "ssp": [{"currency": "EU\u007f", "amount": "1"}]},
        format="json",
    )
    assert [(e["field"], e["code"]) for e in ssp.json()["errors"]] == [("ssp[0].currency", "control_character")]
    meter = api.post(
        "/api/v1/meters",
        {"code": "m", "name": "M", "aggregation": "count", "time_bands": {"pe\u001bak": ["08:00", "20:00"]}},
        format="json",
    )
    assert meter.status_code == 422, meter.content
    assert [(e["field"], e["code"]) for e in meter.json()["errors"]] == [("time_bands", "control_character")]
    assert not Product.objects.filter(tenant=tenant).exists()
    assert not Meter.objects.filter(tenant=tenant).exists()


def test_a_description_may_span_lines_but_a_name_may_not(api: APIClient) -> None:
    body = {"code": "p", "name": "P", "kind": "fee", "description": "First line\r\n\tthen an indented one"}
    created = api.post("/api/v1/products", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["description"] == "First line\r\n\tthen an indented one"
    renamed = api.patch("/api/v1/products/p", {"name": "Two\nlines"}, format="json")
    assert (renamed.status_code, renamed.json()["errors"][0]["code"]) == (422, "control_character")
