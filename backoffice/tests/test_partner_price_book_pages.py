"""The plan page: partner price books in the price history and the price change form, plans offered
to partners."""

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from backoffice.catalog.price_change import affected, service_dry_run
from catalog.models import Plan, PriceVersion
from catalog.selectors import plan_get
from catalog.services import price_version_create
from catalog.tests.factories import SMART_FLEET_PLAN, smart_fleet_catalog, smart_fleet_products
from customers.models import Customer, Partner
from subscriptions.tests.factories import monthly_fee_customers
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Tenant

StaffMaker = Callable[..., Any]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def price_rows(**changes: Any) -> dict[str, Any]:
    """Smart Fleet's components priced: the tracker 200.00, the platform 20.00 flat, data 0.005 per unit."""
    data: dict[str, Any] = {
        "currency": "EUR",
        "effective_from": "2026-11-30T00:00",
        "c0-price": "200.00",
        "c1-model": "flat",
        "c1-amount": "20.00",
        "c2-model": "per_unit",
        "c2-unit_amount": "0.005",
    }
    data.update(changes)
    return data


@time_machine.travel(NOW, tick=False)
def test_a_price_change_in_a_partner_price_book_is_scheduled_and_shown(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_catalog(tenant)
    client.force_login(make_staff(tenant))
    page = client.get("/app/catalog/plans/smart-fleet/").content.decode()
    assert 'name="price_book"' in page

    response = client.post(
        "/app/catalog/plans/smart-fleet/price-versions/new/", price_rows(price_book="wholesale", regions=["FR"])
    )

    assert response.status_code == 302
    version = PriceVersion.objects.get(plan__code="smart-fleet", price_book="wholesale")
    assert (version.regions, version.currency) == (["FR"], "EUR")
    detail = text(client.get("/app/catalog/plans/smart-fleet/"))
    assert "EUR · partner price book wholesale · regions FR" in detail
    assert "EUR · default price book" in detail
    # the plans list names the book
    assert "EUR · partner price book wholesale · FR" in text(client.get("/app/catalog/plans/"))


@time_machine.travel(NOW, tick=False)
def test_a_malformed_price_book_code_is_refused_on_its_field(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_catalog(tenant)
    client.force_login(make_staff(tenant))

    response = client.post("/app/catalog/plans/smart-fleet/price-versions/new/", price_rows(price_book="Whole Sale"))

    assert response.status_code == 200
    assert "A price book code is 1 to 64 lowercase letters" in text(response)
    assert PriceVersion.objects.filter(plan__code="smart-fleet").count() == 1


def test_a_plan_is_offered_to_partners_and_withdrawn(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    smart_fleet_catalog(tenant)
    client.force_login(make_staff(tenant))
    assert "Offer to partners" in text(client.get("/app/catalog/plans/smart-fleet/"))

    offered = client.post("/app/catalog/plans/smart-fleet/partner-visible/", {"partner_visible": "on"}, follow=True)

    assert "Plan smart-fleet is offered to partners." in text(offered)
    assert Plan.objects.get(tenant=tenant, code="smart-fleet").partner_visible is True
    entry = AuditLogEntry.objects.get(tenant=tenant, action="plan.updated")
    assert (entry.before, entry.after) == ({"partner_visible": False}, {"partner_visible": True})
    client.post("/app/catalog/plans/smart-fleet/partner-visible/", {})
    assert Plan.objects.get(tenant=tenant, code="smart-fleet").partner_visible is False


@pytest.mark.django_db
def test_the_preview_of_a_book_change_lists_only_the_books_customers(tenant: Tenant) -> None:
    # given: c0, c1, c2 on plan p at 10.00 per device; c1 came through a partner with the "wholesale" book
    c0, c1, c2 = monthly_fee_customers(tenant, 3)
    alpnet = Partner.objects.create(tenant=tenant, code="alpnet", name="AlpNet", currency="EUR", price_book="wholesale")
    Customer.objects.filter(pk=c1.pk).update(partner=alpnet)
    plan = plan_get(tenant=tenant, code="p")
    now = timezone.now()

    # when: a dry run of the wholesale book at 8.00
    def create() -> PriceVersion:
        return price_version_create(
            tenant=tenant,
            actor=Actor.system("tests"),
            at=now,
            plan=plan,
            data={
                "currency": "EUR",
                "price_book": "wholesale",
                "components": [{"product": "platform", "charge": {"model": "flat", "amount": "8.00"}}],
            },
        )

    error, preview = service_dry_run(create, lambda v: affected(tenant=tenant, plan=plan, version=v, now=now))

    # then: only c1 changes, 10.00 -> 8.00, and nothing was written
    assert error is None
    assert preview["count"] == 1
    [row] = preview["rows"]
    assert row["customer"].external_id == "c1"
    assert [(c["old"], c["new"]) for c in row["changes"]] == [("10.00", "8.00")]
    assert not PriceVersion.objects.filter(price_book="wholesale").exists()


def test_a_plan_created_from_json_may_be_offered_to_partners(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    smart_fleet_products(tenant)
    client.force_login(make_staff(tenant))

    refused = client.post(
        "/app/catalog/plans/new/", {"definition": json.dumps({**SMART_FLEET_PLAN, "partner_visible": "yes"})}
    )
    created = client.post(
        "/app/catalog/plans/new/", {"definition": json.dumps({**SMART_FLEET_PLAN, "partner_visible": True})}
    )

    assert refused.status_code == 200
    assert "<code>partner_visible</code> Must be true or false." in refused.content.decode()
    assert created.status_code == 302
    assert Plan.objects.get(tenant=tenant, code="smart-fleet").partner_visible is True
