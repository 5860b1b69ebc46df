"""Catalog pages of the back-office (/app/catalog/...) through Django's test client: what a form
stores, how service errors come back, the price calculator (with and without HTMX), tenant
isolation, roles and the French translation."""

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from djmoney.money import Money

from catalog.models import ComponentPrice, Meter, Plan, PlanComponent, PriceVersion, Product, TaxRate
from catalog.services import meter_create, product_create
from catalog.tests.factories import SMART_FLEET_PLAN, smart_fleet_catalog, smart_fleet_products
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Role, Tenant

pytestmark = pytest.mark.django_db

StaffMaker = Callable[..., Any]


def html(response: Any) -> str:
    return response.content.decode()


def text(response: Any) -> str:
    """The page's visible text with tags removed and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html(response)))


def logged_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def calculator_data(**changes: Any) -> dict[str, Any]:
    data = {
        "plan": "smart-fleet",
        "currency": "EUR",
        "region": "FR",
        "devices": "3",
        "customer": "",
        "usage-TOTAL_FORMS": "2",
        "usage-INITIAL_FORMS": "0",
        "usage-MIN_NUM_FORMS": "0",
        "usage-MAX_NUM_FORMS": "50",
        "usage-0-meter": "data_mb",
        "usage-0-quantity": "14000",
        "usage-0-dimensions": "",
        "usage-0-events": "",
        "usage-1-meter": "",
        "usage-1-quantity": "",
        "usage-1-dimensions": "",
        "usage-1-events": "",
    }
    data.update(changes)
    return data


# --- Products -----------------------------------------------------------------------------------


def test_creating_a_product_stores_exactly_what_was_entered(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    user = make_staff(tenant, role=Role.FINANCE_ADMIN, email="admin@acme.test")
    logged_in(client, user)

    response = client.post(
        "/app/catalog/products/new/",
        {
            "code": "eld-200",
            "name": "ELD-200 tracker",
            "kind": "hardware",
            "tax_category": "reduced",
            "revenue_treatment": "",
            "ssp_currency": "eur",
            "ssp_amount": "240.00",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/app/catalog/products/"
    product = Product.objects.get(tenant=tenant, code="eld-200")
    assert (product.name, product.kind, product.tax_category) == ("ELD-200 tracker", "hardware", "reduced")
    assert product.revenue_treatment == "point_in_time"  # the default for hardware
    assert [(s.currency, s.amount) for s in product.ssps.all()] == [("EUR", Money("240.0000", "EUR"))]
    entry = AuditLogEntry.objects.get(tenant=tenant, action="product.created")
    assert entry.actor_label == "admin@acme.test"
    listing = text(client.get("/app/catalog/products/"))
    assert "eld-200" in listing
    assert "€240.00" in listing
    assert "Point in time" in listing


def test_a_taken_product_code_is_reported_on_the_form(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    smart_fleet_products(tenant)
    logged_in(client, make_staff(tenant))

    response = client.post(
        "/app/catalog/products/new/",
        {"code": "eld-200", "name": "Another", "kind": "fee", "tax_category": "standard"},
    )

    assert response.status_code == 200
    assert "A product with code eld-200 already exists." in html(response)
    assert Product.objects.get(tenant=tenant, code="eld-200").name == "ELD-200 tracker"


def test_editing_a_product_keeps_the_ssps_of_other_currencies(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_products(tenant)
    logged_in(client, make_staff(tenant))
    page = client.get("/app/catalog/products/eld-200/edit/")
    assert page.status_code == 200
    assert 'value="ELD-200 tracker"' in html(page)

    response = client.post(
        "/app/catalog/products/eld-200/edit/",
        {
            "name": "ELD-200 tracker v2",
            "tax_category": "reduced",
            "revenue_treatment": "ratable",
            "ssp_currency": "USD",
            "ssp_amount": "260.50",
        },
    )

    assert response.status_code == 302
    product = Product.objects.get(tenant=tenant, code="eld-200")
    assert (product.name, product.kind, product.tax_category, product.revenue_treatment) == (
        "ELD-200 tracker v2",
        "hardware",
        "reduced",
        "ratable",
    )
    assert [(s.currency, s.amount) for s in product.ssps.all()] == [
        ("EUR", Money("240.0000", "EUR")),
        ("USD", Money("260.5000", "USD")),
    ]


# --- Meters -------------------------------------------------------------------------------------


def test_creating_a_meter_stores_exactly_what_was_entered(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    logged_in(client, make_staff(tenant))

    response = client.post(
        "/app/catalog/meters/new/",
        {
            "code": "data_mb",
            "name": "Data (MB)",
            "aggregation": "sum",
            "field": "mb",
            "dimensions": "device_type, region ,",
            "filters": '{"direction": "uplink"}',
            "time_bands": '{"peak": ["08:00", "20:00"]}',
        },
    )

    assert response.status_code == 302
    meter = Meter.objects.get(tenant=tenant, code="data_mb")
    assert (meter.name, meter.aggregation, meter.field) == ("Data (MB)", "sum", "mb")
    assert meter.dimensions == ["device_type", "region"]
    assert meter.filters == {"direction": "uplink"}
    assert meter.time_bands == {"peak": ["08:00", "20:00"]}


def test_meter_json_and_service_errors_come_back_on_the_form(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    logged_in(client, make_staff(tenant))
    base = {"code": "calls", "name": "Calls", "aggregation": "count", "field": "", "dimensions": ""}

    bad_json = client.post("/app/catalog/meters/new/", {**base, "filters": "{direction: uplink}", "time_bands": ""})
    bad_band = client.post(
        "/app/catalog/meters/new/", {**base, "filters": "", "time_bands": '{"peak": ["8h", "20:00"]}'}
    )

    assert bad_json.status_code == 200
    assert "Not valid JSON (line 1, column 2)" in html(bad_json)
    assert bad_band.status_code == 200
    assert "time_bands.peak: A band is [&quot;HH:MM&quot;, &quot;HH:MM&quot;]" in html(bad_band)
    assert not Meter.objects.filter(tenant=tenant).exists()


def test_a_meter_can_only_be_renamed(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    smart_fleet_products(tenant)
    logged_in(client, make_staff(tenant))

    page = client.get("/app/catalog/meters/data_mb/edit/")
    response = client.post(
        "/app/catalog/meters/data_mb/edit/", {"name": "Cellular data (MB)", "aggregation": "count", "field": ""}
    )

    assert "Only the name of a meter, and whether it accepts negative values, can change." in html(page)
    assert "create a new meter" in html(page)
    assert response.status_code == 302
    meter = Meter.objects.get(tenant=tenant, code="data_mb")
    assert (meter.name, meter.aggregation, meter.field) == ("Cellular data (MB)", "sum", "mb")


def test_a_meter_accepts_negative_values_when_ticked_on_the_form(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    logged_in(client, make_staff(tenant))
    base = {"name": "Net kWh", "aggregation": "sum", "field": "kwh", "dimensions": "", "filters": "", "time_bands": ""}
    # when: created ticked, a count meter ticked, then the first one unticked on its edit page
    created = client.post("/app/catalog/meters/new/", {**base, "code": "kwh", "accepts_negative": "on"})
    count_meter = {**base, "code": "calls", "aggregation": "count", "field": "", "accepts_negative": "on"}
    refused = client.post("/app/catalog/meters/new/", count_meter)
    assert created.status_code == 302
    assert Meter.objects.get(tenant=tenant, code="kwh").accepts_negative is True
    edit = client.get("/app/catalog/meters/kwh/edit/")
    unticked = client.post("/app/catalog/meters/kwh/edit/", {"name": "Net kWh"})
    # then
    assert refused.status_code == 200
    assert "only sum, max and latest meters can accept negative values" in html(refused)
    assert not Meter.objects.filter(tenant=tenant, code="calls").exists()
    assert re.search(r'<input type="checkbox" name="accepts_negative"[^>]* checked>', html(edit))
    assert unticked.status_code == 302
    assert Meter.objects.get(tenant=tenant, code="kwh").accepts_negative is False


# --- Tax rates ----------------------------------------------------------------------------------


def test_setting_a_tax_rate(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    logged_in(client, make_staff(tenant))

    created = client.post("/app/catalog/tax-rates/set/", {"country": "de", "tax_category": "standard", "rate": "19"})
    changed = client.post("/app/catalog/tax-rates/set/", {"country": "DE", "tax_category": "standard", "rate": "19.5"})
    invalid = client.post("/app/catalog/tax-rates/set/", {"country": "XX", "tax_category": "standard", "rate": "7"})

    assert created.status_code == 302
    assert changed.status_code == 302
    assert [(r.country, r.tax_category, r.rate) for r in TaxRate.objects.filter(tenant=tenant)] == [
        ("DE", "standard", Decimal("19.5000"))
    ]
    assert invalid.status_code == 200
    assert 'role="alert"' in html(invalid)
    listing = text(client.get("/app/catalog/tax-rates/"))
    assert "DE Standard rate 19.5% always open-ended" in listing


def test_a_vat_change_is_a_new_period_and_an_overlap_is_refused_in_french(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    logged_in(client, make_staff(tenant))
    url = "/app/catalog/tax-rates/set/"
    client.post(url, {"country": "FR", "tax_category": "standard", "rate": "20"})
    # a new rate from 1 July 2027 while the 20 % period is open-ended: refused, on the field, in French
    overlap = client.post(
        url,
        {"country": "FR", "tax_category": "standard", "rate": "21", "valid_from": "2027-07-01"},
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    assert overlap.status_code == 200
    assert "Elle chevauche le taux de 20 % valable à partir du 1900-01-01, sans date de fin." in text(overlap)
    # end the 20 % period on 30 June 2027, then 21 % from 1 July 2027
    ended = client.post(url, {"country": "FR", "tax_category": "standard", "rate": "20", "valid_to": "2027-06-30"})
    added = client.post(url, {"country": "FR", "tax_category": "standard", "rate": "21", "valid_from": "2027-07-01"})
    assert (ended.status_code, added.status_code) == (302, 302)
    assert [
        (r.rate, r.valid_from.isoformat(), r.valid_to and r.valid_to.isoformat())
        for r in TaxRate.objects.filter(tenant=tenant)
    ] == [(Decimal("20.0000"), "1900-01-01", "2027-06-30"), (Decimal("21.0000"), "2027-07-01", None)]
    listing = text(client.get("/app/catalog/tax-rates/"))
    assert "FR Standard rate 20% always 30 Jun 2027" in listing
    assert "FR Standard rate 21% 1 Jul 2027 open-ended" in listing


# --- Plans --------------------------------------------------------------------------------------


def test_new_plan_page_is_prefilled_with_smart_fleet_using_the_tenants_codes(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    system = Actor.system("tests")
    product_create(tenant=tenant, actor=system, at=timezone.now(), code="tracker-x", name="X", kind="hardware")
    meter_create(tenant=tenant, actor=system, at=timezone.now(), code="mb", name="MB", aggregation="sum", field="mb")
    logged_in(client, make_staff(tenant))

    response = client.get("/app/catalog/plans/new/")

    assert response.status_code == 200
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", html(response), re.S)
    assert textarea is not None
    example = json.loads(textarea.group(1).replace("&quot;", '"'))
    assert [c["product"] for c in example["components"]] == ["tracker-x", "fleet-platform", "data-overage"]
    assert example["components"][2]["meter"] == "mb"
    assert example["prices"] == [{"currency": "EUR"}]


def test_creating_a_plan_from_json_stores_it_and_shows_its_prices(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_products(tenant)
    logged_in(client, make_staff(tenant))

    response = client.post("/app/catalog/plans/new/", {"definition": json.dumps(SMART_FLEET_PLAN)})

    assert response.status_code == 302
    assert response["Location"] == "/app/catalog/plans/smart-fleet/"
    plan = Plan.objects.get(tenant=tenant, code="smart-fleet")
    assert (plan.name, plan.interval, plan.commitment_months) == ("Smart Fleet", "month", 12)
    components = list(PlanComponent.objects.filter(plan=plan).order_by("position"))
    assert [(c.product.code, c.kind) for c in components] == [
        ("eld-200", "hardware"),
        ("fleet-platform", "service"),
        ("data-overage", "usage"),
    ]
    assert (components[0].instalments, components[0].bill_on) == (12, "signature")
    assert (components[2].meter and components[2].meter.code, components[2].included_per_device) == (
        "data_mb",
        Decimal("1024"),
    )
    [version] = PriceVersion.objects.filter(plan=plan)
    assert (version.currency, version.regions, version.effective_from) == ("EUR", [], None)
    prices = {p.component.product.code: p for p in ComponentPrice.objects.filter(version=version)}
    assert prices["eld-200"].price == Decimal("240")
    assert prices["fleet-platform"].charge == {"model": "flat", "amount": "25.00"}
    assert prices["data-overage"].charge == {
        "model": "graduated",
        "tiers": [
            {"up_to": "10000", "unit_amount": "0.010", "flat_amount": "0"},
            {"up_to": None, "unit_amount": "0.005", "flat_amount": "0"},
        ],
    }

    detail = text(client.get("/app/catalog/plans/smart-fleet/"))
    assert "12 equal instalments" in detail
    assert "1024 included per device" in detail
    assert "EUR · default price book" in detail
    assert "From the start" in detail
    assert "€240.00 per device" in detail
    assert "€25.00 flat" in detail
    # the graduated tiers as a small table: quantity range, unit price
    assert "0 – 10,000 €0.01" in detail
    assert "above 10,000 €0.005" in detail


def test_a_bad_plan_is_listed_with_field_paths_and_nothing_is_created(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_products(tenant)
    logged_in(client, make_staff(tenant))
    bad = json.loads(json.dumps(SMART_FLEET_PLAN))
    bad["components"][0]["product"] = "no-such-product"
    bad["components"][1]["charge"] = {"model": "flat"}
    audit_before = AuditLogEntry.objects.filter(tenant=tenant).count()

    response = client.post("/app/catalog/plans/new/", {"definition": json.dumps(bad)})

    assert response.status_code == 200
    body = html(response)
    assert "<code>components[0].product</code> No product with code no-such-product." in body
    assert "<code>components[1].charge.amount</code> This field is required." in body
    assert "no-such-product" in body  # the JSON typed is kept in the textarea
    assert Plan.objects.count() == 0
    assert PriceVersion.objects.count() == 0
    assert AuditLogEntry.objects.filter(tenant=tenant).count() == audit_before


def test_plan_json_that_does_not_parse_is_reported(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    logged_in(client, make_staff(tenant))

    broken = client.post("/app/catalog/plans/new/", {"definition": '{"code": "x",\n  "name": }'})
    not_an_object = client.post("/app/catalog/plans/new/", {"definition": "[1, 2]"})
    wrong_types = client.post(
        "/app/catalog/plans/new/",
        {"definition": json.dumps({"code": "x", "name": "X", "trial_days": "7", "components": [{"product": ["a"]}]})},
    )

    assert "Not valid JSON (line 2, column 11)" in html(broken)
    assert "The plan is a JSON object." in html(not_an_object)
    assert "<code>trial_days</code> A whole number from 0 to 3650." in html(wrong_types)
    assert "<code>components[0].product</code> Must be a code (a string)." in html(wrong_types)
    assert Plan.objects.count() == 0


def test_a_plan_effective_in_year_zero_is_refused_on_the_form_and_the_pages_still_open(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    # given: the Smart Fleet plan with a price book from 1 January of year 1 at +14:00 (year 0 in
    # UTC): it was created, and the plan pages then failed to load it
    smart_fleet_products(tenant)
    logged_in(client, make_staff(tenant))
    plan = {**SMART_FLEET_PLAN, "prices": [{"currency": "EUR", "effective_from": "0001-01-01T00:00:00+14:00"}]}
    # when
    response = client.post("/app/catalog/plans/new/", {"definition": json.dumps(plan)})
    # then
    assert response.status_code == 200
    assert "<code>prices[0].effective_from</code> Use a date between the years 1900 and 9999." in html(response)
    assert Plan.objects.count() == 0
    assert client.get("/app/catalog/plans/").status_code == 200


def test_plan_json_nested_too_deep_or_holding_control_characters_is_refused(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_products(tenant)
    logged_in(client, make_staff(tenant))
    # 1,000 levels went past the JSON decoder's recursion limit: the page failed (500)
    deep = client.post("/app/catalog/plans/new/", {"definition": '{"code": %s}' % ("[" * 1000 + "]" * 1000)})
    # a control character written as a JSON escape is still one once read
    named = client.post(
        "/app/catalog/plans/new/", {"definition": json.dumps({**SMART_FLEET_PLAN, "name": "Smart\u0001Fleet"})}
    )
    described = client.post(
        "/app/catalog/plans/new/",
        {"definition": json.dumps({**SMART_FLEET_PLAN, "description": "Two lines:\ntracker and platform"})},
    )

    assert deep.status_code == 200
    assert "The JSON is nested more than 32 levels deep." in html(deep)
    assert "Remove the invisible character U+0001 from name" in html(named)
    assert described.status_code == 302  # a description may span lines
    assert list(Plan.objects.values_list("description", flat=True)) == ["Two lines:\ntracker and platform"]


def price_rows(**changes: Any) -> dict[str, Any]:
    """The structured price change of Smart Fleet: the tracker's price, the platform's flat fee and
    the data overage at a unit price."""
    data: dict[str, Any] = {
        "currency": "EUR",
        "effective_from": "2026-11-30T00:00",
        "c0-price": "250.00",
        "c1-model": "flat",
        "c1-amount": "27.50",
        "c2-model": "per_unit",
        "c2-unit_amount": "0.008",
        "c2-min_amount": "",
        "c2-max_amount": "",
    }
    data.update(changes)
    return data


def test_a_price_change_before_1900_is_refused_on_the_form(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_catalog(tenant)
    logged_in(client, make_staff(tenant))

    response = client.post(
        "/app/catalog/plans/smart-fleet/price-versions/new/", price_rows(effective_from="1899-12-31T23:00")
    )

    assert response.status_code == 200
    assert "Use a date between the years 1900 and 9999." in html(response)
    assert PriceVersion.objects.filter(plan__code="smart-fleet").count() == 1


def test_plan_detail_shows_each_version_in_the_tenants_time_zone(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_catalog(tenant)
    logged_in(client, make_staff(tenant))

    with time_machine.travel(datetime(2026, 11, 25, 12, 0, tzinfo=UTC), tick=False):
        created = client.post("/app/catalog/plans/smart-fleet/price-versions/new/", price_rows())
        detail = text(client.get("/app/catalog/plans/smart-fleet/"))

    assert created.status_code == 302
    assert "From the start In effect" in detail
    assert "From 30 Nov 2026, 00:00 CET Scheduled" in detail
    assert "€27.50 flat" in detail
    assert "€0.008 per unit" in detail  # a unit price keeps its places


@time_machine.travel(datetime(2026, 11, 25, 12, 0, tzinfo=UTC), tick=False)
def test_scheduling_a_price_change_reads_the_time_in_the_tenants_time_zone(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_catalog(tenant)
    assert tenant.timezone == "Europe/Paris"
    logged_in(client, make_staff(tenant))
    page = html(client.get("/app/catalog/plans/smart-fleet/"))
    # the form starts from the latest version's prices
    assert 'name="c0-price" value="240.00"' in page
    assert 'type="datetime-local"' in page

    response = client.post(
        "/app/catalog/plans/smart-fleet/price-versions/new/",
        price_rows(currency="eur", regions=["DE", "FR"], **{"c2-max_amount": "500.00"}),
    )

    assert response.status_code == 302
    assert response["Location"] == "/app/catalog/plans/smart-fleet/"
    version = PriceVersion.objects.get(plan__code="smart-fleet", regions_key="DE,FR")
    assert version.effective_from == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
    assert (version.currency, version.regions) == ("EUR", ["DE", "FR"])
    prices = {p.component.product.code: p for p in ComponentPrice.objects.filter(version=version)}
    assert prices["eld-200"].price == Decimal("250")
    assert prices["fleet-platform"].charge == {"model": "flat", "amount": "27.50"}
    assert (prices["data-overage"].charge, prices["data-overage"].max_amount) == (
        {"model": "per_unit", "unit_amount": "0.008"},
        Decimal("500"),
    )
    # a summer date is read with the summer offset (+02:00)
    client.post("/app/catalog/plans/smart-fleet/price-versions/new/", price_rows(effective_from="2027-07-01T00:00"))
    summer = PriceVersion.objects.get(plan__code="smart-fleet", regions_key="", effective_from__isnull=False)
    assert summer.effective_from == datetime(2027, 6, 30, 22, 0, tzinfo=UTC)


@time_machine.travel(datetime(2026, 11, 25, 12, 0, tzinfo=UTC), tick=False)
def test_a_bad_price_change_shows_each_error_on_its_row_and_creates_nothing(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_catalog(tenant)
    logged_in(client, make_staff(tenant))

    response = client.post(
        "/app/catalog/plans/smart-fleet/price-versions/new/",
        price_rows(**{"c0-price": "-1", "c1-amount": ""}),
    )

    assert response.status_code == 200
    body = html(response)
    assert '<small id="id_c0-price_error" role="alert" class="tp-error">Must not be negative.</small>' not in body
    assert '<small id="id_c0-price_error" class="tp-error">Must not be negative.</small>' in body
    assert '<small id="id_c1-amount_error" class="tp-error">This field is required.</small>' in body
    assert PriceVersion.objects.filter(plan__code="smart-fleet").count() == 1


# --- Price calculator ---------------------------------------------------------------------------


def test_calculator_prices_smart_fleet_for_three_devices(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_catalog(tenant)
    logged_in(client, make_staff(tenant, role=Role.FINANCE_VIEWER, email="viewer@acme.test"))
    page = client.get("/app/catalog/calculator/")
    assert page.status_code == 200
    assert 'hx-trigger="change, keyup delay:400ms"' in html(page)
    assert 'hx-target="#quote-result"' in html(page)

    response = client.post("/app/catalog/calculator/", calculator_data())

    assert response.status_code == 200
    body = text(response)
    assert "<html" in html(response)  # without JS: the whole page again
    # 240.00 / 12 = 20.00 x 3; 25.00 x 3; (14000 - 3 x 1024) = 10928 -> 10000 x 0.010 + 928 x 0.005
    assert "Hardware eld-200 ELD-200 tracker, instalment 1/12 3 €20.00 €60.00" in body
    assert "Service fleet-platform Fleet platform 3 €25.00 €75.00" in body
    assert "Usage data-overage Data overage 10,928 — €104.64" in body
    assert "14,000 used · allowance 3,072 · 10,928 billable" in body
    # tier 1 of the graduated charge: its unit price keeps its places, its amount has the currency's 2
    assert "1 0 – 10,000 10,000 €0.01 — €100.00" in body
    assert "2 above 10,000 928 €0.005 — €4.64" in body
    # net 239.64; VAT 20 % = 47.928 -> 47.93; total 287.57
    assert "Net total €239.64" in body
    assert "VAT, Standard rate: 20% of €239.64 €47.93" in body
    assert "Total €287.57" in body


def test_calculator_htmx_request_returns_only_the_result_partial(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_catalog(tenant)
    logged_in(client, make_staff(tenant))

    response = client.post("/app/catalog/calculator/", calculator_data(), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "<html" not in html(response)
    assert "tp-sidebar" not in html(response)
    assert "287.57" in html(response)


def test_calculator_without_region_warns_that_taxes_are_not_included(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_catalog(tenant)
    logged_in(client, make_staff(tenant))

    body = text(client.post("/app/catalog/calculator/", calculator_data(region=""), HTTP_HX_REQUEST="true"))

    assert "Net total €239.64" in body
    assert "Total €239.64" in body
    assert "No country given: taxes not included." in body


def test_calculator_errors_show_in_the_panel_and_never_500(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_catalog(tenant)
    logged_in(client, make_staff(tenant))
    cases = {
        "no price in USD": (calculator_data(currency="USD"), "Plan smart-fleet has no price in USD"),
        "unknown customer": (calculator_data(customer="nobody"), "No customer with external_id nobody."),
        "unknown currency": (calculator_data(currency="ZZZ"), "ZZZ is not an ISO 4217 currency code"),
        "bad devices": (calculator_data(devices="-1"), "Devices"),
        "bad dimensions": (calculator_data(**{"usage-0-dimensions": "region"}), "Write key=value pairs"),
        "unknown plan": (calculator_data(plan="nope"), "Select a valid choice."),
        "broken formset": (calculator_data(**{"usage-TOTAL_FORMS": "x"}), "ManagementForm data is missing"),
    }

    for name, (data, message) in cases.items():
        for htmx in (False, True):
            headers = {"HX-Request": "true"} if htmx else {}
            response = client.post("/app/catalog/calculator/", data, headers=headers)
            assert response.status_code == 200, name
            assert 'role="alert"' in html(response), name
            assert message in html(response), name


def test_calculator_add_row_without_javascript(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    smart_fleet_catalog(tenant)
    logged_in(client, make_staff(tenant))

    response = client.post("/app/catalog/calculator/", {**calculator_data(), "add_row": "1"})

    assert response.status_code == 200
    assert 'name="usage-2-quantity"' in html(response)
    assert 'name="usage-TOTAL_FORMS" value="3"' in html(response)


# --- Isolation and roles ------------------------------------------------------------------------


def test_another_tenants_catalog_is_not_found(
    client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_catalog(other_tenant)
    logged_in(client, make_staff(tenant))

    assert client.get("/app/catalog/plans/smart-fleet/").status_code == 404
    assert client.get("/app/catalog/products/eld-200/edit/").status_code == 404
    assert client.get("/app/catalog/meters/data_mb/edit/").status_code == 404
    assert client.post("/app/catalog/plans/smart-fleet/price-versions/new/", {"currency": "EUR"}).status_code == 404
    assert "eld-200" not in html(client.get("/app/catalog/products/"))
    assert "smart-fleet" not in html(client.get("/app/catalog/plans/"))
    calc = client.post("/app/catalog/calculator/", calculator_data(), HTTP_HX_REQUEST="true")
    assert calc.status_code == 200
    assert "287.57" not in html(calc)
    assert PriceVersion.objects.filter(plan__tenant=other_tenant).count() == 1


def test_finance_viewer_reads_the_catalog_but_cannot_change_it(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_catalog(tenant)
    logged_in(client, make_staff(tenant, role=Role.FINANCE_VIEWER, email="viewer@acme.test"))

    for path in (
        "/app/catalog/products/new/",
        "/app/catalog/products/eld-200/edit/",
        "/app/catalog/meters/new/",
        "/app/catalog/meters/data_mb/edit/",
        "/app/catalog/plans/new/",
    ):
        assert client.get(path).status_code == 403, path
        assert client.post(path, {"code": "x", "name": "X"}).status_code == 403, path
    assert (
        client.post(
            "/app/catalog/tax-rates/set/", {"country": "FR", "tax_category": "standard", "rate": "5"}
        ).status_code
        == 403
    )
    price_change = {"currency": "EUR", "effective_from": "2027-01-01T00:00", "components": "[]"}
    assert client.post("/app/catalog/plans/smart-fleet/price-versions/new/", price_change).status_code == 403
    assert TaxRate.objects.get(tenant=tenant, country="FR").rate == Decimal("20")
    assert PriceVersion.objects.count() == 1

    for path in (
        "/app/catalog/products/",
        "/app/catalog/meters/",
        "/app/catalog/plans/",
        "/app/catalog/tax-rates/",
        "/app/catalog/plans/smart-fleet/",
        "/app/catalog/calculator/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        body = html(response)
        assert "/new/" not in body, path
        assert "/edit/" not in body, path
        assert "/tax-rates/set/" not in body, path
    assert client.post("/app/catalog/calculator/", calculator_data()).status_code == 200


def test_support_agent_can_use_the_calculator(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    smart_fleet_catalog(tenant)
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT, email="support@acme.test"))

    response = client.post("/app/catalog/calculator/", calculator_data(), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "287.57" in html(response)
    assert client.get("/app/catalog/products/new/").status_code == 403


def test_anonymous_is_sent_to_login(client: Client) -> None:
    response = client.get("/app/catalog/calculator/")

    assert response.status_code == 302
    assert response["Location"] == "/app/login/?next=/app/catalog/calculator/"


# --- Navigation and French ----------------------------------------------------------------------


def test_sidebar_has_a_catalog_section_marking_the_current_page(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    logged_in(client, make_staff(tenant))

    body = html(client.get("/app/catalog/meters/"))

    assert "<h6>Catalog</h6>" in body
    assert '<a href="/app/catalog/meters/" aria-current="page">Meters</a>' in body
    assert '<a href="/app/catalog/products/" >Products</a>' in body
    for label in ("Plans", "Tax rates", "Price calculator"):
        assert ">%s</a>" % label in body


def test_catalog_pages_in_french(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    smart_fleet_catalog(tenant)
    logged_in(client, make_staff(tenant))

    products = html(client.get("/app/catalog/products/", HTTP_ACCEPT_LANGUAGE="fr"))
    quote = text(client.post("/app/catalog/calculator/", calculator_data(), HTTP_ACCEPT_LANGUAGE="fr"))

    assert '<html lang="fr"' in products
    assert "<h1>Produits</h1>" in products
    assert "<h6>Catalogue</h6>" in products
    assert "Calculateur de prix" in products
    assert "Nouveau produit" in products
    # amounts are printed the French way
    assert "Total TTC 287,57 €" in quote
    assert "Total HT 239,64 €" in quote
    assert "TVA, Taux normal : 20 % de 239,64 € 47,93 €" in quote
    assert "1 0 – 10 000 10 000 0,01 € — 100,00 €" in quote
