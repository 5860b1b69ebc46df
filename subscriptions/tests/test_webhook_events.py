"""Subscriptions' outbound webhook events, written in the transaction of their change:
subscription.created, subscription.cancelled, and device.billing_started when a device starts
being billed (at signature, shipment or activation, per its plan)."""

import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from catalog.services import plan_create, product_create
from catalog.tests.factories import platform_plan
from customers.tests.factories import dupont
from subscriptions.changes import subscription_change
from subscriptions.models import Subscription
from subscriptions.services import device_event_apply
from subscriptions.tests.factories import (
    SMART_FLEET_ACTIVATIONS,
    signed_subscription,
    smart_fleet,
    smart_fleet_activate,
)
from tenancy.actors import Actor
from tenancy.models import Tenant
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")


def events(tenant: Tenant, event_type: str) -> list[dict[str, Any]]:
    rows = WebhookEvent.objects.filter(tenant=tenant, type=event_type).order_by("created_at", "body")
    return [json.loads(row.body) for row in rows]


def billing_started(tenant: Tenant) -> list[tuple[str, str, str]]:
    return [
        (e["data"]["device_id"], e["data"]["trigger"], e["data"]["billing_started_at"])
        for e in events(tenant, "device.billing_started")
    ]


def test_signing_smart_fleet_emits_the_subscription_and_its_devices_billed_from_signature(tenant: Tenant) -> None:
    # given/when: billing.md's Smart Fleet, signed 10 March 2026 10:00 Paris (09:00 UTC), devices A, B, C;
    # its ELD hardware is billed from the signature
    subscription = smart_fleet(tenant)
    # then
    [created] = events(tenant, "subscription.created")
    assert created == {
        "type": "subscription.created",
        "timestamp": "2026-03-10T09:00:00Z",
        "data": {
            "id": str(subscription.pk),
            "external_id": "dupont-fleet",
            "customer": "dupont",
            "plan": "smart-fleet",
            "status": "pending_activation",  # its platform fee waits for the device cloud
            "signed_at": "2026-03-10T09:00:00Z",
            "starts_at": "2026-03-09T23:00:00Z",  # 10 March, local midnight
            "commitment_ends_at": "2027-03-09T23:00:00Z",  # 12 months
            "devices": ["A", "B", "C"],
        },
    }
    assert billing_started(tenant) == [
        ("A", "signature", "2026-03-10T09:00:00Z"),
        ("B", "signature", "2026-03-10T09:00:00Z"),
        ("C", "signature", "2026-03-10T09:00:00Z"),
    ]
    [event] = events(tenant, "device.billing_started")[:1]
    assert event["data"] == {
        "device_id": "A",
        "subscription": "dupont-fleet",
        "customer": "dupont",
        "plan": "smart-fleet",
        "trigger": "signature",
        "billing_started_at": "2026-03-10T09:00:00Z",
    }
    # their activations start no billing that had not started: nothing more is sent
    smart_fleet_activate(tenant)
    assert len(events(tenant, "device.billing_started")) == 3


def test_a_device_whose_fee_starts_on_activation_starts_being_billed_when_activated(tenant: Tenant) -> None:
    # given: a per-device fee from each device's activation
    plan = platform_plan(tenant, "connect", "9.00", starts_on="activation")
    signed_subscription(tenant, customer=dupont(tenant), plan=plan, devices=("A", "B"))
    assert billing_started(tenant) == []
    # when: A is shipped (no trigger of this plan), then activated on 15 March 09:00 Paris
    shipped = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)
    device_event_apply(tenant=tenant, device_id="A", event_type="device.shipped", occurred_at=shipped, actor=ACTOR)
    assert billing_started(tenant) == []
    activated = SMART_FLEET_ACTIVATIONS["A"]
    device_event_apply(tenant=tenant, device_id="A", event_type="device.activated", occurred_at=activated, actor=ACTOR)
    # then: once, with the activation instant (08:00 UTC)
    assert billing_started(tenant) == [("A", "activation", "2026-03-15T08:00:00Z")]
    assert events(tenant, "device.billing_started")[0]["timestamp"] == "2026-03-15T08:00:00Z"
    # an earlier activation arriving late changes the instant billed from, and is not sent again
    earlier = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)
    device_event_apply(tenant=tenant, device_id="A", event_type="device.activated", occurred_at=earlier, actor=ACTOR)
    assert len(billing_started(tenant)) == 1


def test_hardware_billed_on_shipment_starts_at_shipment(tenant: Tenant) -> None:
    # given: a tracker billed when shipped, and a platform fee from activation
    at = timezone.now()
    product_create(tenant=tenant, actor=ACTOR, at=at, code="gps-1", name="GPS tracker", kind="hardware")
    product_create(tenant=tenant, actor=ACTOR, at=at, code="platform", name="Platform", kind="service")
    plan = plan_create(
        tenant=tenant,
        actor=ACTOR,
        at=at,
        code="tracked",
        name="Tracked",
        interval="month",
        components=[
            {"product": "gps-1", "kind": "hardware", "price": "120.00", "bill_on": "shipment"},
            {
                "product": "platform",
                "per_device": True,
                "starts_on": "activation",
                "charge": {"model": "flat", "amount": "5.00"},
            },
        ],
        prices=[{"currency": "EUR"}],
    )
    signed_subscription(tenant, customer=dupont(tenant), plan=plan, devices=("T1",))
    # when: shipped on 5 January 14:00 UTC, activated on the 8th
    for event_type, when in (
        ("device.shipped", datetime(2026, 1, 5, 14, 0, tzinfo=UTC)),
        ("device.activated", datetime(2026, 1, 8, 9, 0, tzinfo=UTC)),
    ):
        device_event_apply(tenant=tenant, device_id="T1", event_type=event_type, occurred_at=when, actor=ACTOR)
    # then: billed from its shipment, announced once
    assert billing_started(tenant) == [("T1", "shipment", "2026-01-05T14:00:00Z")]


def test_devices_added_by_a_change_start_being_billed_and_a_preview_sends_nothing(tenant: Tenant) -> None:
    # given: a fee from the subscription's start (the device's addition)
    plan = platform_plan(tenant, "basic", "10.00")
    subscription = signed_subscription(tenant, customer=dupont(tenant), plan=plan, devices=("A",))
    assert billing_started(tenant) == [("A", "signature", "2026-01-01T08:00:00Z")]
    at = datetime(2026, 1, 20, 9, 0, tzinfo=UTC)
    params = {"devices": [{"device_id": "D"}]}
    # when: previewed, then applied
    with time_machine.travel(at, tick=False):
        subscription_change(
            subscription=subscription, action="add_devices", params=params, actor=ACTOR, at=at, preview=True
        )
        assert len(billing_started(tenant)) == 1  # the preview rolled back its event with the rest
        subscription_change(subscription=subscription, action="add_devices", params=params, actor=ACTOR, at=at)
    # then
    assert billing_started(tenant)[1:] == [("D", "signature", "2026-01-20T09:00:00Z")]


def test_cancelling_emits_subscription_cancelled_with_its_devices(tenant: Tenant) -> None:
    plan = platform_plan(tenant, "basic", "10.00")
    subscription = signed_subscription(tenant, customer=dupont(tenant), plan=plan, devices=("A", "B"))
    at = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        subscription_change(
            subscription=subscription, action="cancel", params={"at_period_end": False}, actor=ACTOR, at=at
        )
    # then: one event (ending it right after is not a cancellation again)
    [cancelled] = events(tenant, "subscription.cancelled")
    assert cancelled["timestamp"] == "2026-02-10T09:00:00Z"
    data = cancelled["data"]
    assert (data["external_id"], data["status"], data["devices"], data["cancelled_at"], data["reason"]) == (
        "sub",
        "cancelled",
        ["A", "B"],
        "2026-02-10T09:00:00Z",
        "cancelled",
    )
    assert Subscription.objects.get().status == "ended"


def test_a_scheduled_cancellation_is_announced_when_it_takes_effect(tenant: Tenant) -> None:
    from subscriptions.changes import subscription_changes_apply_due

    plan = platform_plan(tenant, "basic", "10.00")
    subscription = signed_subscription(tenant, customer=dupont(tenant), plan=plan, devices=("A",))
    at = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    subscription_change(subscription=subscription, action="cancel", params={}, actor=ACTOR, at=at)
    assert events(tenant, "subscription.cancelled") == []  # scheduled for the period's end
    subscription_changes_apply_due(tenant=tenant, at=datetime(2026, 3, 1, 0, 0, tzinfo=UTC))
    [cancelled] = events(tenant, "subscription.cancelled")
    # 1 March, local midnight in Paris
    assert (cancelled["timestamp"], cancelled["data"]["reason"]) == ("2026-02-28T23:00:00Z", "cancelled at period end")
    assert date.fromisoformat(cancelled["data"]["cancelled_at"][:10]) == date(2026, 2, 28)
