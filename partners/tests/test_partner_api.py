"""The partner API (``/api/v1/partner/``) with a partner's key: its customers (created as its own),
the plans offered to partners, subscriptions of its customers on those plans, device ids bound at
shipment, its customers' current usage. The key is the audit log's actor."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from catalog.services import price_version_create
from customers.models import Customer
from partners.tests.factories import ACTOR, customer_of, partner, partner_client, partner_plan
from subscriptions.models import Device, Subscription
from subscriptions.orders import order_place
from subscriptions.tests.shop import ADDRESS
from tenancy.models import ApiKey, AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")

CUSTOMER: dict[str, Any] = {
    "external_id": "dupont",
    "name": "Transports Dupont",
    "email": "compta@dupont.test",
    "country": "FR",
}


def test_a_partner_creates_and_lists_its_own_customers(tenant: Tenant) -> None:
    alpnet = partner(tenant)
    customer_of(tenant, "direct", None)
    client = partner_client(tenant, alpnet)
    response = client.post("/api/v1/partner/customers", CUSTOMER, format="json", HTTP_IDEMPOTENCY_KEY="c1")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["external_id"], body["partner"], body["currency"]) == ("dupont", "alpnet", "EUR")
    assert Customer.objects.get(tenant=tenant, external_id="dupont").partner == alpnet
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.created", object_id="dupont")
    key = ApiKey.objects.get(tenant=tenant, partner=alpnet)
    assert (entry.actor_type, entry.actor_id, entry.actor_label) == ("api_key", str(key.pk), str(key))
    # the direct customer is not in its list
    assert [c["external_id"] for c in client.get("/api/v1/partner/customers").json()["results"]] == ["dupont"]
    assert client.get("/api/v1/partner/customers/dupont").json()["partner"] == "alpnet"
    # the partner cannot pick another partner for its customer
    other = client.post(
        "/api/v1/partner/customers", {**CUSTOMER, "external_id": "x", "partner": "geosat"}, format="json"
    )
    assert other.status_code == 422
    assert other.json()["errors"] == [{"field": "partner", "code": "unknown_field", "message": "Unknown field."}]


def test_a_partner_sets_no_payment_terms_nor_collection_the_tenants_apply(tenant: Tenant) -> None:
    client = partner_client(tenant, partner(tenant))
    refused = client.post(
        "/api/v1/partner/customers",
        {**CUSTOMER, "payment_terms_days": 90, "collection": "charge_automatically"},
        format="json",
    )
    assert refused.status_code == 422
    assert sorted((e["field"], e["code"]) for e in refused.json()["errors"]) == [
        ("collection", "unknown_field"),
        ("payment_terms_days", "unknown_field"),
    ]
    assert not Customer.objects.filter(tenant=tenant, external_id="dupont").exists()
    created = client.post("/api/v1/partner/customers", CUSTOMER, format="json")
    assert created.status_code == 201, created.content
    customer = Customer.objects.get(tenant=tenant, external_id="dupont")
    # the tenant's defaults: no terms of its own (the tenant's 30 days apply), the tenant's collection
    assert (customer.payment_terms_days, customer.collection) == (None, tenant.default_collection)


# 10 March 2026, 00:30 in Paris: still 9 March in UTC (23:30), the customer's day is the 10th
@time_machine.travel(datetime(2026, 3, 10, 0, 30, tzinfo=PARIS), tick=False)
def test_a_partner_neither_backdates_nor_locks_a_price(tenant: Tenant) -> None:
    alpnet = partner(tenant)
    customer_of(tenant, "dupont", alpnet)
    partner_plan(tenant)
    client = partner_client(tenant, alpnet)
    body = {"external_id": "dupont-fleet", "customer": "dupont", "plan": "partner-fleet"}

    def refused(**fields: Any) -> list[tuple[str, str]]:
        response = client.post("/api/v1/partner/subscriptions", {**body, **fields}, format="json")
        assert response.status_code == 422, response.content
        return sorted((e["field"], e["code"]) for e in response.json()["errors"])

    now = "2026-03-10T00:30:00+01:00"
    assert refused(signed_at=now, price_locked=True) == [("price_locked", "unknown_field")]
    assert refused(signed_at=now, price_locked=False) == [("price_locked", "unknown_field")]
    # 9 March 23:59 in Paris: yesterday for the customer
    assert refused(signed_at="2026-03-09T23:59:00+01:00") == [("signed_at", "in_the_past")]
    # 9 March is today in UTC, but yesterday in the customer's time zone
    assert refused(signed_at=now, starts_on="2026-03-09") == [("starts_on", "in_the_past")]
    assert refused(signed_at="2025-01-01T10:00:00Z", starts_on="2025-01-01") == [
        ("signed_at", "in_the_past"),
        ("starts_on", "in_the_past"),
    ]
    assert not Subscription.objects.filter(tenant=tenant).exists()
    # today: signed at 00:10 in Paris (23:10 UTC the day before), starting today
    created = client.post(
        "/api/v1/partner/subscriptions",
        {**body, "signed_at": "2026-03-09T23:10:00Z", "starts_on": "2026-03-10"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert Subscription.objects.get(tenant=tenant, external_id="dupont-fleet").price_locked is False


def test_the_plans_offered_to_partners_with_their_book_only(tenant: Tenant) -> None:
    alpnet = partner(tenant, price_book="alpnet-book")
    plan = partner_plan(tenant)
    partner_plan(tenant, code="direct-only", visible=False)
    for book, amount in (("alpnet-book", "18.00"), ("geosat-book", "17.00")):
        price_version_create(
            tenant=tenant,
            actor=ACTOR,
            at=timezone.now(),
            plan=plan,
            data={
                "currency": "EUR",
                "price_book": book,
                "components": [{"product": "platform", "charge": {"model": "flat", "amount": amount}}],
            },
        )
    response = partner_client(tenant, alpnet).get("/api/v1/partner/plans")
    assert response.status_code == 200
    [offered] = response.json()["results"]
    assert offered["code"] == "partner-fleet"
    # the default book and its own: not another partner's
    assert sorted(v["price_book"] for v in offered["price_versions"]) == ["", "alpnet-book"]


@time_machine.travel(datetime(2026, 3, 10, 9, 0, tzinfo=PARIS), tick=False)
def test_a_subscription_of_its_customer_on_a_plan_offered_to_partners(tenant: Tenant) -> None:
    alpnet = partner(tenant)
    customer_of(tenant, "dupont", alpnet)
    customer_of(tenant, "direct", None)
    partner_plan(tenant)
    partner_plan(tenant, code="direct-only", visible=False)
    client = partner_client(tenant, alpnet)
    body = {
        "external_id": "dupont-fleet",
        "customer": "dupont",
        "plan": "partner-fleet",
        "signed_at": "2026-03-10T10:00:00+01:00",
        "devices": [{"device_id": "ELD-1"}],
    }
    created = client.post("/api/v1/partner/subscriptions", body, format="json", HTTP_IDEMPOTENCY_KEY="s1")
    assert created.status_code == 201, created.content
    assert (created.json()["customer"], created.json()["plan"]) == ("dupont", "partner-fleet")
    read = client.get("/api/v1/partner/subscriptions/dupont-fleet")
    assert read.status_code == 200
    assert [d["device_id"] for d in read.json()["devices"]] == ["ELD-1"]
    # a plan not offered to partners, and a customer not its own, are refused together
    refused = client.post(
        "/api/v1/partner/subscriptions",
        {**body, "external_id": "other", "customer": "direct", "plan": "direct-only"},
        format="json",
    )
    assert refused.status_code == 422
    assert sorted((e["field"], e["code"]) for e in refused.json()["errors"]) == [
        ("customer", "unknown_customer"),
        ("plan", "unknown_plan"),
    ]
    usage = client.get("/api/v1/partner/customers/dupont/current_usage")
    assert usage.status_code == 200
    assert (usage.json()["customer"], usage.json()["currency"]) == ("dupont", "EUR")


def test_a_partner_binds_a_shipped_device_to_its_customers_slot(tenant: Tenant) -> None:
    alpnet = partner(tenant)
    # ordered in the shop: a slot waiting for its device's id
    plan = partner_plan(tenant, self_service=True)
    order = order_place(
        customer=customer_of(tenant, "dupont", alpnet),
        plan=plan,
        quantity=1,
        shipping_address=ADDRESS,
        actor=ACTOR,
        at=datetime(2026, 3, 10, 10, 0, tzinfo=PARIS),
    )
    [slot] = Device.objects.filter(subscription=order.subscription)
    response = partner_client(tenant, alpnet).post(
        "/api/v1/partner/subscriptions/%s/devices/%s/bind" % (order.subscription.external_id, slot.pk),
        {"device_id": "ELD-0042"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["device_id"] == "ELD-0042"
    assert Device.objects.get(pk=slot.pk).device_id == "ELD-0042"


def test_an_inactive_partners_key_is_refused(tenant: Tenant) -> None:
    alpnet = partner(tenant, status="inactive")
    response = partner_client(tenant, alpnet).get("/api/v1/partner/customers")
    assert response.status_code == 403
