"""Shop orders (portal.md, "Shop"): an order signs a subscription with device slots and announces
itself with ``order.created``; only plans offered in the shop and priced for the customer may be
ordered; a device id is bound to each slot at shipment, and the order is fulfilled once all are.
Transports Dupont (Paris, EUR) orders plan ``fleet-shop`` (subscriptions.tests.shop)."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from standardwebhooks import Webhook

from billing_platform.errors import InvalidInput
from customers.tests.factories import dupont
from subscriptions.errors import DeviceInUse, DeviceNotFound, PlanNotSelfService, SlotAlreadyBound
from subscriptions.models import Device, Order, OrderStatus, SubscriptionStatus
from subscriptions.orders import order_place, slot_bind
from subscriptions.services import device_event_apply, subscription_create
from subscriptions.tests.factories import signed_subscription
from subscriptions.tests.shop import ACTOR, ADDRESS, shop_catalog, shop_customer
from tenancy.models import AuditLogEntry, Tenant
from webhooks.delivery import deliveries_send
from webhooks.models import WebhookEvent
from webhooks.tests.factories import endpoint
from webhooks.tests.receiver import Receiver, receiver

pytestmark = pytest.mark.django_db
__all__ = ["receiver"]
PARIS = ZoneInfo("Europe/Paris")
AT = datetime(2026, 3, 10, 10, 0, tzinfo=PARIS)


def place(tenant: Tenant, quantity: int = 2) -> Order:
    plan = shop_catalog(tenant)
    return order_place(
        customer=shop_customer(tenant), plan=plan, quantity=quantity, shipping_address=ADDRESS, actor=ACTOR, at=AT
    )


def test_an_order_signs_a_subscription_with_slots_and_emits_order_created(tenant: Tenant) -> None:
    # when: 2 devices ordered on 10 March 2026, 10:00 Paris (09:00 UTC)
    order = place(tenant, quantity=2)
    # then: order ORD-000001, placed; its subscription ORD-000001 waits for activation, 2 slots
    assert order.number == "ORD-000001"
    assert order.status == OrderStatus.PLACED
    subscription = order.subscription
    assert subscription.external_id == "ORD-000001"
    assert subscription.status == SubscriptionStatus.PENDING_ACTIVATION
    slots = list(Device.objects.filter(subscription=subscription).order_by("pk"))
    assert [(d.device_id, d.is_slot, d.activated_at) for d in slots] == [("", True, None), ("", True, None)]
    [row] = WebhookEvent.objects.filter(tenant=tenant, type="order.created")
    body = json.loads(row.body)
    assert body == {
        "type": "order.created",
        "timestamp": "2026-03-10T09:00:00Z",
        "data": {
            "id": str(order.pk),
            "number": "ORD-000001",
            "status": "placed",
            "placed_at": "2026-03-10T09:00:00Z",
            "placed_by": "tests",
            "customer": {"external_id": "dupont", "name": "Transports Dupont", "email": "compta@dupont.test"},
            "subscription": "ORD-000001",
            "plan": "fleet-shop",
            "quantity": 2,
            "shipping_address": ADDRESS,
            "slots": sorted(str(d.pk) for d in slots),
        },
    }
    # no device.billing_started for slots: the device cloud cannot tell them apart yet
    assert not WebhookEvent.objects.filter(tenant=tenant, type="device.billing_started").exists()
    assert AuditLogEntry.objects.filter(tenant=tenant, action="order.placed", object_id="ORD-000001").exists()


def test_the_next_order_takes_the_next_number(tenant: Tenant) -> None:
    first = place(tenant, quantity=1)
    second = order_place(
        customer=first.customer, plan=first.plan, quantity=3, shipping_address=ADDRESS, actor=ACTOR, at=AT
    )
    assert (first.number, second.number) == ("ORD-000001", "ORD-000002")
    assert Device.objects.filter(subscription=second.subscription).count() == 3


def test_an_order_number_skips_a_subscription_already_named_like_one(tenant: Tenant) -> None:
    # given: ORD-000001 placed, and staff named a subscription ORD-000002 through the API
    first = place(tenant, quantity=1)
    signed_subscription(tenant, customer=first.customer, plan=first.plan, external_id="ORD-000002", devices=("X",))
    # when: the next order
    second = order_place(
        customer=first.customer, plan=first.plan, quantity=1, shipping_address=ADDRESS, actor=ACTOR, at=AT
    )
    # then: it takes ORD-000003 rather than failing on the name
    assert (second.number, second.subscription.external_id) == ("ORD-000003", "ORD-000003")


def test_a_plan_not_offered_in_the_shop_is_refused(tenant: Tenant) -> None:
    plan = shop_catalog(tenant, self_service=False)
    with pytest.raises(PlanNotSelfService, match="Plan fleet-shop is not offered in the shop.") as caught:
        order_place(customer=shop_customer(tenant), plan=plan, quantity=1, shipping_address=ADDRESS, actor=ACTOR, at=AT)
    assert caught.value.code == "plan_not_self_service"
    assert not Order.objects.exists()


def test_a_plan_with_no_price_in_the_customers_currency_is_refused(tenant: Tenant) -> None:
    # given: the plan is priced in EUR only; this customer pays in USD
    plan = shop_catalog(tenant)
    customer = dupont(tenant, external_id="us-fleet", currency="USD", country="US", timezone="America/New_York")
    with pytest.raises(InvalidInput, match="USD") as caught:
        order_place(customer=customer, plan=plan, quantity=1, shipping_address=ADDRESS, actor=ACTOR, at=AT)
    assert [e.field for e in caught.value.errors] == ["plan"]
    assert not Order.objects.exists()
    assert not Device.objects.exists()


def test_quantity_and_address_are_checked_together(tenant: Tenant) -> None:
    plan = shop_catalog(tenant)
    address = {**ADDRESS, "postal_code": "6900", "city": " ", "country": "FR"}
    with pytest.raises(InvalidInput) as caught:
        order_place(customer=shop_customer(tenant), plan=plan, quantity=0, shipping_address=address, actor=ACTOR, at=AT)
    assert [(e.field, e.code) for e in caught.value.errors] == [
        ("quantity", "out_of_range"),
        ("shipping_address.city", "required"),
        ("shipping_address.postal_code", "invalid"),
    ]
    assert str(caught.value.errors[2].message) == "A postal code in FR is 5 digits, e.g. 75008."


def test_binding_every_slot_fulfils_the_order_and_the_device_cloud_activates_by_id(tenant: Tenant) -> None:
    order = place(tenant, quantity=2)
    first, second = Device.objects.filter(subscription=order.subscription).order_by("pk")
    shipped = datetime(2026, 3, 12, 16, 0, tzinfo=PARIS)
    # when: the first slot is bound
    bound = slot_bind(
        tenant=tenant,
        subscription=order.subscription,
        slot_id=first.pk,
        device_id="A",
        device_type="eld",
        region="EU",
        shipped_at=shipped,
        actor=ACTOR,
        at=shipped,
    )
    # then: A carries the slot's row; the order still waits for the second
    assert (bound.pk, bound.device_id, bound.device_type, bound.region, bound.shipped_at) == (
        first.pk,
        "A",
        "eld",
        "EU",
        shipped,
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.PLACED
    # its hardware was billed from the signature: now that it has an id, the device cloud hears it
    [started] = WebhookEvent.objects.filter(tenant=tenant, type="device.billing_started")
    assert json.loads(started.body)["data"]["device_id"] == "A"
    assert json.loads(started.body)["data"]["trigger"] == "signature"
    # when: the second is bound, and A activated by the device cloud
    slot_bind(tenant=tenant, subscription=order.subscription, slot_id=second.pk, device_id="B", actor=ACTOR, at=shipped)
    device_event_apply(
        tenant=tenant,
        device_id="A",
        event_type="device.activated",
        occurred_at=datetime(2026, 3, 15, 9, 0, tzinfo=PARIS),
        actor=ACTOR,
    )
    # then
    order.refresh_from_db()
    assert (order.status, order.fulfilled_at) == (OrderStatus.FULFILLED, shipped)
    order.subscription.refresh_from_db()
    assert order.subscription.status == SubscriptionStatus.ACTIVE


def test_a_slot_takes_one_device_once_and_an_id_in_use_is_refused(tenant: Tenant) -> None:
    order = place(tenant, quantity=2)
    first, second = Device.objects.filter(subscription=order.subscription).order_by("pk")
    slot_bind(tenant=tenant, subscription=order.subscription, slot_id=first.pk, device_id="A", actor=ACTOR, at=AT)
    with pytest.raises(SlotAlreadyBound, match="Device A is bound to this slot already."):
        slot_bind(tenant=tenant, subscription=order.subscription, slot_id=first.pk, device_id="Z", actor=ACTOR, at=AT)
    with pytest.raises(DeviceInUse, match="Device A already belongs to a live subscription."):
        slot_bind(tenant=tenant, subscription=order.subscription, slot_id=second.pk, device_id="A", actor=ACTOR, at=AT)
    with pytest.raises(InvalidInput, match="device_id is required."):
        slot_bind(tenant=tenant, subscription=order.subscription, slot_id=second.pk, device_id=" ", actor=ACTOR, at=AT)
    second.refresh_from_db()
    assert second.device_id == ""


def test_many_slots_coexist_and_a_device_with_the_id_is_still_unique(tenant: Tenant) -> None:
    # given: two orders, 5 slots in all, none with an id: the partial unique index allows it
    order = place(tenant, quantity=2)
    order_place(customer=order.customer, plan=order.plan, quantity=3, shipping_address=ADDRESS, actor=ACTOR, at=AT)
    assert Device.objects.filter(tenant=tenant, device_id="").count() == 5
    # a staff-signed subscription with a device id still in use elsewhere is refused as before
    slot = Device.objects.filter(subscription=order.subscription).first()
    assert slot is not None
    slot_bind(tenant=tenant, subscription=order.subscription, slot_id=slot.pk, device_id="A", actor=ACTOR, at=AT)
    with pytest.raises(DeviceInUse):
        subscription_create(
            tenant=tenant,
            actor=ACTOR,
            at=AT,
            external_id="other",
            customer=order.customer,
            plan=order.plan,
            signed_at=AT,
            devices=[{"device_id": "A"}],
        )


def test_the_device_cloud_cannot_name_a_slot(tenant: Tenant) -> None:
    # given: slots with no id; a device.shipped for an unknown id binds nothing
    order = place(tenant, quantity=1)
    for device_id in ("", "never-bound"):
        with pytest.raises(DeviceNotFound):
            device_event_apply(
                tenant=tenant, device_id=device_id, event_type="device.shipped", occurred_at=AT, actor=ACTOR
            )
    slot = Device.objects.get(subscription=order.subscription)
    assert (slot.device_id, slot.shipped_at) == ("", None)


def test_order_created_is_delivered_signed_to_a_subscribed_endpoint(tenant: Tenant, receiver: Receiver) -> None:
    # given: an endpoint receiving order.created
    _, secret = endpoint(tenant, receiver.url, events=["order.created"])
    # when: 3 devices are ordered, and the deliveries go out
    order = place(tenant, quantity=3)
    with time_machine.travel(AT, tick=False):
        report = deliveries_send(at=AT)
        [got] = receiver.received
        # then: the receiver verifies it with the endpoint's secret (Standard Webhooks)
        payload = Webhook(secret).verify(got.body, got.headers)
    assert (report.tried, report.delivered) == (1, 1)
    assert payload["type"] == "order.created"
    assert payload["data"]["number"] == order.number == "ORD-000001"
    assert payload["data"]["quantity"] == 3
    assert len(payload["data"]["slots"]) == 3
    assert payload["data"]["shipping_address"]["postal_code"] == "69009"
