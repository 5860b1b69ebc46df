"""Forms that report every error at once, next to its field, keeping what was typed: the customer
form, the structured price change (with its past-date confirmation and its preview of who is
affected), customer overrides, the credit note's lines, and the country, currency and time-zone
selects."""

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client

from catalog.models import ComponentPrice, PriceOverride, PriceVersion
from catalog.quotes import price_quote
from catalog.selectors import plan_get
from catalog.services import price_override_create
from catalog.tests.factories import smart_fleet_catalog
from customers.models import Customer
from customers.services import customer_create
from subscriptions.services import subscription_create
from tenancy.actors import Actor
from tenancy.models import Role, Tenant

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def html(response: Any) -> str:
    return response.content.decode()


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html(response)))


def field_error(page: str, field_id: str) -> str:
    """The error printed next to input ``field_id`` (its ``<id>_error``), which the input names in aria-describedby."""
    match = re.search(r'<small id="%s_error"[^>]*class="tp-error">([^<]*)</small>' % re.escape(field_id), page)
    assert match, "no error next to %s" % field_id
    tag = re.search(r"<(?:input|select|textarea)[^>]*id=\"%s\"[^>]*>" % re.escape(field_id), page)
    assert tag
    assert 'aria-invalid="true"' in tag.group(0)
    assert "%s_error" % field_id in tag.group(0)
    return match.group(1)


def price_change(**changes: str) -> dict[str, str]:
    """The structured price change of the Smart Fleet plan: the tracker's price, the platform's
    flat fee per device, and the data overage's graduated tiers as rows."""
    data = {
        "currency": "EUR",
        "effective_from": "2027-01-01T00:00",
        "c0-price": "240.00",
        "c1-model": "flat",
        "c1-amount": "27.00",
        "c2-model": "graduated",
        "c2-min_amount": "",
        "c2-max_amount": "",
        "c2-tiers-TOTAL_FORMS": "2",
        "c2-tiers-INITIAL_FORMS": "0",
        "c2-tiers-MIN_NUM_FORMS": "0",
        "c2-tiers-MAX_NUM_FORMS": "20",
        "c2-tiers-0-up_to": "10000",
        "c2-tiers-0-unit_amount": "0.010",
        "c2-tiers-0-flat_amount": "",
        "c2-tiers-1-up_to": "",
        "c2-tiers-1-unit_amount": "0.005",
        "c2-tiers-1-flat_amount": "",
    }
    data.update(changes)
    return data


@pytest.fixture
def staff_client(client: Client, tenant: Tenant, make_staff: Any) -> Client:
    client.force_login(make_staff(tenant, role=Role.OWNER))
    return client


def _customer(tenant: Tenant, external_id: str, name: str, *, country: str = "FR") -> Customer:
    return customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=NOW,
        external_id=external_id,
        name=name,
        email="%s@example.test" % external_id,
        country=country,
    )


# --- the structured price change ---------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_the_price_change_is_fields_not_json_and_starts_from_the_prices_in_force(
    staff_client: Client, tenant: Tenant
) -> None:
    smart_fleet_catalog(tenant)

    page = html(staff_client.get("/app/catalog/plans/smart-fleet/"))

    assert 'name="components"' not in page  # no JSON box
    assert 'name="c0-price" value="240.00"' in page
    assert 'name="c1-amount" value="25.00"' in page
    assert 'name="c2-tiers-0-up_to" value="10000"' in page
    assert 'name="c2-tiers-0-unit_amount" value="0.010"' in page
    assert 'name="c2-tiers-1-unit_amount" value="0.005"' in page
    assert '<option value="EUR" selected>' in page


@time_machine.travel(NOW, tick=False)
def test_a_future_price_change_is_created_from_the_rows(staff_client: Client, tenant: Tenant) -> None:
    smart_fleet_catalog(tenant)

    response = staff_client.post("/app/catalog/plans/smart-fleet/price-versions/new/", price_change())

    assert response.status_code == 302, text(response)
    version = PriceVersion.objects.get(plan__code="smart-fleet", effective_from__isnull=False)
    assert version.effective_from == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)  # 1 Jan 00:00 Paris
    prices = {p.component.product.code: p for p in ComponentPrice.objects.filter(version=version)}
    assert prices["eld-200"].price == Decimal("240")
    assert prices["fleet-platform"].charge == {"model": "flat", "amount": "27.00"}
    assert prices["data-overage"].charge == {
        "model": "graduated",
        "tiers": [
            {"up_to": "10000", "unit_amount": "0.010", "flat_amount": "0"},
            {"up_to": None, "unit_amount": "0.005", "flat_amount": "0"},
        ],
    }


@time_machine.travel(NOW, tick=False)
def test_price_change_errors_come_in_one_pass_next_to_their_row_and_tier(staff_client: Client, tenant: Tenant) -> None:
    smart_fleet_catalog(tenant)

    response = staff_client.post(
        "/app/catalog/plans/smart-fleet/price-versions/new/",
        price_change(**{"c0-price": "-1", "c1-amount": "abc", "c2-tiers-1-up_to": "5000", "currency": "France"}),
    )

    assert response.status_code == 200
    page = html(response)
    assert field_error(page, "id_c0-price") == "Must not be negative."
    assert "decimal" in field_error(page, "id_c1-amount")
    assert field_error(page, "id_c2-tiers-1-up_to")  # the last tier has no bound
    assert "not an ISO 4217 currency code" in field_error(page, "id_currency")
    # what was typed is still there, and the summary links to each field
    assert 'name="c1-amount" value="abc"' in page
    assert 'name="c2-tiers-1-up_to" value="5000"' in page
    assert 'href="#id_c0-price"' in page
    assert 'href="#id_currency"' in page
    assert PriceVersion.objects.count() == 1


@time_machine.travel(NOW, tick=False)
def test_a_past_date_needs_its_confirmation_and_shows_who_is_affected(staff_client: Client, tenant: Tenant) -> None:
    # given: two EUR subscriptions on Smart Fleet at 25.00 per device, one of them with an override at 20.00
    plan = smart_fleet_catalog(tenant, at=datetime(2025, 12, 1, tzinfo=UTC))
    berlin = _customer(tenant, "berlin", "Berlin GmbH", country="DE")
    paris = _customer(tenant, "paris", "Paris SA")
    for customer in (berlin, paris):
        subscription_create(
            tenant=tenant,
            actor=ACTOR,
            at=NOW,
            customer=customer,
            plan=plan,
            external_id="sub-%s" % customer.external_id,
            signed_at=datetime(2026, 1, 5, tzinfo=UTC),
        )
    price_override_create(
        tenant=tenant,
        actor=ACTOR,
        at=NOW,
        customer=berlin,
        plan=plan,
        data={"product": "fleet-platform", "charge": {"model": "flat", "amount": "20.00"}},
    )
    data = price_change(effective_from="2026-01-01T00:00")

    # when: a version dated 1 January 2026, in the past
    warned = staff_client.post("/app/catalog/plans/smart-fleet/price-versions/new/", data)

    # then: a warning, the affected subscriptions, and nothing created
    assert warned.status_code == 200
    page = text(warned)
    assert "This version takes effect on 1 Jan 2026, 00:00 CET, in the past: invoices already issued" in page
    assert "2 live subscriptions in EUR get a new price." not in page
    # paris moves 25.00 -> 27.00 per device; berlin keeps its override of 20.00 on the platform fee
    assert "1 live subscription in EUR gets a new price." in page
    assert "sub-paris Paris SA fleet-platform per device 25.00 → 27.00" in page
    assert "sub-berlin" not in page
    assert 'name="confirm_past"' in html(warned)
    assert PriceVersion.objects.count() == 1

    # without the box ticked, still nothing
    unconfirmed = staff_client.post("/app/catalog/plans/smart-fleet/price-versions/new/", {**data, "step": "confirm"})
    assert unconfirmed.status_code == 200
    assert "Tick this box" in field_error(html(unconfirmed), "id_confirm_past")
    assert PriceVersion.objects.count() == 1

    # with it, the version is created
    confirmed = staff_client.post(
        "/app/catalog/plans/smart-fleet/price-versions/new/", {**data, "step": "confirm", "confirm_past": "on"}
    )
    assert confirmed.status_code == 302
    assert PriceVersion.objects.filter(effective_from=datetime(2025, 12, 31, 23, 0, tzinfo=UTC)).count() == 1


@time_machine.travel(NOW, tick=False)
def test_add_a_tier_row_without_javascript_keeps_what_was_typed(staff_client: Client, tenant: Tenant) -> None:
    smart_fleet_catalog(tenant)

    response = staff_client.post(
        "/app/catalog/plans/smart-fleet/price-versions/new/", price_change(add_tier="2", **{"c1-amount": "26.00"})
    )

    page = html(response)
    assert response.status_code == 200
    assert 'name="c2-tiers-2-up_to"' in page
    assert 'name="c1-amount" value="26.00"' in page
    assert PriceVersion.objects.count() == 1


# --- customer overrides ---------------------------------------------------------------------------


def _platform_quote(tenant: Tenant, customer: Customer, at: datetime) -> Decimal:
    """The platform fee of 2 devices on Smart Fleet for ``customer``, as the price calculator quotes it."""
    quote = price_quote(
        tenant=tenant,
        plan=plan_get(tenant=tenant, code="smart-fleet"),
        currency="EUR",
        country=customer.country,
        devices=2,
        usage=[],
        at=at,
        customer=customer,
    )
    return sum((line.amount for line in quote.lines if line.product == "fleet-platform"), Decimal(0))


def test_an_override_is_made_and_ended_on_the_customers_page(staff_client: Client, tenant: Tenant) -> None:
    # given: Smart Fleet's platform fee at 25.00 per device
    plan = smart_fleet_catalog(tenant, at=datetime(2026, 1, 1, tzinfo=UTC))
    paris = _customer(tenant, "paris", "Paris SA")
    platform = plan.components.get(product__code="fleet-platform")
    with time_machine.travel(NOW, tick=False):
        assert _platform_quote(tenant, paris, NOW) == Decimal("50.00")  # 2 x 25.00
        page = staff_client.get("/app/customers/paris/overrides/?component=%s" % platform.pk)
        assert 'name="o-amount"' in html(page)

        # when: an override of 20.00 per device from 1 December, with a bad amount first
        refused = staff_client.post(
            "/app/customers/paris/overrides/new/",
            {"component": str(platform.pk), "o-model": "flat", "o-amount": "-3", "effective_from": "2026-12-01T00:00"},
        )
        assert refused.status_code == 200
        assert field_error(html(refused), "id_o-amount") == "Must not be negative."
        assert 'name="effective_from" value="2026-12-01T00:00"' in html(refused)
        # 1 December is before today (7 December): in the same pass, the date asks to be confirmed
        assert field_error(
            html(refused),
            "id_confirm_past",
        ).startswith("This date is in the past")
        typed = {
            "component": str(platform.pk),
            "o-model": "flat",
            "o-amount": "20.00",
            "effective_from": "2026-12-01T00:00",
        }
        unconfirmed = staff_client.post("/app/customers/paris/overrides/new/", typed)
        assert unconfirmed.status_code == 200
        assert field_error(html(unconfirmed), "id_confirm_past").startswith("This date is in the past")
        assert not PriceOverride.objects.filter(customer=paris).exists()  # nothing made until confirmed
        made = staff_client.post("/app/customers/paris/overrides/new/", {**typed, "confirm_past": "on"})
        assert made.status_code == 302

        # then: the quote uses it: 2 x 20.00
        assert _platform_quote(tenant, paris, NOW) == Decimal("40.00")
        listed = text(staff_client.get("/app/customers/paris/overrides/"))
        assert "€20.00 flat" in listed
        assert "In effect" in listed

        # when: it ends on 1 January 2027
        override = PriceOverride.objects.get(customer=paris)
        ended = staff_client.post(
            "/app/customers/paris/overrides/%s/end/" % override.pk,
            {"end-%s-effective_from" % override.pk: "2027-01-01T00:00"},
        )
        assert ended.status_code == 302

    # then: December keeps 20.00, January is back at the book's 25.00
    assert _platform_quote(tenant, paris, datetime(2026, 12, 15, tzinfo=UTC)) == Decimal("40.00")
    assert _platform_quote(tenant, paris, datetime(2027, 1, 15, tzinfo=UTC)) == Decimal("50.00")  # 2 x 25.00
    assert PriceOverride.objects.filter(customer=paris).count() == 2  # the history stays


@time_machine.travel(NOW, tick=False)
def test_ending_needs_a_date_after_the_override_started(staff_client: Client, tenant: Tenant) -> None:
    plan = smart_fleet_catalog(tenant)
    paris = _customer(tenant, "paris", "Paris SA")
    override = price_override_create(
        tenant=tenant,
        actor=ACTOR,
        at=NOW,
        customer=paris,
        plan=plan,
        data={
            "product": "fleet-platform",
            "charge": {"model": "flat", "amount": "20.00"},
            "effective_from": "2026-12-01T00:00:00+01:00",
        },
    )

    response = staff_client.post(
        "/app/customers/paris/overrides/%s/end/" % override.pk,
        {"end-%s-effective_from" % override.pk: "2026-11-01T00:00"},
    )

    assert response.status_code == 200
    assert field_error(html(response), "id_end-%s-effective_from" % override.pk) == (
        "No negotiated price is in effect before this date."
    )
    assert PriceOverride.objects.count() == 1


def test_another_tenants_customer_has_no_overrides_page(
    staff_client: Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    _customer(other_tenant, "globex-paris", "Globex Paris")

    assert staff_client.get("/app/customers/globex-paris/overrides/").status_code == 404
    assert staff_client.post("/app/customers/globex-paris/overrides/new/", {}).status_code == 404


# --- the customer form and the selects ------------------------------------------------------------


def customer_form(**changes: str) -> dict[str, str]:
    data = {
        "external_id": "dupont",
        "name": "Transports Dupont",
        "email": "compta@dupont.test",
        "country": "FR",
        "currency": "EUR",
        "timezone": "Europe/Paris",
        "language": "fr",
        "tax_id": "",
        "address_line1": "",
        "address_line2": "",
        "postal_code": "",
        "city": "",
        "billing_day": "",
    }
    data.update(changes)
    return data


def test_the_customer_form_reports_every_kind_of_error_at_once(staff_client: Client, tenant: Tenant) -> None:
    # given: "dupont" is taken
    _customer(tenant, "dupont", "Dupont (the first)")

    # when: a form with a field error (the email), a service rule (the VAT number's checksum), an
    # address rule (a French postal code is 5 digits), and the taken external ID
    response = staff_client.post(
        "/app/customers/new/",
        customer_form(
            email="not-an-email",
            tax_id="FR00000000000",
            address_line1="1 rue de la Paix",
            postal_code="7500",
            city="Paris",
        ),
    )

    # then: all four in one response, each next to its field, and what was typed kept
    assert response.status_code == 200
    page = html(response)
    assert field_error(page, "id_email") == "Enter a valid email address."
    assert field_error(page, "id_tax_id") == "This is not a valid EU VAT number for the country chosen."
    assert "5 digits" in field_error(page, "id_postal_code")
    assert field_error(page, "id_external_id") == "Another customer already has this external ID."
    for typed in ('value="not-an-email"', 'value="FR00000000000"', 'value="7500"', 'value="1 rue de la Paix"'):
        assert typed in page
    assert "data-error-summary" in page
    assert 'href="#id_tax_id"' in page
    assert Customer.objects.filter(tenant=tenant).count() == 1


def test_the_country_select_refuses_a_name_and_takes_the_code(staff_client: Client, tenant: Tenant) -> None:
    page = html(staff_client.get("/app/customers/new/"))
    assert '<option value="FR">France — FR</option>' in page
    assert '<option value="Europe/Paris" selected>Paris</option>' in page

    refused = staff_client.post("/app/customers/new/", customer_form(country="France"))

    assert refused.status_code == 200
    assert field_error(html(refused), "id_country") == (
        "Choose a country from the list (France is not an ISO 3166 country code)."
    )
    assert not Customer.objects.filter(tenant=tenant).exists()

    created = staff_client.post("/app/customers/new/", customer_form(country="FR"))

    assert created.status_code == 302
    assert Customer.objects.get(tenant=tenant, external_id="dupont").country == "FR"


def test_the_selects_speak_french(staff_client: Client, tenant: Tenant) -> None:
    staff_client.cookies["django_language"] = "fr"

    page = html(staff_client.get("/app/customers/new/", HTTP_ACCEPT_LANGUAGE="fr"))

    assert '<option value="DE">Allemagne — DE</option>' in page
    assert "EUR — euro" in page


def test_the_seller_country_and_tax_rate_country_are_selects(staff_client: Client, tenant: Tenant) -> None:
    refused = staff_client.post(
        "/app/catalog/tax-rates/set/", {"country": "France", "tax_category": "standard", "rate": "20"}
    )

    assert refused.status_code == 200
    assert "France is not an ISO 3166 country code" in html(refused)
    assert '<select name="country"' in html(staff_client.get("/app/catalog/tax-rates/"))


@time_machine.travel(NOW, tick=False)
def test_a_viewer_sees_the_overrides_but_cannot_make_or_end_one(
    client: Client, tenant: Tenant, make_staff: Any, other_tenant: Tenant
) -> None:
    plan = smart_fleet_catalog(tenant)
    paris = _customer(tenant, "paris", "Paris SA")
    override = price_override_create(
        tenant=tenant,
        actor=ACTOR,
        at=NOW,
        customer=paris,
        plan=plan,
        data={"product": "fleet-platform", "charge": {"model": "flat", "amount": "20.00"}},
    )
    client.force_login(make_staff(tenant, role=Role.FINANCE_VIEWER, email="viewer@acme.test"))

    page = client.get("/app/customers/paris/overrides/")

    assert page.status_code == 200
    assert "€20.00 flat" in text(page)
    assert "End it" not in text(page)
    assert client.post("/app/customers/paris/overrides/new/", {"component": "x"}).status_code == 403
    end = "/app/customers/paris/overrides/%s/end/" % override.pk
    assert client.post(end, {"end-%s-effective_from" % override.pk: "2027-01-01T00:00"}).status_code == 403
    assert PriceOverride.objects.count() == 1
    # another tenant's owner does not find this customer's override
    client.force_login(make_staff(other_tenant, role=Role.OWNER, email="owner@globex.test"))
    assert client.post(end, {"end-%s-effective_from" % override.pk: "2027-01-01T00:00"}).status_code == 404


@time_machine.travel(NOW, tick=False)
def test_the_subscription_form_reports_its_errors_in_one_pass(staff_client: Client, tenant: Tenant) -> None:
    # given: Smart Fleet is priced in EUR only; "sub-1" is taken; the new customer pays in USD
    plan = smart_fleet_catalog(tenant, at=datetime(2026, 1, 1, tzinfo=UTC))
    paris = _customer(tenant, "paris", "Paris SA")
    subscription_create(
        tenant=tenant, actor=ACTOR, at=NOW, customer=paris, plan=plan, external_id="sub-1", signed_at=NOW
    )
    customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=NOW,
        external_id="nyc",
        name="NYC Inc",
        email="n@x.test",
        country="US",
        currency="USD",
        timezone="America/New_York",
    )

    # when: the taken ID, the plan without a USD price, and a start date that is no date
    response = staff_client.post(
        "/app/subscriptions/new/",
        {
            "customer": "nyc",
            "plan": "smart-fleet",
            "external_id": "sub-1",
            "signed_at": "2026-12-07T10:00",
            "starts_on": "2026-13-01",
            "devices": "",
        },
    )

    # then: the service's two rules are said with the field's error, each on its field
    assert response.status_code == 200
    page = html(response)
    assert "Another subscription already has this external ID." in field_error(page, "id_external_id")
    assert field_error(page, "id_plan") == (
        "This plan has no price in USD, the customer&#x27;s currency, on 2026-12-07."
    )
    assert field_error(page, "id_starts_on") == "Enter a valid date."
    assert 'value="sub-1"' in page


@time_machine.travel(NOW, tick=False)
def test_choosing_another_charge_model_shows_its_fields_without_checking(staff_client: Client, tenant: Tenant) -> None:
    smart_fleet_catalog(tenant)

    # the platform fee goes from flat to volume tiers: two empty tier rows to fill in, no error yet
    response = staff_client.post(
        "/app/catalog/plans/smart-fleet/price-versions/new/", price_change(refresh="1", **{"c1-model": "volume"})
    )

    page = html(response)
    assert response.status_code == 200
    assert 'name="c1-tiers-0-up_to"' in page
    assert 'name="c1-tiers-1-up_to"' in page
    assert 'name="c1-amount"' not in page
    assert "data-error-summary" not in page
    filled = price_change(
        **{
            "c1-model": "volume",
            "c1-tiers-TOTAL_FORMS": "2",
            "c1-tiers-INITIAL_FORMS": "0",
            "c1-tiers-0-up_to": "10",
            "c1-tiers-0-unit_amount": "25.00",
            "c1-tiers-1-up_to": "",
            "c1-tiers-1-unit_amount": "22.00",
        }
    )
    assert staff_client.post("/app/catalog/plans/smart-fleet/price-versions/new/", filled).status_code == 302
    version = PriceVersion.objects.get(effective_from__isnull=False)
    assert ComponentPrice.objects.get(version=version, component__product__code="fleet-platform").charge == {
        "model": "volume",
        "tiers": [
            {"up_to": "10", "unit_amount": "25.00", "flat_amount": "0"},
            {"up_to": None, "unit_amount": "22.00", "flat_amount": "0"},
        ],
    }


def test_a_change_to_a_usage_charges_maximum_alone_is_a_change_the_preview_shows() -> None:
    from decimal import Decimal as D

    from backoffice.catalog.price_change import _terms, charge_text
    from catalog.versions import ResolvedPrice

    # given: 0.01 per MB, capped at 50.00, then at 40.00: same charge, another maximum
    charge = {"model": "per_unit", "unit_amount": "0.010"}
    old = ResolvedPrice(None, "default", None, None, charge, None, D("50.00"))  # type: ignore[arg-type]
    new = ResolvedPrice(None, "default", None, None, charge, None, D("40.00"))  # type: ignore[arg-type]
    # then: billing charges them differently, so the preview counts the subscription, in words
    assert _terms(old) != _terms(new)
    assert (charge_text(old, "EUR"), charge_text(new, "EUR")) == (
        "0.01 per unit (maximum 50.00)",
        "0.01 per unit (maximum 40.00)",
    )
