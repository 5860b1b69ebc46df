"""Subscription writes: creation at signature, device lifecycle (shipped, activated, deactivated)
and status transitions, each recorded on the subscription's timeline."""

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from billing_platform.errors import FieldError, InvalidInput
from billing_platform.periods import local_date, local_midnight
from billing_platform.validation import metadata_errors, metadata_merge, validate_year
from catalog.errors import NoPriceForCurrency
from catalog.models import Plan
from catalog.versions import customer_price_book, price_version_as_of
from customers.models import Customer
from subscriptions.devices import device_billing_start, device_billing_triggers, plan_needs_activation
from subscriptions.errors import (
    DeviceEventRefused,
    DeviceInUse,
    DeviceNotFound,
    InvalidTransition,
    SubscriptionNotFound,
)
from subscriptions.events import (
    devices_billing_started_emit,
    subscription_cancelled_emit,
    subscription_created_emit,
    subscriptions_status_emit,
)
from subscriptions.models import Device, Subscription, SubscriptionEvent, SubscriptionStatus
from subscriptions.periods import commitment_end
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

S = SubscriptionStatus
# The one table of allowed status changes (Oscar's pipeline): anything else is a 409.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_ACTIVATION: frozenset({S.ACTIVE, S.CANCELLED}),
    S.ACTIVE: frozenset({S.PAST_DUE, S.SUSPENDED, S.CANCELLED}),
    S.PAST_DUE: frozenset({S.ACTIVE, S.SUSPENDED, S.CANCELLED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.CANCELLED}),
    S.CANCELLED: frozenset({S.ENDED}),
    S.ENDED: frozenset(),
}
EXTERNAL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")
DEVICE_EVENT_TYPES = ("device.shipped", "device.activated", "device.deactivated")


def _record(
    subscription: Subscription,
    *,
    type: str,
    at: datetime,
    actor: Actor,
    device_id: str = "",
    from_status: str = "",
    to_status: str = "",
    data: Mapping[str, Any] | None = None,
) -> SubscriptionEvent:
    return SubscriptionEvent.objects.create(
        tenant_id=subscription.tenant_id,
        subscription=subscription,
        at=at,
        type=type,
        device_id=device_id,
        from_status=from_status,
        to_status=to_status,
        actor_type=actor.type,
        actor_label=actor.label,
        data=dict(data or {}),
    )


def check_instant(value: datetime | date, field: str) -> None:
    """Refuse dates outside 1971-2999: they are typing mistakes, and month arithmetic on them overflows."""
    validate_year(value, field=field, detail="%s is out of range." % field)


def check_device_fields(devices: Sequence[Mapping[str, Any]], prefix: str = "devices") -> None:
    limits = {"device_id": 200, "device_type": 100, "region": 100}
    errors = [
        FieldError(f"{prefix}[{i}].{name}", "too_long", "At most %d characters." % limit)
        for i, device in enumerate(devices)
        for name, limit in limits.items()
        if len(str(device.get(name) or "")) > limit
    ]
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)


def subscription_create(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    external_id: str,
    customer: Customer,
    plan: Plan,
    signed_at: datetime,
    devices: Sequence[Mapping[str, Any]] = (),
    starts_on: date | None = None,
    price_locked: bool = False,
    auto_renew: bool = True,
    metadata: Mapping[str, str] | None = None,
) -> Subscription:
    """Sign a subscription. Per-device fees that start on activation wait for the device cloud;
    the customer's billing day, when unset, becomes the day the subscription starts."""
    check_instant(signed_at, "signed_at")
    if starts_on is not None:
        check_instant(starts_on, "starts_on")
    check_device_fields(devices)
    errors: list[FieldError] = metadata_errors(dict(metadata or {}))
    if not EXTERNAL_ID_RE.match(external_id):
        errors.append(FieldError("external_id", "invalid_format", "Use letters, digits and . _ : @ - (max 200)."))
    seen: set[str] = set()
    for i, device in enumerate(devices):
        device_id = str(device.get("device_id", ""))
        if not device_id:
            errors.append(FieldError(f"devices[{i}].device_id", "required", "This field is required."))
        elif device_id in seen:
            errors.append(FieldError(f"devices[{i}].device_id", "duplicate", "Device %s is listed twice." % device_id))
        seen.add(device_id)
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
    tz = customer.timezone
    starts_at = local_midnight(starts_on or local_date(signed_at, tz), tz)
    try:
        # A missing price is a clear error at sale time, never a surprise at the first bill run.
        version, _ = price_version_as_of(
            plan=plan,
            currency=customer.currency,
            country=customer.country,
            at=starts_at,
            price_book=customer_price_book(customer),
        )
    except NoPriceForCurrency as exc:
        raise InvalidInput(exc.detail, errors=[FieldError("plan", exc.code, exc.detail)]) from None
    components = list(plan.components.all())
    status = S.PENDING_ACTIVATION if plan_needs_activation(components) else S.ACTIVE
    try:
        with transaction.atomic():
            subscription = Subscription(
                tenant=tenant,
                external_id=external_id,
                customer=customer,
                plan=plan,
                status=status,
                signed_at=signed_at,
                starts_at=starts_at,
                # The local midnight trial_days after the start: 14 x 24 hours across a change of
                # time would end it an hour off, and bill (or not) a day of the trial.
                trial_ends_at=(
                    local_midnight(local_date(starts_at, tz) + timedelta(days=plan.trial_days), tz)
                    if plan.trial_days
                    else None
                ),
                auto_renew=auto_renew,
                price_locked=price_locked,
                locked_price_version=version if price_locked else None,
                metadata=dict(metadata or {}),
            )
            subscription.commitment_ends_at = commitment_end(subscription)
            subscription.save(force_insert=True)
            new_devices = Device.objects.bulk_create(
                [
                    Device(
                        tenant=tenant,
                        subscription=subscription,
                        device_id=str(d["device_id"]),
                        device_type=str(d.get("device_type") or ""),
                        region=str(d.get("region") or ""),
                        added_at=signed_at,
                    )
                    for d in devices
                ]
            )
            _record(
                subscription,
                type="subscription.signed",
                at=signed_at,
                actor=actor,
                to_status=status,
                data={"plan": plan.code, "devices": sorted(seen)},
            )
            if customer.billing_day is None:
                customer.billing_day = local_date(starts_at, tz).day
                customer.save(update_fields=["billing_day", "updated_at"])
            audit_record(
                tenant=tenant,
                actor=actor,
                action="subscription.created",
                object_type="subscription",
                object_id=external_id,
                at=at,
                after={"customer": customer.external_id, "plan": plan.code, "devices": sorted(seen), "status": status},
            )
            subscription_created_emit(subscription, sorted(seen), at=signed_at)
            # Devices whose plan bills them from the signature start being billed now.
            devices_billing_started_emit(subscription, new_devices, device_billing_triggers(components), at=signed_at)
    except IntegrityError as exc:
        if "device_unique_live_id" in str(exc):
            live = set(
                Device.objects.filter(tenant=tenant, device_id__in=seen, removed_at__isnull=True).values_list(
                    "device_id", flat=True
                )
            )
            raise DeviceInUse(
                "Device %s already belongs to a live subscription." % ", ".join(sorted(live)),
                errors=[
                    FieldError(f"devices[{i}].device_id", "device_in_use", "Already on a live subscription.")
                    for i, d in enumerate(devices)
                    if d.get("device_id") in live
                ],
            ) from None
        raise DeviceInUse(
            "A subscription with external_id %s already exists." % external_id,
            code="subscription_external_id_taken",
            errors=[FieldError("external_id", "taken", "This external_id is already used.")],
        ) from None
    return subscription


def subscription_update(
    *, tenant: Tenant, actor: Actor, at: datetime, external_id: str, metadata: Mapping[str, str | None]
) -> Subscription:
    """PATCH a subscription: its metadata (the keys given are set, a key given null is removed).
    Everything else changes through ``subscription_change``, which prorates."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().filter(tenant=tenant, external_id=external_id).first()
        if subscription is None:
            raise SubscriptionNotFound("No subscription with external_id %s." % external_id)
        before = dict(subscription.metadata)
        subscription.metadata = metadata_merge(before, dict(metadata))
        if subscription.metadata != before:
            subscription.save(update_fields=["metadata", "updated_at"])
            audit_record(
                tenant=tenant,
                actor=actor,
                action="subscription.updated",
                object_type="subscription",
                object_id=external_id,
                at=at,
                before={"metadata": before},
                after={"metadata": subscription.metadata},
            )
    return subscription


def subscription_transition(
    *, subscription: Subscription, to_status: str, actor: Actor, at: datetime, reason: str = ""
) -> Subscription:
    """The one guarded place where a subscription changes status; each change is on the timeline."""
    from_status = subscription.status
    if to_status not in ALLOWED_TRANSITIONS[from_status]:
        raise InvalidTransition("A %s subscription cannot become %s." % (from_status, to_status))
    subscription.status = to_status
    if to_status == S.CANCELLED:
        subscription.cancelled_at = at
    if to_status == S.ENDED:
        subscription.ended_at = at
    subscription.save(update_fields=["status", "cancelled_at", "ended_at", "updated_at"])
    _record(
        subscription,
        type="subscription.status_changed",
        at=at,
        actor=actor,
        from_status=from_status,
        to_status=to_status,
        data={"reason": reason} if reason else None,
    )
    if to_status == S.CANCELLED:
        subscription_cancelled_emit(subscription, at=at, reason=reason)
    return subscription


def device_event_apply(*, tenant: Tenant, device_id: str, event_type: str, occurred_at: datetime, actor: Actor) -> bool:
    """Apply a device-cloud event. Returns False when it changed nothing (a replay, or an event
    older than what is known), True otherwise. Safe to run twice; out-of-order events are handled:
    a ``shipped`` that arrives after ``activated`` records the shipment and keeps the activation,
    and the earliest activation instant wins."""
    if event_type not in DEVICE_EVENT_TYPES:
        raise InvalidInput(
            "Unknown event type %s." % event_type,
            errors=[FieldError("type", "unknown_event_type", "One of: %s." % ", ".join(DEVICE_EVENT_TYPES))],
        )
    with transaction.atomic():
        device = (
            Device.objects.select_for_update()
            .filter(tenant=tenant, device_id=device_id, removed_at__isnull=True)
            .exclude(device_id="")  # slots wait for a device to be bound; the device cloud cannot name them
            .select_related("subscription")
            .first()
        )
        if device is None:
            raise DeviceNotFound(
                "No live subscription has device %s." % device_id,
                errors=[FieldError("data.device_id", "unknown_device", "Unknown device %s." % device_id)],
            )
        subscription = Subscription.objects.select_for_update().get(pk=device.subscription_id)
        triggers = device_billing_triggers(subscription.plan.components.all())
        billed_before = device_billing_start(device, triggers) is not None
        changed = False
        if event_type == "device.shipped":
            if device.shipped_at is None or occurred_at < device.shipped_at:
                device.shipped_at = occurred_at
                changed = True
        elif event_type == "device.activated":
            if device.deactivated_at is not None and occurred_at >= device.deactivated_at:
                raise DeviceEventRefused(
                    "Device %s was deactivated on %s; add it to a subscription again to reactivate it."
                    % (device_id, device.deactivated_at.isoformat())
                )
            if subscription.status in (S.CANCELLED, S.ENDED):
                raise DeviceEventRefused("Subscription %s is %s." % (subscription.external_id, subscription.status))
            if device.activated_at is None or occurred_at < device.activated_at:
                device.activated_at = occurred_at
                changed = True
        elif device.deactivated_at is None or occurred_at < device.deactivated_at:
            if device.activated_at is not None and occurred_at < device.activated_at:
                raise DeviceEventRefused("Device %s cannot be deactivated before its activation." % device_id)
            device.deactivated_at = occurred_at
            changed = True
        if not changed:
            return False
        device.save(update_fields=["shipped_at", "activated_at", "deactivated_at"])
        _record(subscription, type=event_type, at=occurred_at, actor=actor, device_id=device_id)
        if not billed_before:
            devices_billing_started_emit(subscription, [device], triggers, at=occurred_at)
        if event_type == "device.activated" and subscription.status == S.PENDING_ACTIVATION:
            subscription_transition(
                subscription=subscription,
                to_status=S.ACTIVE,
                actor=actor,
                at=occurred_at,
                reason="first device activated",
            )
    return True


# Dunning suspends the subscriptions of an invoice left unpaid, and reactivates them once nothing is
# overdue any more (payments.dunning); both in bulk, each change on the timeline.
SUSPENDABLE = frozenset(s for s, allowed in ALLOWED_TRANSITIONS.items() if S.SUSPENDED in allowed)


def _statuses_change(
    *,
    tenant: Tenant,
    subscription_ids: Sequence[Any],
    from_statuses: Sequence[str],
    to_status: str,
    event_type: str,
    at: datetime,
    reason: str,
    detail: Mapping[Any, Mapping[str, Any]] | None,
) -> list[Subscription]:
    subscriptions = list(
        Subscription.objects.select_for_update(of=("self",))
        .filter(tenant=tenant, pk__in=list(subscription_ids), status__in=list(from_statuses))
        .select_related("customer", "plan")
        .order_by("pk")
    )
    if not subscriptions:
        return []
    Subscription.objects.filter(pk__in=[s.pk for s in subscriptions]).update(status=to_status, updated_at=at)
    actor = Actor.system("dunning")
    entries = []
    for subscription in subscriptions:
        from_status = subscription.status
        subscription.status = to_status
        data: dict[str, Any] = {"reason": reason} if reason else {}
        data.update((detail or {}).get(subscription.pk, {}))
        entries.append(
            SubscriptionEvent(
                tenant_id=subscription.tenant_id,
                subscription=subscription,
                at=at,
                type="subscription.status_changed",
                from_status=from_status,
                to_status=to_status,
                actor_type=actor.type,
                actor_label=actor.label,
                data=data,
            )
        )
    SubscriptionEvent.objects.bulk_create(entries)
    subscriptions_status_emit(
        subscriptions, event_type=event_type, tenant=tenant, at=at, reason=reason, detail=detail or {}
    )
    return subscriptions


def subscriptions_suspend(
    *,
    tenant: Tenant,
    subscription_ids: Sequence[Any],
    at: datetime,
    reason: str,
    detail: Mapping[Any, Mapping[str, Any]] | None = None,
) -> list[Subscription]:
    """Suspend those of ``subscription_ids`` that may be (active or past due; others are left as they
    are), in the caller's transaction: rows locked, one update, their timeline entries and one
    ``subscription.suspended`` event each with the live devices, so the device cloud cuts service.
    ``detail`` adds, per subscription, what its timeline entry and event carry (the invoices). Returns
    the subscriptions suspended."""
    return _statuses_change(
        tenant=tenant,
        subscription_ids=subscription_ids,
        from_statuses=sorted(SUSPENDABLE),
        to_status=S.SUSPENDED,
        event_type="subscription.suspended",
        at=at,
        reason=reason,
        detail=detail,
    )


def subscriptions_reactivate(
    *, tenant: Tenant, subscription_ids: Sequence[Any], at: datetime, reason: str
) -> list[Subscription]:
    """Make those of ``subscription_ids`` that are suspended active again, in the caller's
    transaction, each with its timeline entry and a ``subscription.reactivated`` event with the live
    devices. Returns the subscriptions reactivated."""
    return _statuses_change(
        tenant=tenant,
        subscription_ids=subscription_ids,
        from_statuses=[S.SUSPENDED],
        to_status=S.ACTIVE,
        event_type="subscription.reactivated",
        at=at,
        reason=reason,
        detail=None,
    )
