"""The shop's orders in the back-office (Billing → Orders), through Django's test client: the list
and its status filter, an order's page with its invoice and slots, binding a device per slot until
the order is fulfilled, form errors, roles and tenant isolation; and offering a plan in the shop
from the plan's page."""

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from catalog.models import Plan
from invoicing.services.orders import order_place_and_invoice
from subscriptions.models import Device, Order, OrderStatus
from subscriptions.tests.shop import ACTOR, ADDRESS, shop_catalog, shop_customer
from tenancy.models import AuditLogEntry, Role, Tenant

pytestmark = pytest.mark.django_db
StaffMaker = Callable[..., Any]
PARIS = ZoneInfo("Europe/Paris")
ORDERED_AT = datetime(2026, 3, 10, 10, 0, tzinfo=PARIS)
NOW = datetime(2026, 3, 12, 16, 0, tzinfo=PARIS)


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def ordered(tenant: Tenant, quantity: int = 2) -> Order:
    plan = shop_catalog(tenant)
    with time_machine.travel(ORDERED_AT, tick=False):
        order, _ = order_place_and_invoice(
            customer=shop_customer(tenant),
            plan=plan,
            quantity=quantity,
            shipping_address=ADDRESS,
            actor=ACTOR,
            at=ORDERED_AT,
        )
    return order


def slots(order: Order) -> list[Device]:
    return list(Device.objects.filter(subscription=order.subscription).order_by("added_at", "pk"))


@time_machine.travel(NOW, tick=False)
def test_the_list_filters_by_status_and_the_page_shows_slots_and_the_invoice(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    order = ordered(tenant, quantity=2)
    client.force_login(make_staff(tenant, role=Role.SUPPORT_AGENT, email="support@acme.test"))
    # when: the list, all and fulfilled only
    page = text(client.get("/app/billing/orders/"))
    fulfilled = text(client.get("/app/billing/orders/?status=fulfilled"))
    # then
    assert "ORD-000001" in page
    assert "Transports Dupont" in page
    assert "Lyon (FR)" in page
    assert "ORD-000001" not in fulfilled
    assert "No order matches." in fulfilled
    # when: the order's page
    response = client.get("/app/billing/orders/%s/" % order.pk)
    body = text(response)
    # then: 2 slots not yet shipped, the invoice of 2 x 240.00 + VAT 20 % = 576.00; no bind form for support
    assert response.status_code == 200
    assert body.count("slot, not yet shipped") == 2
    assert "2 ordered, 2 not yet shipped" in body
    assert "576.00" in body
    assert "4 rue des Docks" in body
    assert "Bind the device" not in body


@time_machine.travel(NOW, tick=False)
def test_binding_every_slot_fulfils_the_order(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    order = ordered(tenant, quantity=2)
    first, second = slots(order)
    client.force_login(make_staff(tenant, role=Role.FINANCE_ADMIN, email="admin@acme.test"))
    assert "Bind the device shipped for slot 1" in text(client.get("/app/billing/orders/%s/" % order.pk))
    # when: slot 1 gets A, shipped 12 March 16:00 Paris
    prefix = "slot-%s-" % first.pk
    response = client.post(
        "/app/billing/orders/%s/slots/%s/bind/" % (order.pk, first.pk),
        {prefix + "device_id": "A", prefix + "device_type": "eld", prefix + "shipped_at": "2026-03-12T16:00"},
        follow=True,
    )
    # then
    assert "Device A bound to the slot." in text(response)
    first.refresh_from_db()
    assert (first.device_id, first.device_type, first.shipped_at) == (
        "A",
        "eld",
        datetime(2026, 3, 12, 15, 0, tzinfo=ZoneInfo("UTC")),
    )
    # when: slot 2 gets B
    prefix = "slot-%s-" % second.pk
    response = client.post(
        "/app/billing/orders/%s/slots/%s/bind/" % (order.pk, second.pk), {prefix + "device_id": "B"}, follow=True
    )
    # then: fulfilled
    assert "order ORD-000001 is fulfilled" in text(response)
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert AuditLogEntry.objects.filter(tenant=tenant, action="device.bound").count() == 2
    # and the subscription page shows the devices and the order
    subscription_page = text(client.get("/app/subscriptions/ORD-000001/"))
    assert "ORD-000001" in subscription_page
    assert "slot, not yet shipped" not in subscription_page


@time_machine.travel(NOW, tick=False)
def test_binding_errors_stay_on_the_form_and_bind_nothing(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    order = ordered(tenant, quantity=2)
    first, second = slots(order)
    client.force_login(make_staff(tenant, role=Role.FINANCE_ADMIN, email="admin@acme.test"))
    url = "/app/billing/orders/%s/slots/%s/bind/" % (order.pk, first.pk)
    client.post(url, {"slot-%s-device_id" % first.pk: "A"})
    # when: B's slot with A's id, then an empty id
    taken = client.post(
        "/app/billing/orders/%s/slots/%s/bind/" % (order.pk, second.pk), {"slot-%s-device_id" % second.pk: "A"}
    )
    empty = client.post(
        "/app/billing/orders/%s/slots/%s/bind/" % (order.pk, second.pk), {"slot-%s-device_id" % second.pk: ""}
    )
    # then
    assert taken.status_code == 400
    assert "Device A already belongs to a live subscription." in text(taken)
    assert empty.status_code == 400
    assert "This field is required." in text(empty)
    second.refresh_from_db()
    assert second.device_id == ""


@time_machine.travel(NOW, tick=False)
def test_readers_cannot_bind_and_another_tenant_sees_nothing(
    client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    order = ordered(tenant, quantity=1)
    [slot] = slots(order)
    client.force_login(make_staff(tenant, role=Role.FINANCE_VIEWER, email="viewer@acme.test"))
    response = client.post(
        "/app/billing/orders/%s/slots/%s/bind/" % (order.pk, slot.pk), {"slot-%s-device_id" % slot.pk: "A"}
    )
    assert response.status_code == 403
    outsider = Client()
    outsider.force_login(make_staff(other_tenant, email="owner@other.test"))
    assert outsider.get("/app/billing/orders/%s/" % order.pk).status_code == 404
    assert outsider.get("/app/billing/orders/not-a-uuid/").status_code == 404
    assert "ORD-000001" not in text(outsider.get("/app/billing/orders/"))
    slot.refresh_from_db()
    assert slot.device_id == ""


def test_a_plan_is_offered_in_the_shop_from_its_page(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    shop_catalog(tenant, self_service=False)
    client.force_login(make_staff(tenant, role=Role.FINANCE_ADMIN, email="admin@acme.test"))
    assert "Offer in the shop" in text(client.get("/app/catalog/plans/fleet-shop/"))
    response = client.post("/app/catalog/plans/fleet-shop/self-service/", {"self_service": "on"}, follow=True)
    assert "Plan fleet-shop is offered in the customer portal" in text(response)
    assert Plan.objects.get(tenant=tenant, code="fleet-shop").self_service is True
    response = client.post("/app/catalog/plans/fleet-shop/self-service/", {}, follow=True)
    assert "Stop offering in the shop" not in text(response)
    assert Plan.objects.get(tenant=tenant, code="fleet-shop").self_service is False
    assert AuditLogEntry.objects.filter(tenant=tenant, action="plan.updated").count() == 2
