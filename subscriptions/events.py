"""Subscriptions' outbound webhook events (docs/webhooks.md): ``subscription.created``,
``subscription.cancelled``, ``subscription.suspended``, ``subscription.reactivated`` and
``device.billing_started``, written by the services that make those
changes, in their transaction (``webhooks.outbox``). Subscriptions, customers and plans are named by
their external ids and codes, devices by the device cloud's own ids."""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from subscriptions.devices import device_billing_start
from subscriptions.models import Device, Subscription
from tenancy.models import Tenant
from webhooks.outbox import events_emit, instant


def subscription_event_data(subscription: Subscription, devices: Sequence[str]) -> dict[str, Any]:
    """A subscription as ``subscription.*`` events carry it, with its live devices."""
    return {
        "id": str(subscription.pk),
        "external_id": subscription.external_id,
        "customer": subscription.customer.external_id,
        "plan": subscription.plan.code,
        "status": subscription.status,
        "signed_at": instant(subscription.signed_at),
        "starts_at": instant(subscription.starts_at),
        "commitment_ends_at": instant(subscription.commitment_ends_at) if subscription.commitment_ends_at else None,
        "devices": sorted(devices),
    }


def subscription_created_emit(subscription: Subscription, devices: Sequence[str], *, at: datetime) -> None:
    events_emit(
        tenant=subscription.tenant,
        events=[("subscription.created", subscription_event_data(subscription, devices))],
        at=at,
    )


def subscription_cancelled_emit(subscription: Subscription, *, at: datetime, reason: str) -> None:
    """``subscription.cancelled``, with the devices that were live on it, so the device cloud can
    tell which ones lose service."""
    devices = Device.objects.filter(subscription=subscription, removed_at__isnull=True).values_list(
        "device_id", flat=True
    )
    data = subscription_event_data(subscription, list(devices))
    data.update(cancelled_at=instant(subscription.cancelled_at or at), reason=reason)
    events_emit(tenant=subscription.tenant, events=[("subscription.cancelled", data)], at=at)


def subscriptions_status_emit(
    subscriptions: Sequence[Subscription],
    *,
    event_type: str,
    tenant: Tenant,
    at: datetime,
    reason: str,
    detail: Mapping[Any, Mapping[str, Any]],
) -> None:
    """``subscription.suspended`` or ``subscription.reactivated`` for each of ``subscriptions`` (their
    new status set), with their live devices read in one query and ``detail`` per subscription: one
    statement for all the events."""
    devices: dict[Any, list[str]] = defaultdict(list)
    for subscription_id, device_id in Device.objects.filter(
        subscription__in=[s.pk for s in subscriptions], removed_at__isnull=True
    ).values_list("subscription_id", "device_id"):
        devices[subscription_id].append(device_id)
    events = []
    for subscription in subscriptions:
        data = subscription_event_data(subscription, devices[subscription.pk])
        data.update(reason=reason, changed_at=instant(at), **detail.get(subscription.pk, {}))
        events.append((event_type, data))
    events_emit(tenant=tenant, events=events, at=at)


def devices_billing_started_emit(
    subscription: Subscription, devices: Iterable[Device], triggers: Iterable[str], *, at: datetime
) -> int:
    """``device.billing_started`` for each of ``devices`` whose billing has started (by the plan's
    ``triggers``: ``subscriptions.devices.device_billing_triggers``); one statement for all. The
    caller passes devices that were not billed before its change. Returns how many were sent."""
    wanted = frozenset(triggers)
    events = []
    for device in devices:
        started = device_billing_start(device, wanted)
        if started is None or not device.device_id:
            continue  # not started; or a slot, announced once a device is bound to it
        when, trigger = started
        events.append(
            (
                "device.billing_started",
                {
                    "device_id": device.device_id,
                    "subscription": subscription.external_id,
                    "customer": subscription.customer.external_id,
                    "plan": subscription.plan.code,
                    "trigger": trigger,
                    "billing_started_at": instant(when),
                },
            )
        )
    events_emit(tenant=subscription.tenant, events=events, at=at)
    return len(events)
