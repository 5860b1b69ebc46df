"""Partner price books: customer override > partner price book > region price > default price.

One plan, "p", a flat 25.00 per device and month by default (EUR), 22.00 in France, 18.00 in the
price book "wholesale" (for every customer of a partner with that book), and a customer override of
15.00 for one customer.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.errors import PriceVersionExists
from catalog.models import Plan
from catalog.selectors import plan_list_partner_visible
from catalog.services import plan_update, price_override_create, price_version_create
from catalog.tests.factories import platform_plan
from catalog.versions import (
    PriceBook,
    component_prices_as_of,
    customer_price_book,
    customers_partners_load,
    price_version_as_of,
)
from customers.models import Customer, Partner
from customers.services import customer_create
from tenancy.actors import Actor
from tenancy.models import Tenant

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
APRIL_15 = datetime(2026, 4, 15, tzinfo=PARIS)
MAY_1 = datetime(2026, 5, 1, tzinfo=PARIS)


def version(tenant: Tenant, plan: Plan, amount: str, **fields: Any) -> None:
    price_version_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        plan=plan,
        data={
            "currency": "EUR",
            **fields,
            "components": [{"product": "platform", "charge": {"model": "flat", "amount": amount}}],
        },
    )


def partner(tenant: Tenant, code: str, price_book: str = "") -> Partner:
    return Partner.objects.create(tenant=tenant, code=code, name=code.title(), currency="EUR", price_book=price_book)


def customer(tenant: Tenant, external_id: str, country: str, partner_: Partner | None = None) -> Customer:
    made = customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        external_id=external_id,
        name=external_id.title(),
        email=f"{external_id}@x.test",
        country=country,
    )
    if partner_ is not None:
        Customer.objects.filter(pk=made.pk).update(partner=partner_)
    return Customer.objects.get(pk=made.pk)


def fee(c: Customer, plan: Plan, at: datetime = APRIL_15) -> tuple[Decimal, str]:
    """The per-device fee of ``c`` on ``plan`` at ``at``, and where it comes from."""
    [resolved] = component_prices_as_of(
        plan=plan,
        currency=c.currency,
        country=c.country,
        at=at,
        customer_id=c.pk,
        price_book=customer_price_book(c),
    )
    assert resolved.charge is not None
    return Decimal(resolved.charge["amount"]), resolved.source


@pytest.fixture
def plan(tenant: Tenant) -> Plan:
    plan = platform_plan(tenant, "p", "25.00")  # the default: 25.00
    version(tenant, plan, "22.00", regions=["FR"])  # France: 22.00
    version(tenant, plan, "18.00", price_book="wholesale")  # the "wholesale" book, every country: 18.00
    return plan


@pytest.mark.django_db
def test_override_beats_partner_book_beats_region_beats_default(tenant: Tenant, plan: Plan) -> None:
    alpnet = partner(tenant, "alpnet", "wholesale")
    direct_fr = customer(tenant, "direct-fr", "FR")
    direct_de = customer(tenant, "direct-de", "DE")
    partner_fr = customer(tenant, "partner-fr", "FR", alpnet)
    partner_de = customer(tenant, "partner-de", "DE", alpnet)
    negotiated = customer(tenant, "negotiated", "FR", alpnet)
    price_override_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        customer=negotiated,
        plan=plan,
        data={"product": "platform", "charge": {"model": "flat", "amount": "15.00"}},
    )
    no_book = customer(tenant, "no-book", "FR", partner(tenant, "retail"))
    # a direct French customer: the French region, 22.00; a direct German one: the default, 25.00
    assert fee(direct_fr, plan) == (Decimal("22.00"), "region")
    assert fee(direct_de, plan) == (Decimal("25.00"), "default")
    # a customer of a partner with the wholesale book: 18.00, in France and in Germany (the book has
    # only a version without regions: it prices every country)
    assert fee(partner_fr, plan) == (Decimal("18.00"), "partner")
    assert fee(partner_de, plan) == (Decimal("18.00"), "partner")
    # the same partner's customer with a negotiated 15.00: the override wins
    assert fee(negotiated, plan) == (Decimal("15.00"), "override")
    # a partner without a book: its customers are priced as direct ones, 22.00 in France
    assert fee(no_book, plan) == (Decimal("22.00"), "region")


@pytest.mark.django_db
def test_a_regional_version_in_a_book_beats_the_books_version_for_every_country(tenant: Tenant, plan: Plan) -> None:
    alpnet = partner(tenant, "alpnet", "wholesale")
    version(tenant, plan, "17.00", price_book="wholesale", regions=["FR"])
    # France inside the book: 17.00; Germany: the book's own 18.00
    assert fee(customer(tenant, "partner-fr", "FR", alpnet), plan) == (Decimal("17.00"), "partner")
    assert fee(customer(tenant, "partner-de", "DE", alpnet), plan) == (Decimal("18.00"), "partner")


@pytest.mark.django_db
def test_a_book_with_only_a_regional_version_leaves_other_countries_to_the_tenants_books(
    tenant: Tenant, plan: Plan
) -> None:
    nordic = partner(tenant, "nordic", "nordic")
    version(tenant, plan, "16.00", price_book="nordic", regions=["SE"])
    assert fee(customer(tenant, "partner-se", "SE", nordic), plan) == (Decimal("16.00"), "partner")
    # France: no version of the "nordic" book prices it: the French region, 22.00
    assert fee(customer(tenant, "partner-fr", "FR", nordic), plan) == (Decimal("22.00"), "region")
    # a book no version names at all: the region and default books, as for direct customers
    ghost = partner(tenant, "ghost", "no-such-book")
    assert fee(customer(tenant, "ghost-de", "DE", ghost), plan) == (Decimal("25.00"), "default")


@pytest.mark.django_db
def test_a_book_version_effective_later_takes_over_from_its_date(tenant: Tenant, plan: Plan) -> None:
    alpnet = partner(tenant, "alpnet", "wholesale")
    version(tenant, plan, "16.50", price_book="wholesale", effective_from="2026-05-01T00:00:00+02:00")
    c = customer(tenant, "partner-fr", "FR", alpnet)
    # before 1 May: 18.00; a period starting 1 May 00:00 Paris: 16.50
    assert fee(c, plan, APRIL_15) == (Decimal("18.00"), "partner")
    assert fee(c, plan, MAY_1) == (Decimal("16.50"), "partner")
    # direct customers never see a book's version: still 22.00 in France after 1 May
    assert fee(customer(tenant, "direct-fr", "FR"), plan, MAY_1) == (Decimal("22.00"), "region")


@pytest.mark.django_db
def test_book_versions_are_never_region_or_default_prices(tenant: Tenant) -> None:
    plan = platform_plan(tenant, "p", "25.00")
    version(tenant, plan, "12.00", price_book="wholesale", effective_from="2026-05-01T00:00:00+02:00")
    # the book's version is later than the default one: a direct customer still gets 25.00
    [chosen, source] = price_version_as_of(plan=plan, currency="EUR", country="FR", at=MAY_1)
    assert (chosen.price_book, source) == ("", "default")
    [chosen, source] = price_version_as_of(plan=plan, currency="EUR", country="FR", at=MAY_1, price_book="wholesale")
    assert (chosen.price_book, source) == ("wholesale", "partner")


@pytest.mark.django_db
def test_the_same_dates_and_regions_may_exist_once_per_book(tenant: Tenant, plan: Plan) -> None:
    # the default book and the "wholesale" book both have a version without regions from the start;
    # another book may have one too, but not a second one in "wholesale"
    version(tenant, plan, "19.00", price_book="resellers")
    with pytest.raises(PriceVersionExists, match="in price book wholesale"):
        version(tenant, plan, "17.00", price_book="wholesale")


@pytest.mark.django_db
def test_partners_of_many_customers_are_read_in_one_query(
    tenant: Tenant, plan: Plan, django_assert_num_queries: Any
) -> None:
    books = [partner(tenant, f"p{i}", f"book-{i}") for i in range(3)]
    ids = [customer(tenant, f"c{i}", "FR", books[i % 3]).pk for i in range(6)] + [customer(tenant, "d", "FR").pk]
    customers = list(Customer.objects.filter(pk__in=ids).order_by("external_id"))
    with django_assert_num_queries(1):
        customers_partners_load(customers)
    with django_assert_num_queries(0):
        assert [customer_price_book(c) for c in customers] == [
            "book-0",
            "book-1",
            "book-2",
            "book-0",
            "book-1",
            "book-2",
            "",
        ]
    # no customer with a partner: nothing to read
    direct = list(Customer.objects.filter(external_id="d"))
    with django_assert_num_queries(0):
        customers_partners_load(direct)


@pytest.mark.django_db
def test_one_loaded_book_resolves_each_customer_with_its_partners_book(tenant: Tenant, plan: Plan) -> None:
    book = PriceBook.load(plan_ids=[plan.pk], currencies=["EUR"])
    amounts = {
        price_book: book.resolve(plan=plan, currency="EUR", country="FR", at=APRIL_15, price_book=price_book)[0].charge
        for price_book in ("", "wholesale")
    }
    assert amounts == {"": {"model": "flat", "amount": "22.00"}, "wholesale": {"model": "flat", "amount": "18.00"}}


@pytest.mark.django_db
def test_partner_visible_plans_in_a_currency(tenant: Tenant, plan: Plan) -> None:
    platform_plan(tenant, "hidden", "30.00")
    usd_only = platform_plan(tenant, "usd-only", "30.00")
    usd_only.price_versions.update(currency="USD")
    for code in ("p", "usd-only"):
        plan_update(tenant=tenant, actor=ACTOR, at=timezone.now(), code=code, partner_visible=True)
    assert [p.code for p in plan_list_partner_visible(tenant=tenant)] == ["p", "usd-only"]
    assert [p.code for p in plan_list_partner_visible(tenant=tenant, currency="EUR")] == ["p"]
    assert [p.code for p in plan_list_partner_visible(tenant=tenant, currency="usd")] == ["usd-only"]


# --- the API -------------------------------------------------------------------------------------


def test_price_versions_take_and_return_their_price_book(api: APIClient, tenant: Tenant, plan: Plan) -> None:
    response = api.post(
        "/api/v1/plans/p/price_versions",
        {
            "currency": "EUR",
            "price_book": "wholesale",
            "regions": ["FR"],
            "components": [{"product": "platform", "charge": {"model": "flat", "amount": "17.00"}}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert (response.json()["price_book"], response.json()["regions"]) == ("wholesale", ["FR"])
    listed = api.get("/api/v1/plans/p/price_versions").json()["results"]
    assert sorted((v["price_book"], ",".join(v["regions"])) for v in listed) == [
        ("", ""),
        ("", "FR"),
        ("wholesale", ""),
        ("wholesale", "FR"),
    ]
    # without price_book: the tenant's own books
    response = api.post(
        "/api/v1/plans/p/price_versions",
        {
            "currency": "EUR",
            "effective_from": "2026-06-01T00:00:00+02:00",
            "components": [{"product": "platform", "charge": {"model": "flat", "amount": "26.00"}}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["price_book"] == ""


@pytest.mark.parametrize("code", ["Wholesale", "-wholesale", "whole sale", "x" * 65, ""])
def test_a_malformed_price_book_code_is_a_422(api: APIClient, tenant: Tenant, plan: Plan, code: str) -> None:
    body = {
        "currency": "EUR",
        "price_book": code,
        "effective_from": "2026-06-01T00:00:00+02:00",
        "components": [{"product": "platform", "charge": {"model": "flat", "amount": "17.00"}}],
    }
    response = api.post("/api/v1/plans/p/price_versions", body, format="json")
    if code == "":
        # empty: the tenant's own books
        assert response.status_code == 201, response.content
        return
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["errors"]] == ["price_book"]


def test_a_price_book_that_is_not_a_string_is_a_422(api: APIClient, tenant: Tenant, plan: Plan) -> None:
    body = {
        "currency": "EUR",
        "price_book": 7,
        "components": [{"product": "platform", "charge": {"model": "flat", "amount": "17.00"}}],
    }
    response = api.post("/api/v1/plans/p/price_versions", body, format="json")
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["errors"]] == ["price_book"]


def test_a_quote_for_a_partners_customer_is_at_the_book_price(api: APIClient, tenant: Tenant, plan: Plan) -> None:
    customer(tenant, "partner-fr", "FR", partner(tenant, "alpnet", "wholesale"))
    response = api.post(
        "/api/v1/price_quotes",
        {"plan": "p", "currency": "EUR", "devices": 2, "customer": "partner-fr", "at": "2026-04-15T00:00:00+02:00"},
        format="json",
    )
    assert response.status_code == 200, response.content
    # 2 devices x 18.00 = 36.00
    assert (response.json()["lines"][0]["amount"], response.json()["price_source"]) == ("36.00", "partner")


def test_plans_are_marked_partner_visible(api: APIClient, tenant: Tenant, plan: Plan) -> None:
    assert api.get("/api/v1/plans/p").json()["partner_visible"] is False
    response = api.patch("/api/v1/plans/p", {"partner_visible": True}, format="json")
    assert response.status_code == 200, response.content
    # partner_visible set, self_service left as it was
    assert (response.json()["partner_visible"], response.json()["self_service"]) == (True, False)
    response = api.patch("/api/v1/plans/p", {"self_service": True}, format="json")
    assert (response.json()["partner_visible"], response.json()["self_service"]) == (True, True)
    assert api.patch("/api/v1/plans/p", {"partner_visible": "yes"}, format="json").status_code == 422
    created = api.post(
        "/api/v1/plans",
        {
            "code": "resale",
            "name": "Resale",
            "partner_visible": True,
            "components": [{"product": "platform", "kind": "service", "charge": {"model": "flat", "amount": "9.00"}}],
            "prices": [{"currency": "EUR"}],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["partner_visible"] is True
    assert sorted(p["code"] for p in api.get("/api/v1/plans").json()["results"] if p["partner_visible"]) == [
        "p",
        "resale",
    ]


@pytest.mark.django_db
def test_a_quote_for_a_book_without_a_customer(tenant: Tenant, plan: Plan) -> None:
    from catalog.quotes import price_quote

    def quoted(**kwargs: Any) -> tuple[Decimal, str]:
        quote = price_quote(tenant=tenant, plan=plan, currency="EUR", devices=3, usage=[], at=APRIL_15, **kwargs)
        return quote.lines[0].amount, quote.price_source

    # 3 devices: wholesale 3 x 18.00 = 54.00 in any country; France without a book 3 x 22.00 = 66.00
    assert quoted(country="DE", price_book="wholesale") == (Decimal("54.00"), "partner")
    assert quoted(country="FR") == (Decimal("66.00"), "region")
